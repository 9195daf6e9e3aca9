#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: identity_info
short_description: List the sender identities of a K5 Email Delivery Service contract
version_added: 1.0.0
description:
  - Lists every email address and domain of the contract with its verification status and token.
  - Calls C(ListIdentities) page by page (100 a page) until the last, then
    C(GetIdentityVerificationAttributes) in batches of 100, all within the service's one request
    per second. Hundreds of identities take that many seconds.
author:
  - fjcloud.mail developers (@fjcloud)
extends_documentation_fragment:
  - fjcloud.mail.k5
  - fjcloud.mail.k5.attributes
  - fjcloud.mail.k5.info_module
options:
  identity_type:
    description:
      - Only identities of this type. All when not given.
    type: str
    choices: [EmailAddress, Domain]
seealso:
  - module: fjcloud.mail.identity
'''

EXAMPLES = r'''
- name: List every identity of the contract
  fjcloud.mail.identity_info:
    auth_token: "{{ k5_token }}"
  register: identities

- name: Show the domains still waiting for their DNS record
  ansible.builtin.debug:
    msg: "{{ identities.identities | selectattr('identity_type', 'eq', 'Domain')
             | rejectattr('verification_status', 'eq', 'Success') | map(attribute='dns_record') }}"

- name: List only the domains
  fjcloud.mail.identity_info:
    auth_token: "{{ k5_token }}"
    identity_type: Domain
  register: domains
'''

RETURN = r'''
identities:
  description: The identities, in the order the service lists them.
  returned: always
  type: list
  elements: dict
  contains:
    identity:
      description: The email address or domain.
      type: str
      sample: example.com
    identity_type:
      description: V(EmailAddress) or V(Domain).
      type: str
      sample: Domain
    verification_status:
      description: C(Pending), C(Success), C(Failed), C(TemporaryFailure) or C(NotStarted); null if the service gave none.
      type: str
      sample: Success
    verification_token:
      description: The domain's verification token.
      returned: for domains
      type: str
      sample: QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0=
    dns_record:
      description: The TXT record (C(name), C(type), C(value)) that verifies the domain.
      returned: for domains
      type: dict
      sample: {"name": "_niftycloudess.example.com", "type": "TXT", "value": "QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0="}
'''

from ansible_collections.fjcloud.mail.plugins.module_utils.identities import describe, list_identities, verification_attributes
from ansible_collections.fjcloud.mail.plugins.module_utils.module import K5MailModule


class IdentityInfoModule(K5MailModule):
    module_spec = dict(
        identity_type=dict(type='str', choices=['EmailAddress', 'Domain']),
    )

    def run(self):
        identities = list_identities(self.client, self.params['identity_type'])
        attributes = verification_attributes(self.client, identities)
        return dict(changed=False, identities=[describe(identity, attributes.get(identity)) for identity in identities])


def main():
    IdentityInfoModule().execute()


if __name__ == '__main__':
    main()
