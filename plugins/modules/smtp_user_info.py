#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: smtp_user_info
short_description: Read the SMTP user of a K5 Email Delivery Service contract
version_added: 1.0.0
description:
  - Reads the SMTP user of the contract with C(GetSMTPUserInfo), without changing anything.
  - The service returns the password again each time. Set C(no_log) to C(true) on every task that
    registers the result of this module.
author:
  - fjcloud.mail developers (@fjcloud)
extends_documentation_fragment:
  - fjcloud.mail.k5
  - fjcloud.mail.k5.attributes
  - fjcloud.mail.k5.info_module
options: {}
seealso:
  - module: fjcloud.mail.smtp_user
'''

EXAMPLES = r'''
- name: Read the SMTP credentials
  fjcloud.mail.smtp_user_info:
    auth_token: "{{ k5_token }}"
    region_name: jp-east-1
  register: smtp
  no_log: true

- name: Fail early when the contract has no SMTP user yet
  ansible.builtin.assert:
    that: smtp.exists
    fail_msg: Create the SMTP user first (fjcloud.mail.smtp_user).
'''

RETURN = r'''
exists:
  description: Whether the contract has an SMTP user.
  returned: always
  type: bool
  sample: true
smtp_user:
  description: User name for SMTP AUTH.
  returned: when RV(exists) is true
  type: str
  sample: NKUIGMTPOU9PUZGKL1RW
smtp_password:
  description: Password for SMTP AUTH. A secret; register the result on a task with C(no_log) set to C(true).
  returned: when RV(exists) is true
  type: str
  sample: BiUIRJHe...
request_id:
  description: The service's request id of the call, for support requests.
  returned: when RV(exists) is true
  type: str
  sample: 65ce6f91-4e8d-44a1-b33e-5ba3de2f528b
'''

from ansible_collections.fjcloud.mail.plugins.module_utils.module import K5MailModule
from ansible_collections.fjcloud.mail.plugins.module_utils.smtp_user import get_smtp_user


class SMTPUserInfoModule(K5MailModule):

    def run(self):
        credentials = get_smtp_user(self.client)
        if credentials is None:
            return dict(changed=False, exists=False)
        result = dict(changed=False, exists=True, smtp_user=credentials.user, smtp_password=credentials.password)
        if credentials.request_id:
            result['request_id'] = credentials.request_id
        return result


def main():
    SMTPUserInfoModule().execute()


if __name__ == '__main__':
    main()
