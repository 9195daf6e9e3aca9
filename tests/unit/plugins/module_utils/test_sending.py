# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""send_email's checks and request building: pure functions, no network."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.replies import Response, parse_xml
from ansible_collections.fjcloud.mail.plugins.module_utils.sending import (
    MAX_MESSAGE_BYTES,
    MAX_RECIPIENTS,
    SEND_EMAIL,
    SEND_RAW_EMAIL,
    build_request,
    non_ascii_headers,
    send,
)


def simple(**kwargs):
    options = dict(sender='ops@example.com', to=['alice@example.com'], cc=None, bcc=None, subject='Hello',
                   body_text='Hi.', body_html=None, charset='UTF-8', raw_message=None)
    options.update(kwargs)
    return options


RAW = 'From: ops@example.com\nTo: alice@example.com\nSubject: Raw\n\nBody.\n'


def raw(message=RAW, **kwargs):
    options = dict(sender=None, to=None, cc=None, bcc=None, subject=None, body_text=None, body_html=None,
                   charset='UTF-8', raw_message=message)
    options.update(kwargs)
    return options


def built(options):
    request, errors = build_request(options)
    assert errors == [], errors
    return request


def errors_of(options):
    request, errors = build_request(options)
    assert request is None and errors
    return errors


def addresses(count, domain='example.com'):
    return ['user%d@%s' % (number, domain) for number in range(count)]


# ---------------------------------------------------------------- SendEmail

def test_simple_form_parameters():
    request = built(simple(sender=u'Jörg <joerg@example.com>', to=['a@example.com', 'Bob <b@example.com>'],
                           cc=['c@example.com'], bcc=['d@example.com', 'e@example.com'],
                           subject=u'Grüße', body_text='text', body_html='<p>html</p>', charset='UTF-8'))
    assert request.action == SEND_EMAIL == 'SendEmail'
    assert request.recipients == 5
    assert request.params == {
        'Source': '=?utf-8?b?SsO2cmc=?= <joerg@example.com>',
        'Destination.ToAddresses.member.1': 'a@example.com',
        'Destination.ToAddresses.member.2': 'Bob <b@example.com>',
        'Destination.CcAddresses.member.1': 'c@example.com',
        'Destination.BccAddresses.member.1': 'd@example.com',
        'Destination.BccAddresses.member.2': 'e@example.com',
        'Message.Subject.Data': u'Grüße',
        'Message.Subject.Charset': 'UTF-8',
        'Message.Body.Text.Data': 'text',
        'Message.Body.Text.Charset': 'UTF-8',
        'Message.Body.Html.Data': '<p>html</p>',
        'Message.Body.Html.Charset': 'UTF-8',
    }


def test_simple_form_html_only_bcc_only():
    request = built(simple(to=None, bcc=['hidden@example.com'], body_text=None, body_html='<b>x</b>',
                           charset='ISO-8859-1'))
    assert request.recipients == 1
    assert sorted(request.params) == ['Destination.BccAddresses.member.1', 'Message.Body.Html.Charset',
                                      'Message.Body.Html.Data', 'Message.Subject.Charset', 'Message.Subject.Data',
                                      'Source']
    assert request.params['Message.Body.Html.Charset'] == 'ISO-8859-1'


def test_simple_form_trims_spaces_around_addresses():
    request = built(simple(sender='  ops@example.com ', to=[' a@example.com']))
    assert request.params['Source'] == 'ops@example.com'
    assert request.params['Destination.ToAddresses.member.1'] == 'a@example.com'


def test_simple_form_missing_everything_reports_every_error():
    errors = errors_of(simple(sender=None, to=None, subject=None, body_text=None))
    assert errors == [
        'sender (from) is required when raw_message is not given: the address of a verified identity to send from',
        'no recipient: give at least one address in to, cc or bcc',
        'subject is required (and not empty) when raw_message is not given',
        'no body: give body_text, body_html or both',
    ]


def test_simple_form_empty_strings_count_as_missing():
    errors = errors_of(simple(subject='', body_text='', body_html='', to=[]))
    assert 'subject is required (and not empty) when raw_message is not given' in errors
    assert 'no body: give body_text, body_html or both' in errors
    assert 'no recipient: give at least one address in to, cc or bcc' in errors


def test_each_bad_address_is_named_with_its_option_and_index():
    errors = errors_of(simple(sender='ops', to=['good@example.com', 'bad@'], cc=['x y@example.com'],
                              bcc=['a@example.com, b@example.com']))
    assert len(errors) == 4
    assert errors[0].startswith("sender 'ops' is not a valid email address: an address has exactly one @")
    assert errors[1].startswith("to[1] 'bad@' is not a valid email address: the domain after @ is empty")
    assert errors[2].startswith("cc[0] 'x y@example.com' is not a valid email address: the address contains white")
    assert errors[3].startswith("bcc[0] 'a@example.com, b@example.com' is not a valid email address: it holds more")


def test_header_injection_in_an_address_is_refused_and_not_echoed_raw():
    errors = errors_of(simple(to=['alice@example.com\r\nBcc: victim@example.org']))
    assert errors == ["to[0] 'alice@example.com\\r\\nBcc: victim@example.org' is not a valid email address: "
                      "it contains a line break (CR or LF), which could add mail headers"]
    assert '\n' not in errors[0]


@pytest.mark.parametrize('subject', ['Hello\r\nBcc: victim@example.org', 'Hello\nworld', 'Hello\r', u'a\u2029b'])
def test_line_breaks_in_the_subject_are_refused(subject):
    assert errors_of(simple(subject=subject)) == [
        'subject must be one line: it contains a line break (CR or LF), which could add mail headers']


def test_control_character_in_the_subject_is_refused():
    assert errors_of(simple(subject='Hello\x00')) == ['subject contains a control character']


@pytest.mark.parametrize('to, cc, bcc', [
    (addresses(50), None, None),
    (addresses(20), addresses(20, 'example.org'), addresses(10, 'example.net')),
])
def test_fifty_recipients_are_accepted(to, cc, bcc):
    request = built(simple(to=to, cc=cc, bcc=bcc))
    assert request.recipients == MAX_RECIPIENTS == 50
    assert sum(1 for key in request.params if key.startswith('Destination.')) == 50


@pytest.mark.parametrize('to, cc, bcc', [
    (addresses(51), None, None),
    (addresses(20), addresses(20, 'example.org'), addresses(11, 'example.net')),
    (None, None, addresses(51)),
])
def test_fifty_one_recipients_are_refused(to, cc, bcc):
    assert errors_of(simple(to=to, cc=cc, bcc=bcc)) == [
        'too many recipients: 51 in to, cc and bcc, the service accepts at most 50 per message']


def test_destination_members_are_numbered_from_one_per_list():
    request = built(simple(to=addresses(12), cc=addresses(2, 'example.org')))
    assert request.params['Destination.ToAddresses.member.1'] == 'user0@example.com'
    assert request.params['Destination.ToAddresses.member.12'] == 'user11@example.com'
    assert 'Destination.ToAddresses.member.0' not in request.params
    assert 'Destination.ToAddresses.member.13' not in request.params
    assert request.params['Destination.CcAddresses.member.2'] == 'user1@example.org'


def test_message_of_exactly_two_megabytes_is_accepted():
    assert MAX_MESSAGE_BYTES == 2097152
    built(simple(body_text='a' * MAX_MESSAGE_BYTES))
    built(simple(body_text='a' * (MAX_MESSAGE_BYTES - 100), body_html='b' * 100))


def test_text_and_html_together_over_two_megabytes_are_refused():
    errors = errors_of(simple(body_text='a' * (MAX_MESSAGE_BYTES - 100), body_html='b' * 101))
    assert errors == ['the message is too large: body_text and body_html are 2,097,153 bytes in UTF-8 together, '
                      'the service accepts at most 2 MB (2,097,152 bytes) per message']


def test_size_is_counted_in_bytes_of_the_charset():
    # 'é' is two bytes in UTF-8 and one in ISO-8859-1.
    text = u'é' * (MAX_MESSAGE_BYTES // 2) + 'a'
    assert errors_of(simple(body_text=text))[0].startswith('the message is too large: body_text and body_html are '
                                                           '2,097,153 bytes in UTF-8')
    built(simple(body_text=text, charset='ISO-8859-1'))


def test_text_the_charset_cannot_hold_is_refused():
    errors = errors_of(simple(subject=u'件名', body_text=u'本文', charset='ISO-8859-1'))
    assert errors == [
        u"subject cannot be encoded in charset ISO-8859-1: '件名' at position 0, choose a charset that holds it, such as UTF-8",
        u"body_text cannot be encoded in charset ISO-8859-1: '本文' at position 0, choose a charset that holds it, such as UTF-8",
    ]


def test_japanese_charset():
    request = built(simple(subject=u'送信テスト', body_text=u'これはテストです。', charset='ISO-2022-JP'))
    assert request.params['Message.Subject.Charset'] == 'ISO-2022-JP'
    assert request.params['Message.Subject.Data'] == u'送信テスト'


@pytest.mark.parametrize('charset, message', [
    ('no-such-charset', "charset 'no-such-charset' is not a known character set"),
    ('UTF-8\r\nX: y', "charset 'UTF-8\\r\\nX: y' is not a character set name"),
])
def test_bad_charset(charset, message):
    errors = errors_of(simple(charset=charset))
    assert len(errors) == 1 and errors[0].startswith(message)


# ---------------------------------------------------------------- SendRawEmail

def test_raw_form_parameters_without_source_or_destinations():
    request = built(raw())
    assert request.action == SEND_RAW_EMAIL == 'SendRawEmail'
    assert request.recipients == 1
    assert list(request.params) == ['RawMessage.Data']
    assert base64.b64decode(request.params['RawMessage.Data']).decode('utf-8') == RAW


def test_raw_form_with_source_and_destinations():
    request = built(raw(sender=u'Jörg <ops@example.com>', to=['x@example.com'], cc=['Y <y@example.com>'],
                        bcc=['z@example.com']))
    assert request.recipients == 3
    assert request.params['Source'] == '=?utf-8?b?SsO2cmc=?= <ops@example.com>'
    # The envelope recipients: bare addresses, to then cc then bcc, numbered from 1.
    assert [request.params['Destinations.member.%d' % number] for number in (1, 2, 3)] == [
        'x@example.com', 'y@example.com', 'z@example.com']
    assert 'Destinations.member.4' not in request.params


def test_raw_message_is_sent_byte_for_byte_with_a_utf8_body():
    message = ('From: ops@example.com\r\nTo: a@example.com\r\nSubject: =?UTF-8?B?5Lu25ZCN?=\r\n'
               'Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n本文です。\r\n')
    request = built(raw(message))
    assert base64.b64decode(request.params['RawMessage.Data']) == message.encode('utf-8')


def test_raw_without_from_needs_a_sender():
    message = 'To: alice@example.com\nSubject: x\n\nbody\n'
    assert errors_of(raw(message)) == ['raw_message has no From header: add one, or give sender (from)']
    request = built(raw(message, sender='ops@example.com'))
    assert request.params['Source'] == 'ops@example.com'


def test_raw_with_an_empty_from_needs_a_sender():
    assert errors_of(raw('From: \nTo: alice@example.com\n\nbody\n')) == [
        'raw_message: the From header holds no address: fix it, or give sender (from)']


def test_raw_without_recipients_needs_destinations():
    message = 'From: ops@example.com\nSubject: x\n\nbody\n'
    assert errors_of(raw(message)) == [
        'no recipient: raw_message has no To, Cc or Bcc header with an address, and none of to, cc or bcc is given']
    assert built(raw(message, bcc=['b@example.com'])).recipients == 1


def test_raw_recipients_are_counted_from_the_headers():
    message = 'From: ops@example.com\nTo: a@example.com, B <b@example.com>\nCc: c@example.com\nBcc: d@example.com\n\nx'
    assert built(raw(message)).recipients == 4


def test_raw_with_fifty_one_header_recipients_is_refused():
    header = 'To: %s\nCc: %s\n' % (', '.join(addresses(25)), ', '.join(addresses(26, 'example.org')))
    assert errors_of(raw('From: ops@example.com\n' + header + '\nbody')) == [
        'too many recipients: 51 in the To, Cc and Bcc headers of raw_message, the service accepts at most 50 per message']
    # Destinations replace the header recipients, and are what is counted.
    assert built(raw('From: ops@example.com\n' + header + '\nbody', to=addresses(50))).recipients == 50


def test_raw_with_fifty_one_destinations_is_refused():
    assert errors_of(raw(to=addresses(30), bcc=addresses(21, 'example.org'))) == [
        'too many recipients: 51 in to, cc and bcc, the service accepts at most 50 per message']


def test_raw_size_boundary_counts_utf8_bytes_before_base64():
    head = 'From: ops@example.com\nTo: a@example.com\n\n'
    exact = head + 'a' * (MAX_MESSAGE_BYTES - len(head))
    request = built(raw(exact))
    assert len(base64.b64decode(request.params['RawMessage.Data'])) == MAX_MESSAGE_BYTES
    rest = MAX_MESSAGE_BYTES + 1 - len(head)
    over = head + u'é' * (rest // 2) + 'a' * (rest % 2)
    assert len(over) < MAX_MESSAGE_BYTES < len(over.encode('utf-8')) == MAX_MESSAGE_BYTES + 1
    assert errors_of(raw(over)) == ['raw_message is too large: 2,097,153 bytes in UTF-8, '
                                    'the service accepts at most 2 MB (2,097,152 bytes) per message']


def test_raw_with_non_ascii_headers_is_refused_with_how_to_encode():
    message = u'From: Jörg <ops@example.com>\nTo: a@example.com\nSubject: Grüße\n\nBody ü is fine.\n'
    errors = errors_of(raw(message))
    assert len(errors) == 1
    assert errors[0].startswith('raw_message: the header From, Subject contain raw non-ASCII characters: '
                                'encode them as RFC 2047 encoded words (=?UTF-8?B?...?=')
    assert 'use the simple form' in errors[0]


def test_non_ascii_in_a_folded_header_line_names_its_field():
    message = u'From: ops@example.com\nTo: a@example.com\nSubject: first line\n  second ünicode line\n\nbody'
    assert non_ascii_headers(message) == ['Subject']
    assert errors_of(raw(message))[0].startswith('raw_message: the header Subject contains raw non-ASCII')


def test_non_ascii_in_the_body_only_is_not_a_header_problem():
    assert non_ascii_headers(u'From: a@example.com\r\n\r\nÜber\r\nX: ü\r\n') == []


def test_raw_without_header_section():
    errors = errors_of(raw('just some text\n\nmore text', to=['a@example.com'], sender='ops@example.com'))
    assert errors == ['raw_message has no header section: an RFC 5322 message starts with header lines '
                      '(From:, To:, Subject:), then an empty line, then the body']
    assert 'no header section' in errors_of(raw('\nFrom: ops@example.com\nTo: a@example.com\n\nbody'))[0]


def test_raw_empty():
    assert errors_of(raw('  \n')) == ['raw_message is empty']
    assert errors_of(raw('', to=addresses(51))) == [
        'raw_message is empty', 'too many recipients: 51 in to, cc and bcc, the service accepts at most 50 per message']


def test_raw_reports_every_error_together():
    message = u'Subject: Grüße\n\nbody'
    errors = errors_of(raw(message, sender='bad sender', to=['nobody']))
    assert [error.split(':')[0] for error in errors] == [
        "sender 'bad sender' is not a valid email address",
        "to[0] 'nobody' is not a valid email address",
        'raw_message',
    ]


def test_messages_are_one_line_without_the_separator_the_module_joins_them_with():
    errors = (errors_of(simple(sender=u'jörg@bücher.de', to=['x\ny', 'a,b@c, d@e.com'] + addresses(50), cc=['<>'],
                               subject='a\rb', body_text=u'é' * MAX_MESSAGE_BYTES, charset='ASCII'))
              + errors_of(raw(u'Subject: ü\n\nbody', sender='bad', to=addresses(51)))
              + errors_of(raw('plain text')))
    assert len(errors) == 13
    for error in errors:
        assert '; ' not in error and '\n' not in error and '\r' not in error, error


# ---------------------------------------------------------------- sending

class FakeClient:
    def __init__(self, body, request_id='65ce6f91-4e8d-44a1-b33e-5ba3de2f528b'):
        self.body = body
        self.request_id = request_id
        self.calls = []

    def call(self, action, params=None, accept=(), idempotent=True):
        assert idempotent is False, 'a send must never be repeated after it may have been accepted'
        self.calls.append((action, params))
        return Response(action, 200, parse_xml(self.body), self.request_id)


def test_send_returns_the_message_id_and_request_id():
    client = FakeClient('<SendEmailResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><SendEmailResult>'
                        '<MessageId> 00000141-abcd-000000 </MessageId></SendEmailResult></SendEmailResponse>')
    request = built(simple())
    assert send(client, request) == ('00000141-abcd-000000', '65ce6f91-4e8d-44a1-b33e-5ba3de2f528b')
    assert client.calls == [('SendEmail', request.params)]


def test_send_fails_when_the_reply_has_no_message_id():
    from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
    client = FakeClient('<SendRawEmailResponse><SendRawEmailResult/></SendRawEmailResponse>')
    with pytest.raises(K5MailError, match='the reply lacks MessageId'):
        send(client, built(raw()))
