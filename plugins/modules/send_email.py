#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: send_email
short_description: Send one message through the K5 Email Delivery Service API
version_added: 1.0.0
description:
  - Sends one message through the mail API of the Email Delivery Service of FUJITSU Cloud
    Service K5 / FJcloud-O, for example to smoke-test a new sender identity or mail relay.
  - "The simple form builds the message from O(sender), O(to), O(cc), O(bcc), O(subject),
    O(body_text) and O(body_html), and calls C(SendEmail)."
  - The raw form sends O(raw_message), a complete RFC 5322 message, with C(SendRawEmail).
  - "Everything is checked before the request, and every problem is reported at once:
    at most 50 recipients, at most 2 MB (2,097,152 bytes) of message, well-formed addresses,
    one-line subject and addresses (no CR or LF)."
  - The sender must be a verified identity (an address, or an address in a verified domain);
    otherwise the service rejects the message, and the module fails with the service's error.
  - Every run sends a message and reports a change.
author:
  - fjcloud.mail developers (@fjcloud)
extends_documentation_fragment:
  - fjcloud.mail.k5
  - fjcloud.mail.k5.attributes
attributes:
  check_mode:
    description: The options are checked and nothing is sent; no request is made. The result reports
      a change, with RV(message_id) null.
    support: full
  diff_mode:
    description: Nothing to compare.
    support: none
  idempotent:
    description: Every run sends one more message.
    support: none
options:
  sender:
    description:
      - The address to send from, C(ops@example.com) or with a display name, C(Ops <ops@example.com>).
        It must be a verified identity, or an address in a verified domain.
      - A display name that is not ASCII is RFC 2047 encoded (UTF-8) before it is sent.
      - Required in the simple form.
      - In the raw form, the envelope sender (C(Source)); when not given, the service takes it
        from the C(From) header of O(raw_message), which is then required.
    type: str
    aliases: [from]
  to:
    description:
      - Addresses of the recipients, each C(user@example.com) or C(Name <user@example.com>).
        A string is split at every comma; give a list when a display name holds a comma,
        and quote that name (C("Ops, Team" <ops@example.com>)).
      - O(to), O(cc) and O(bcc) hold at most 50 addresses together, and at least one in the simple form.
      - In the raw form, O(to), O(cc) and O(bcc) together are the envelope recipients
        (C(Destinations)), which replace the recipients named in the headers of O(raw_message);
        the headers themselves are not changed.
    type: list
    elements: str
  cc:
    description:
      - Addresses that receive a copy. See O(to).
    type: list
    elements: str
  bcc:
    description:
      - Addresses that receive a blind copy. See O(to).
    type: list
    elements: str
  subject:
    description:
      - The subject, one line. Required in the simple form.
      - It may hold any character of O(charset); the service encodes it.
    type: str
  body_text:
    description:
      - The plain text body. The simple form needs O(body_text), O(body_html) or both;
        with both, the message offers the two versions.
      - O(body_text) and O(body_html) may hold 2 MB together, counted in O(charset).
    type: str
  body_html:
    description:
      - The HTML body. See O(body_text).
    type: str
  charset:
    description:
      - Character set of O(subject), O(body_text) and O(body_html) in the message.
      - Every character of them must exist in this character set.
      - Simple form only.
    type: str
    default: UTF-8
  raw_message:
    description:
      - A complete RFC 5322 message, headers and body, sent as it is with C(SendRawEmail)
        (base64 encoded, as the service wants). Cannot be used with O(subject), O(body_text),
        O(body_html) or O(charset).
      - It needs a C(From) header unless O(sender) is given, and a C(To), C(Cc) or C(Bcc) header
        unless O(to), O(cc) or O(bcc) is given.
      - Header values must be ASCII; encode other characters as RFC 2047 encoded words
        (C(=?UTF-8?B?...?=)). A message with raw non-ASCII characters in its headers is refused
        before sending. The body is sent in UTF-8; declare it with C(Content-Type) and
        C(Content-Transfer-Encoding) headers, or keep it ASCII.
      - At most 2 MB (2,097,152 bytes) in UTF-8, before base64 encoding.
    type: str
notes:
  - The service also limits how many messages a contract sends in 24 hours; see
    M(fjcloud.mail.send_quota_info).
  - A send is repeated (see O(retries)) only when the service cannot have accepted it, after a throttling
    reply or a connection that failed before the request was sent; never after a timeout or an HTTP 5xx,
    which may come after the message was accepted. The mail is then reported as failed, not sent twice.
seealso:
  - module: fjcloud.mail.identity
  - module: fjcloud.mail.send_quota_info
  - name: Email Delivery Service API reference
    description: The SendEmail and SendRawEmail actions.
    link: https://doc.cloud.global.fujitsu.com/lib/iaas/en/api-reference/
'''

EXAMPLES = r'''
- name: Send a smoke-test message from a verified address
  fjcloud.mail.send_email:
    auth_token: "{{ k5_token }}"
    sender: Relay check <noreply@example.com>
    to:
      - ops@example.com
    subject: "Relay {{ inventory_hostname }} is configured"
    body_text: |
      This message was sent by Ansible through the K5 Email Delivery Service API.
  register: sent

- name: Show the message id
  ansible.builtin.debug:
    var: sent.message_id

- name: Send a message with text and HTML bodies to several recipients, in Japanese
  fjcloud.mail.send_email:
    auth_token: "{{ k5_token }}"
    sender: 運用チーム <ops@example.com>
    to: [alice@example.com, "Bob <bob@example.com>"]
    cc: [team@example.com]
    bcc: [archive@example.com]
    subject: 送信テスト
    body_text: これはテストです。
    body_html: <p>これは<b>テスト</b>です。</p>
    charset: ISO-2022-JP

- name: Send a complete message, to the recipients of its headers
  fjcloud.mail.send_email:
    auth_token: "{{ k5_token }}"
    raw_message: |
      From: noreply@example.com
      To: ops@example.com
      Subject: Raw smoke test
      MIME-Version: 1.0
      Content-Type: text/plain; charset=UTF-8
      Content-Transfer-Encoding: 8bit

      Sent with SendRawEmail.

- name: Send a complete message to other recipients than its headers name
  fjcloud.mail.send_email:
    auth_token: "{{ k5_token }}"
    sender: noreply@example.com
    to: [qa@example.com]
    raw_message: "{{ lookup('ansible.builtin.file', 'files/newsletter.eml') }}"
'''

RETURN = r'''
message_id:
  description: The service's id of the message. Null in check mode.
  returned: always
  type: str
  sample: 0000014a-f896-4c47-b8da-8b4b8e7b3c9f-000000
request_id:
  description: The service's request id of the call, for support requests. Null in check mode.
  returned: always
  type: str
  sample: 65ce6f91-4e8d-44a1-b33e-5ba3de2f528b
action:
  description: The action used (or that would be used, in check mode).
  returned: always
  type: str
  sample: SendEmail
  choices: [SendEmail, SendRawEmail]
recipients:
  description:
    - How many recipients the message has. In the raw form without O(to), O(cc) or O(bcc),
      the addresses in the C(To), C(Cc) and C(Bcc) headers of O(raw_message).
  returned: always
  type: int
  sample: 3
'''

from ansible_collections.fjcloud.mail.plugins.module_utils.module import K5MailModule
from ansible_collections.fjcloud.mail.plugins.module_utils.sending import DEFAULT_CHARSET, build_request, send


class SendEmailModule(K5MailModule):
    module_spec = dict(
        sender=dict(type='str', aliases=['from']),
        to=dict(type='list', elements='str'),
        cc=dict(type='list', elements='str'),
        bcc=dict(type='list', elements='str'),
        subject=dict(type='str'),
        body_text=dict(type='str'),
        body_html=dict(type='str'),
        charset=dict(type='str', default=DEFAULT_CHARSET),
        raw_message=dict(type='str'),
    )
    module_kwargs = dict(
        mutually_exclusive=[
            ('raw_message', 'subject'),
            ('raw_message', 'body_text'),
            ('raw_message', 'body_html'),
            ('raw_message', 'charset'),
        ],
    )

    def validate(self):
        self.request, errors = build_request(self.params)
        return errors

    def run(self):
        result = dict(changed=True, action=self.request.action, recipients=self.request.recipients,
                      message_id=None, request_id=None)
        if not self.check_mode:
            result['message_id'], result['request_id'] = send(self.client, self.request)
        return result


def main():
    SendEmailModule().execute()


if __name__ == '__main__':
    main()
