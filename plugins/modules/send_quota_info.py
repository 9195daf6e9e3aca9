#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: send_quota_info
short_description: Read the sending quota and statistics of a K5 Email Delivery Service contract
version_added: 1.0.0
description:
  - Reads the sending limits (C(GetSendQuota)) and, unless O(statistics=false), the delivery
    statistics of the last two weeks in 15-minute buckets (C(GetSendStatistics)).
author:
  - fjcloud.mail developers (@fjcloud)
extends_documentation_fragment:
  - fjcloud.mail.k5
  - fjcloud.mail.k5.attributes
  - fjcloud.mail.k5.info_module
options:
  statistics:
    description:
      - Also read the delivery statistics (one more request).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Read the quota and the statistics
  fjcloud.mail.send_quota_info:
    auth_token: "{{ k5_token }}"
  register: sending

- name: Warn when three quarters of the daily quota are used
  ansible.builtin.debug:
    msg: "{{ sending.quota.sent_last_24_hours }} of {{ sending.quota.max_24_hour_send }} mails sent in 24 hours"
  when: sending.quota.sent_last_24_hours > 0.75 * sending.quota.max_24_hour_send
'''

RETURN = r'''
quota:
  description: The sending limits and usage.
  returned: always
  type: dict
  contains:
    max_24_hour_send:
      description: Mails the contract may send in 24 hours.
      type: float
      sample: 200.0
    max_send_rate:
      description: Mails the contract may send per second.
      type: float
      sample: 1.0
    sent_last_24_hours:
      description: Mails sent in the last 24 hours.
      type: float
      sample: 12.0
send_data_points:
  description: Delivery statistics in 15-minute buckets, oldest first.
  returned: when O(statistics=true)
  type: list
  elements: dict
  contains:
    timestamp:
      description: Start of the bucket, as the service gives it (C(YYYY-MM-DDThh:mm:ss.SSSZ)).
      type: str
      sample: "2026-11-24T10:15:00.000Z"
    delivery_attempts:
      description: Mails sent.
      type: int
      sample: 3
    bounces:
      description: Mails that bounced.
      type: int
      sample: 0
    complaints:
      description: Complaints received.
      type: int
      sample: 0
    rejects:
      description: Mails the service rejected.
      type: int
      sample: 0
'''

from ansible_collections.fjcloud.mail.plugins.module_utils.module import K5MailModule
from ansible_collections.fjcloud.mail.plugins.module_utils.quota import get_send_quota, get_send_statistics


class SendQuotaInfoModule(K5MailModule):
    module_spec = dict(
        statistics=dict(type='bool', default=True),
    )

    def run(self):
        result = dict(changed=False, quota=get_send_quota(self.client))
        if self.params['statistics']:
            result['send_data_points'] = get_send_statistics(self.client)
        return result


def main():
    SendQuotaInfoModule().execute()


if __name__ == '__main__':
    main()
