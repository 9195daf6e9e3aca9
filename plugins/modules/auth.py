#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: auth
short_description: Get a Keystone token for the K5 Email Delivery Service
version_added: 1.0.0
description:
  - Authenticates once with Keystone v3 (password, scoped to a project) and returns the token,
    its expiry and the mail endpoint, so that a play authenticates once and passes
    RV(auth_token) and RV(endpoint) to every later task.
  - One login instead of one per task means fewer token requests and no risk of locking the
    account with many parallel password logins (five failures within 15 minutes lock it).
  - The token is a secret. Set C(no_log) to C(true) on the task that registers it.
author:
  - fjcloud.mail developers (@fjcloud)
extends_documentation_fragment:
  - fjcloud.mail.k5
  - fjcloud.mail.k5.attributes
attributes:
  check_mode:
    description: Getting a token changes nothing; the module authenticates in check mode too, so later tasks can read.
    support: full
  diff_mode:
    description: The module changes nothing, so there is no diff.
    support: N/A
  idempotent:
    description: Never changed. Each run gets a new token.
    support: full
notes:
  - O(auth) is required (or the E(OS_USERNAME), E(OS_PASSWORD), ... variables); O(auth_token) is ignored.
seealso:
  - module: fjcloud.mail.smtp_user
'''

EXAMPLES = r'''
- name: Authenticate once for the whole play
  fjcloud.mail.auth:
    auth:
      username: "{{ k5_username }}"
      password: "{{ k5_password }}"
      user_domain_name: "{{ k5_contract_number }}"
      project_id: "{{ k5_project_id }}"
    region_name: jp-east-1
  register: k5
  no_log: true

- name: Use the token in every later task
  module_defaults:
    group/fjcloud.mail.mail:
      auth_token: "{{ k5.auth_token }}"
      endpoint: "{{ k5.endpoint }}"
  block:
    - name: Ensure the SMTP user exists
      fjcloud.mail.smtp_user:
      register: smtp
      no_log: true
    - name: Read the quota
      fjcloud.mail.send_quota_info:
'''

RETURN = r'''
auth_token:
  description: The Keystone token. A secret; register it on a task with C(no_log) set to C(true).
  returned: success
  type: str
  sample: gAAAAABk...
expires_at:
  description: When the token expires, as Keystone gives it (ISO 8601, UTC).
  returned: success
  type: str
  sample: "2026-11-24T13:00:00.000000Z"
endpoint:
  description:
    - The mail API endpoint to use with the token, by the rule of every module of the collection
      and of C(fjcloud-mail-external) (see O(endpoint)) - O(endpoint), else E(FJCLOUD_MAIL_ENDPOINT),
      else C(https://mail.<region_name>.cloud.global.fujitsu.com).
    - The token's service catalog does not change it. When the catalog names another C(mail) endpoint
      for O(region_name), the module warns and names it, so that it can be given as O(endpoint).
  returned: success
  type: str
  sample: https://mail.jp-east-1.cloud.global.fujitsu.com
'''

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import bounded_text, without_userinfo
from ansible_collections.fjcloud.mail.plugins.module_utils.module import K5MailModule
from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import normalised_url


class AuthModule(K5MailModule):

    def validate(self):
        if self.settings.keystone is None:
            return ['auth needs Keystone password credentials (auth: username, password, user_domain_name and '
                    'project_id or project_name, or the OS_* variables); a token cannot be exchanged for another']
        return []

    def run(self):
        token = self.client.authenticate()
        endpoint = self.settings.endpoint  # the rule of every module; the catalog only informs
        listed = token.endpoint('mail', self.settings.region)
        if listed and not self.params['endpoint'] and _differ(listed, endpoint):
            self.module.warn(
                "the token's service catalog names %s as the mail endpoint of %s, not %s: every module uses the "
                "endpoint option, else FJCLOUD_MAIL_ENDPOINT, else the default of the region; set endpoint to use "
                "the catalog's" % (bounded_text(without_userinfo(listed), 200), self.settings.region, endpoint))
        return dict(changed=False, auth_token=token.value, expires_at=token.expires_at, endpoint=endpoint)


def _differ(url, other):
    try:
        return normalised_url(url, keep_path=True) != normalised_url(other, keep_path=True)
    except ValueError:  # a catalog URL no parser accepts
        return True


def main():
    AuthModule().execute()


if __name__ == '__main__':
    main()
