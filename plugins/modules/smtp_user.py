#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: smtp_user
short_description: Manage the SMTP user of a K5 Email Delivery Service contract
version_added: 1.0.0
description:
  - Creates, rotates or deletes the user that authenticates to the SMTP interface of the
    Email Delivery Service of FUJITSU Cloud Service K5 / FJcloud-O, and returns its credentials.
  - A contract has exactly one SMTP user. With O(state=present) the module calls C(CreateSMTPUser);
    when the service answers that the user already exists (HTTP 409), nothing changes and the
    existing credentials are read with C(GetSMTPUserInfo). Running it again is therefore
    idempotent and returns the same credentials.
  - The service cannot change a password. O(rotate=true) deletes the user and creates a new one,
    which issues a new password; mail relays must get the new credentials before they can send again.
  - The returned RV(smtp_password) is a secret. Set C(no_log) to C(true) on every task that registers
    the result of this module.
author:
  - fjcloud.mail developers (@fjcloud)
extends_documentation_fragment:
  - fjcloud.mail.k5
  - fjcloud.mail.k5.attributes
attributes:
  check_mode:
    description: Only C(GetSMTPUserInfo) is called; the result says what would change.
    support: full
  diff_mode:
    description: Shows the user name and state before and after; never the password.
    support: full
  idempotent:
    description: Running the module again with O(state=present) or O(state=absent) changes nothing.
      O(rotate=true) changes the password on every run.
    support: full
options:
  state:
    description:
      - V(present) ensures the contract has an SMTP user and returns its credentials.
      - V(absent) deletes the SMTP user (C(DeleteSMTPUser)) if there is one.
    type: str
    choices: [present, absent]
    default: present
  rotate:
    description:
      - With O(state=present), delete the existing user and create a new one, so that the
        password changes. Every run with O(rotate=true) reports a change.
      - Between the deletion and the creation the contract has no SMTP user. If the creation
        fails, the next run with O(state=present) creates the user.
    type: bool
    default: false
notes:
  - Mail relays keep using the old password until they are given the new one; run
    the P(fjcloud.mail.postfix_relay#role) role again after a rotation.
seealso:
  - module: fjcloud.mail.smtp_user_info
  - name: Email Delivery Service API reference
    description: The CreateSMTPUser, GetSMTPUserInfo and DeleteSMTPUser actions.
    link: https://doc.cloud.global.fujitsu.com/lib/iaas/en/api-reference/
'''

EXAMPLES = r'''
- name: Ensure the SMTP user exists (token from the environment, OS_TOKEN)
  fjcloud.mail.smtp_user:
    region_name: jp-east-1
  register: smtp
  no_log: true

- name: Ensure the SMTP user exists, authenticating with Keystone
  fjcloud.mail.smtp_user:
    auth:
      auth_url: https://identity.jp-east-1.cloud.global.fujitsu.com/v3
      username: "{{ k5_username }}"
      password: "{{ k5_password }}"
      user_domain_name: "{{ k5_contract_number }}"
      project_id: "{{ k5_project_id }}"
    region_name: jp-east-1
  register: smtp
  no_log: true

- name: Set the connection options once for every module of the collection
  module_defaults:
    group/fjcloud.mail.mail:
      auth_token: "{{ k5_token }}"
      endpoint: https://mail.jp-east-1.tps5.fujitsu.com
  block:
    - name: Ensure the SMTP user exists
      fjcloud.mail.smtp_user:
      register: smtp
      no_log: true

- name: Issue a new password (delete and create the SMTP user)
  fjcloud.mail.smtp_user:
    auth_token: "{{ k5_token }}"
    rotate: true
  register: smtp
  no_log: true

- name: Delete the SMTP user
  fjcloud.mail.smtp_user:
    auth_token: "{{ k5_token }}"
    state: absent
'''

RETURN = r'''
smtp_user:
  description: User name for SMTP AUTH. Null when there is no user (state absent, or check mode before creation).
  returned: always
  type: str
  sample: NKUIGMTPOU9PUZGKL1RW
smtp_password:
  description:
    - Password for SMTP AUTH. A secret; register the result on a task with C(no_log) set to C(true).
    - Null when there is no user.
  returned: always
  type: str
  sample: BiUIRJHe...
created:
  description:
    - Whether this run created the user (also true after a rotation). In check mode, whether it would.
    - Also true when the reply to this run's C(CreateSMTPUser) was lost and its repeat was answered
      "already exists", because the user that exists is the one this run created.
  returned: always
  type: bool
  sample: true
request_id:
  description: The service's request id of the call that returned the credentials, for support requests.
  returned: when a call returned one
  type: str
  sample: 65ce6f91-4e8d-44a1-b33e-5ba3de2f528b
'''

from ansible_collections.fjcloud.mail.plugins.module_utils.module import K5MailModule
from ansible_collections.fjcloud.mail.plugins.module_utils.smtp_user import (
    delete_smtp_user,
    ensure_smtp_user,
    get_smtp_user,
)


class SMTPUserModule(K5MailModule):
    module_spec = dict(
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        rotate=dict(type='bool', default=False),
    )

    def validate(self):
        if self.params['rotate'] and self.params['state'] == 'absent':
            return ['rotate=true needs state=present']
        return []

    def run(self):
        if self.params['state'] == 'absent':
            return self.absent()
        if self.params['rotate']:
            return self.rotate()
        return self.present()

    def present(self):
        if self.check_mode:
            existing = get_smtp_user(self.client)
            return self.result(changed=existing is None, before=existing, after=existing, returned=existing)
        credentials, created = ensure_smtp_user(self.client)
        return self.result(changed=created, created=created, before=None if created else credentials,
                           after=credentials, returned=credentials)

    def rotate(self):
        existing = get_smtp_user(self.client)
        if self.check_mode:
            return self.result(changed=True, before=existing, after=None, returned=existing)
        if existing is not None:
            delete_smtp_user(self.client)
        # created is false only if another client created a user between our two calls.
        credentials, created = ensure_smtp_user(self.client)
        return self.result(changed=True, created=created, before=existing, after=credentials, returned=credentials)

    def absent(self):
        existing = get_smtp_user(self.client)
        changed = existing is not None
        if changed and not self.check_mode:
            # A 404 here: another client deleted the user after our read, so this run changed nothing.
            changed = delete_smtp_user(self.client)
        return self.result(changed=changed, before=existing if changed else None, after=None, returned=None, created=False)

    def result(self, changed, before, after, returned, created=None):
        """``before``/``after``: credentials or None; ``after`` is None for a user still to be created."""
        if created is None:
            # Check mode: report what a real run would do.
            created = changed
        result = dict(
            changed=changed,
            created=created,
            smtp_user=returned.user if returned else None,
            smtp_password=returned.password if returned else None,
        )
        if returned is not None and returned.request_id:
            result['request_id'] = returned.request_id
        if self.module._diff:
            result['diff'] = dict(before=_describe(before), after=_describe(after, new=created))
        return result


def _describe(credentials, new=False):
    """The diff view of the user: never the password."""
    if credentials is None and not new:
        return {'state': 'absent'}
    return {
        'state': 'present',
        'smtp_user': credentials.user if credentials else '(new, known after creation)',
        'smtp_password': '(new)' if new else '(unchanged, hidden)',
    }


def main():
    SMTPUserModule().execute()


if __name__ == '__main__':
    main()
