# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""send_email: the one request of each form, check mode, refusals and when a send is repeated.

The checks of every option one by one are in tests/unit/plugins/module_utils/test_sending.py; the
delivery through the emulator in tests/functional/test_send_email.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from fake_http import connection_refused, connection_reset

from ansible_collections.fjcloud.mail.plugins.modules import send_email

from .mail_api import ENDPOINT, REQUEST_ID, error, ok

MESSAGE_ID = '0000014a-f896-4c47-b8da-8b4b8e7b3c9f-000000'
RAW = 'From: noreply@example.com\nTo: ops@example.com, qa@example.com\nSubject: Raw smoke test\n\nSent with SendRawEmail.\n'
RAW_BASE64 = ('RnJvbTogbm9yZXBseUBleGFtcGxlLmNvbQpUbzogb3BzQGV4YW1wbGUuY29tLCBxYUBleGFtcGxlLmNvbQpTdWJqZWN0OiBSYXcgc21v'
              'a2UgdGVzdAoKU2VudCB3aXRoIFNlbmRSYXdFbWFpbC4K')
SIMPLE = dict(sender='運用チーム <ops@example.com>', to=['alice@example.com', 'Bob <bob@example.com>'],
              cc=['team@example.com'], bcc=['archive@example.com'], subject='送信テスト',
              body_text='これはテストです。', body_html='<p>テスト</p>')
SIMPLE_PARAMS = {
    'Source': '=?utf-8?b?6YGL55So44OB44O844Og?= <ops@example.com>',
    'Destination.ToAddresses.member.1': 'alice@example.com',
    'Destination.ToAddresses.member.2': 'Bob <bob@example.com>',
    'Destination.CcAddresses.member.1': 'team@example.com',
    'Destination.BccAddresses.member.1': 'archive@example.com',
    'Message.Subject.Data': '送信テスト', 'Message.Subject.Charset': 'UTF-8',
    'Message.Body.Text.Data': 'これはテストです。', 'Message.Body.Text.Charset': 'UTF-8',
    'Message.Body.Html.Data': '<p>テスト</p>', 'Message.Body.Html.Charset': 'UTF-8',
}


def sent(action='SendEmail'):
    return ok(action, '<MessageId>%s</MessageId>' % MESSAGE_ID)


def throttled():
    return error(400, 'Throttling', 'Service use limit exceeded.')


def test_simple_form_sends_one_send_email(api):
    api.expect('SendEmail', sent(), **SIMPLE_PARAMS)
    result = api.run(send_email.main, **SIMPLE)
    assert result == dict(changed=True, action='SendEmail', recipients=4, message_id=MESSAGE_ID, request_id=REQUEST_ID)


def test_raw_form_sends_the_message_base64_encoded(api):
    api.expect('SendRawEmail', sent('SendRawEmail'), **{'RawMessage.Data': RAW_BASE64})
    result = api.run(send_email.main, raw_message=RAW)
    assert result == dict(changed=True, action='SendRawEmail', recipients=2, message_id=MESSAGE_ID, request_id=REQUEST_ID)


def test_raw_form_with_envelope_recipients_and_sender(api):
    api.expect('SendRawEmail', sent('SendRawEmail'), **{
        'RawMessage.Data': RAW_BASE64, 'Source': 'bounce@example.com', 'Destinations.member.1': 'qa@example.com'})
    result = api.run(send_email.main, raw_message=RAW, sender='bounce@example.com', to=['qa@example.com'])
    assert (result['action'], result['recipients']) == ('SendRawEmail', 1)


def test_check_mode_sends_nothing_and_says_what_would_be_sent(api):
    result = api.run(send_email.main, check_mode=True, **SIMPLE)
    assert result == dict(changed=True, action='SendEmail', recipients=4, message_id=None, request_id=None)
    assert api.actions == []


def test_every_problem_is_reported_at_once_before_any_call(api):
    result = api.run(send_email.main, to=['not an address', 'ok@example.com'], subject='two\nlines', body_text='x')
    assert result['failed'] is True
    assert result['msg'].split('; ') == [
        'sender (from) is required when raw_message is not given: the address of a verified identity to send from',
        "to[0] 'not an address' is not a valid email address: the address contains white space",
        'subject must be one line: it contains a line break (CR or LF), which could add mail headers']
    assert api.actions == []


def test_raw_message_with_subject_is_refused(api):
    result = api.run(send_email.main, raw_message=RAW, subject='x')
    assert result['failed'] is True
    assert result['msg'] == 'parameters are mutually exclusive: raw_message|subject'


def test_throttled_send_is_repeated_as_the_service_did_not_accept_it(api):
    api.expect('SendEmail', throttled(), **SIMPLE_PARAMS)
    api.expect('SendEmail', sent(), **SIMPLE_PARAMS)
    result = api.run(send_email.main, **SIMPLE)
    assert result['message_id'] == MESSAGE_ID


def test_refused_connection_is_repeated_as_nothing_was_sent(api):
    api.expect('SendEmail', raises=connection_refused(), **SIMPLE_PARAMS)
    api.expect('SendEmail', sent(), **SIMPLE_PARAMS)
    assert api.run(send_email.main, **SIMPLE)['message_id'] == MESSAGE_ID


def test_server_error_is_not_repeated_as_the_mail_may_be_accepted(api):
    api.expect('SendEmail', error(500, 'InternalFailure', 'An internal error occurred.'), **SIMPLE_PARAMS)
    result = api.run(send_email.main, **SIMPLE)
    assert (result['failed'], result['status'], result['attempts']) == (True, 500, 1)


def test_lost_reply_is_not_repeated(api):
    api.expect('SendEmail', raises=connection_reset(), **SIMPLE_PARAMS)
    result = api.run(send_email.main, **SIMPLE)
    assert (result['failed'], result['attempts']) == (True, 1)
    assert result['msg'].startswith('SendEmail failed: cannot connect')


def test_unverified_sender_fails_with_the_service_message(api):
    api.expect('SendEmail', error(400, 'MessageRejected', 'Email address is not verified.'), **SIMPLE_PARAMS)
    result = api.run(send_email.main, **SIMPLE)
    assert result['msg'] == ('SendEmail failed: HTTP 400 MessageRejected: Email address is not verified. '
                             '(request id %s) from %s/' % (REQUEST_ID, ENDPOINT))
