#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: identity
short_description: Manage a sender identity (email address or domain) of the K5 Email Delivery Service
version_added: 1.0.0
description:
  - The service sends only from verified identities, or from addresses in a verified domain.
    This module starts the verification of an email address or a domain, reports its status,
    can wait for it to succeed, and deletes identities.
  - With O(state=present), an identity whose verification is C(Pending) or C(Success) is left as it is
    (C(TemporaryFailure) too, as the service retries it). An unknown identity, or one whose verification
    C(Failed) or was C(NotStarted), gets a new verification request
    (C(VerifyEmailIdentity) or C(VerifyDomainIdentity)), which is a change.
  - An address receives a mail with a confirmation link. A domain is verified once its token is
    published in DNS; the module returns the record to publish in RV(dns_record).
author:
  - fjcloud.mail developers (@fjcloud)
extends_documentation_fragment:
  - fjcloud.mail.k5
  - fjcloud.mail.k5.attributes
attributes:
  check_mode:
    description: Only C(GetIdentityVerificationAttributes) is called; the result says what would change.
    support: full
  diff_mode:
    description: Shows the identity's state and verification status before and after.
    support: full
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
options:
  email:
    description:
      - The email address to verify or delete, without display name (C(ops@example.com)).
      - Exactly one of O(email) and O(domain) is required.
    type: str
  domain:
    description:
      - The domain to verify or delete (C(example.com)). Every address of a verified domain may send.
    type: str
  state:
    description:
      - V(present) makes sure the identity is verified or being verified.
      - V(absent) deletes it (C(DeleteIdentity)) when the service knows it.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - With O(state=present), poll until the verification status is C(Success).
      - Fails when the verification C(Failed), or when O(wait_timeout) has passed.
      - Polls every few seconds, within the service's one request per second.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait=true). A domain is usable about ten minutes after its verification.
    type: int
    default: 900
notes:
  - Use M(fjcloud.mail.identity_info) to list every identity of the contract.
seealso:
  - module: fjcloud.mail.identity_info
  - module: fjcloud.mail.send_email
'''

EXAMPLES = r'''
- name: Verify the sender domain and show the DNS record to publish
  fjcloud.mail.identity:
    auth_token: "{{ k5_token }}"
    domain: example.com
  register: sender_domain

- name: Publish sender_domain.dns_record in the zone, then wait for the verification
  fjcloud.mail.identity:
    auth_token: "{{ k5_token }}"
    domain: example.com
    wait: true
    wait_timeout: 1200

- name: Verify one sender address (it receives a confirmation mail)
  fjcloud.mail.identity:
    auth:
      username: "{{ k5_username }}"
      password: "{{ k5_password }}"
      user_domain_name: "{{ k5_contract_number }}"
      project_id: "{{ k5_project_id }}"
    email: ops@example.com

- name: Remove an identity
  fjcloud.mail.identity:
    auth_token: "{{ k5_token }}"
    email: old-sender@example.com
    state: absent
'''

RETURN = r'''
identity:
  description: The email address or domain.
  returned: always
  type: str
  sample: example.com
identity_type:
  description: V(EmailAddress) or V(Domain).
  returned: always
  type: str
  sample: Domain
verification_status:
  description:
    - C(Pending), C(Success), C(Failed), C(TemporaryFailure) or C(NotStarted); null when the service does not know the identity.
    - In check mode, the status before the change.
  returned: always
  type: str
  sample: Pending
verification_token:
  description: The domain's verification token.
  returned: for a domain the service knows
  type: str
  sample: QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0=
dns_record:
  description: The DNS record to publish so that the domain is verified.
  returned: for a domain with a verification token
  type: dict
  contains:
    name:
      description: Name of the record.
      type: str
      sample: _niftycloudess.example.com
    type:
      description: Type of the record.
      type: str
      sample: TXT
    value:
      description: The verification token.
      type: str
      sample: QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0=
'''

import time

from ansible_collections.fjcloud.mail.plugins.module_utils.addresses import address_problem, domain_problem
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.identities import (
    NEEDS_VERIFICATION,
    delete_identity,
    describe,
    dns_record,
    verification_attributes,
    verify_identity,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.module import K5MailModule

POLL_INTERVAL_MAX = 30


class IdentityModule(K5MailModule):
    module_spec = dict(
        email=dict(type='str'),
        domain=dict(type='str'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        wait=dict(type='bool', default=False),
        wait_timeout=dict(type='int', default=900),
    )
    module_kwargs = dict(
        mutually_exclusive=[('email', 'domain')],
        required_one_of=[('email', 'domain')],
    )
    # The clock and sleep of the wait (not of pacing), replaced by the unit tests.
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    def validate(self):
        errors = []
        for option, check in (('email', address_problem), ('domain', domain_problem)):
            value = self.params[option]
            problem = check(value) if value is not None else None
            if problem:
                errors.append('%s %r is not valid: %s' % (option, value, problem))
        if self.params['wait_timeout'] <= 0:
            errors.append('wait_timeout must be a positive number of seconds, got %d' % self.params['wait_timeout'])
        return errors

    @property
    def identity(self):
        return self.params['email'] or self.params['domain']

    def attributes(self):
        return verification_attributes(self.client, [self.identity]).get(self.identity)

    def run(self):
        before = self.attributes()
        if self.params['state'] == 'absent':
            changed = before is not None
            if changed and not self.check_mode:
                delete_identity(self.client, self.identity)
            return self.result(changed, before, None, shown=None)
        status = before['status'] if before else None
        changed = status in NEEDS_VERIFICATION
        if not changed:
            after = before
        elif self.check_mode:
            # Nothing is requested in check mode: show what the service knows now.
            return self.result(True, before, {'status': 'Pending', 'token': None}, shown=before)
        else:
            after = {'status': 'Pending', 'token': verify_identity(self.client, self.identity)}
        if self.params['wait'] and not self.check_mode:
            after = self.wait_for_success(after)
        return self.result(changed, before, after, shown=after)

    def wait_for_success(self, attributes):
        deadline = self.monotonic() + self.params['wait_timeout']
        interval = 2
        while attributes['status'] != 'Success':
            if attributes['status'] == 'Failed':
                raise K5MailError('GetIdentityVerificationAttributes', 'the verification of %s failed%s' % (
                    self.identity, self._dns_hint(attributes)))
            remaining = deadline - self.monotonic()
            if remaining <= 0:
                raise K5MailError('GetIdentityVerificationAttributes', 'the verification of %s is still %s after %d seconds%s' % (
                    self.identity, attributes['status'], self.params['wait_timeout'], self._dns_hint(attributes)))
            self.sleep(min(interval, remaining))
            interval = min(interval * 2, POLL_INTERVAL_MAX)
            attributes = self.attributes() or {'status': None, 'token': None}
            if attributes['status'] is None:
                raise K5MailError('GetIdentityVerificationAttributes', '%s disappeared while waiting for its verification'
                                  % self.identity)
        return attributes

    def _dns_hint(self, attributes):
        record = dns_record(self.identity, attributes.get('token')) if self.params['domain'] else None
        if record:
            return '; publish the %s record %s with the value %s' % (record['type'], record['name'], record['value'])
        if self.params['email']:
            return '; the address must open the link in the confirmation mail'
        return ''

    def result(self, changed, before, after, shown):
        """``before``/``after`` feed the diff; ``shown`` is the state the result describes."""
        result = dict(changed=changed, **describe(self.identity, shown))
        if self.module._diff:
            result['diff'] = dict(before=_state(before), after=_state(after))
        return result


def _state(attributes):
    if attributes is None:
        return {'state': 'absent'}
    return {'state': 'present', 'verification_status': attributes['status']}


def main():
    IdentityModule().execute()


if __name__ == '__main__':
    main()
