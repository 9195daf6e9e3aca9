# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the emulator's identity, sending, quota and statistics actions over real HTTPS."""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import re
import smtplib
import ssl
import time

import pytest
from lxml import etree

from k5emu import DEFAULT_NAMESPACE, DEFAULT_PROJECT_ID
from k5emu.control import EmulatorError

TOKEN_RE = re.compile(r'^[A-Za-z0-9+/]{43}=$')
MESSAGE_ID_RE = re.compile(r'^[0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-000000$')
TIMESTAMP_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$')
SENDER = 'sender@example.com'
TWO_MB = 2 * 1024 * 1024


@pytest.fixture(name='token')
def fixture_token(emu):
    return emu.token()


# ------------------------------------------------------------------ helpers
def xml(reply):
    return etree.fromstring(reply.content)


def texts(root, name):
    return [(node.text or '').strip() for node in root.xpath('.//*[local-name()=$name]', name=name)]


def text(root, name):
    found = texts(root, name)
    assert len(found) == 1, (name, etree.tostring(root).decode())
    return found[0]


def ok(emu, action, token, params=None):
    """Call an action, expect 200; return the parsed document (checked against the response shape)."""
    reply = emu.mail(action, token, params=params)
    assert reply.status_code == 200, reply.text
    root = xml(reply)
    assert root.tag == '{%s}%sResponse' % (DEFAULT_NAMESPACE, action)
    assert [etree.QName(child).localname for child in root] == [action + 'Result', 'ResponseMetadata']
    assert text(root, 'RequestId') == reply.headers['x-fj-request-id']
    return root


def result(root):
    return root[0]


def assert_error(reply, code, status=400):
    assert reply.status_code == status, reply.text
    root = xml(reply)
    assert root.tag == '{%s}ErrorResponse' % DEFAULT_NAMESPACE
    assert text(root, 'Type') == 'Sender'
    assert text(root, 'Code') == code, reply.text
    assert text(root, 'RequestId') == reply.headers['x-fj-request-id']
    return text(root, 'Message')


def members(prefix, values):
    return {'%s.member.%d' % (prefix, index): value for index, value in enumerate(values, 1)}


def identities(root):
    return texts(root, 'member')


def list_all(emu, token, **params):
    """Follow NextToken; return the pages (lists of identities)."""
    pages, query = [], {k: str(v) for k, v in params.items()}
    while True:
        root = result(ok(emu, 'ListIdentities', token, query))
        pages.append(identities(root))
        next_token = texts(root, 'NextToken')
        if not next_token:
            return pages
        query['NextToken'] = next_token[0]
        assert len(pages) < 20


def contract_identities(emu):
    return emu.state()['contracts'][DEFAULT_PROJECT_ID]['identities']


def send_params(source=SENDER, to=('to@example.net',), cc=(), bcc=(), subject='Hello', text_body='Text body', html=None, **extra):
    params = {'Source': source, 'Message.Subject.Data': subject}
    params.update(members('Destination.ToAddresses', to))
    params.update(members('Destination.CcAddresses', cc))
    params.update(members('Destination.BccAddresses', bcc))
    if text_body is not None:
        params['Message.Body.Text.Data'] = text_body
    if html is not None:
        params['Message.Body.Html.Data'] = html
    params.update(extra)
    return params


def raw_params(raw, destinations=(), **extra):
    params = {'RawMessage.Data': base64.b64encode(raw).decode('ascii')}
    params.update(members('Destinations', destinations))
    params.update(extra)
    return params


def quota(emu, token):
    root = result(ok(emu, 'GetSendQuota', token))
    assert [etree.QName(child).localname for child in root] == ['SentLast24Hours', 'Max24HourSend', 'MaxSendRate']
    return {etree.QName(child).localname: float(child.text) for child in root}


RAW = (b'From: Sender <sender@example.com>\r\nTo: header-to@example.net\r\nCc: header-cc@example.net\r\n'
       b'Subject: Raw hello\r\nMessage-ID: <raw-1@example.com>\r\n\r\nRaw body.\r\n')


# --------------------------------------------------------------- identities
def test_verify_domain_identity(emu, token):
    root = ok(emu, 'VerifyDomainIdentity', token, {'Domain': 'Example.COM'})
    first = text(result(root), 'VerificationToken')
    assert TOKEN_RE.match(first)
    entry = contract_identities(emu)['example.com']
    assert entry['type'] == 'Domain' and entry['status'] == 'Pending' and entry['token'] == first and entry['created_at']
    # verifying again returns the same token; a failed domain goes back to Pending
    emu.set_identity('example.com', 'Failed')
    assert text(ok(emu, 'VerifyDomainIdentity', token, {'Domain': 'example.com'}), 'VerificationToken') == first
    assert contract_identities(emu)['example.com']['status'] == 'Pending'
    # a verified one stays verified
    emu.set_identity('example.com')
    assert text(ok(emu, 'VerifyDomainIdentity', token, {'Domain': 'example.com'}), 'VerificationToken') == first
    assert contract_identities(emu)['example.com']['status'] == 'Success'
    other = text(ok(emu, 'VerifyDomainIdentity', token, {'Domain': 'example.org'}), 'VerificationToken')
    assert TOKEN_RE.match(other) and other != first


def test_verify_email_identity(emu, token):
    root = ok(emu, 'VerifyEmailIdentity', token, {'EmailAddress': 'Someone@Example.COM'})
    assert len(result(root)) == 0 and not (result(root).text or '').strip()
    assert contract_identities(emu) == {'Someone@example.com': {
        'type': 'EmailAddress', 'status': 'Pending', 'created_at': contract_identities(emu)['Someone@example.com']['created_at']}}
    emu.set_identity('Someone@example.com')
    ok(emu, 'VerifyEmailIdentity', token, {'EmailAddress': 'Someone@example.com'})
    assert contract_identities(emu)['Someone@example.com']['status'] == 'Success'
    emu.set_identity('Someone@example.com', 'TemporaryFailure')
    ok(emu, 'VerifyEmailIdentity', token, {'EmailAddress': 'Someone@example.com'})
    assert contract_identities(emu)['Someone@example.com']['status'] == 'Pending'


LONG_DOMAIN = '.'.join(['a' * 63, 'b' * 63, 'c' * 63, 'd' * 63])       # 255 characters
LONG_EMAIL = 'l' * 64 + '@' + '.'.join(['e' * 63, 'f' * 63, 'g' * 63])  # 256 characters


@pytest.mark.parametrize('action, params, code, words', [
    ('VerifyEmailIdentity', {}, 'MissingParameter', 'EmailAddress'),
    ('VerifyEmailIdentity', {'EmailAddress': 'no-at-sign.example.com'}, 'InvalidParameterValue', 'exactly one "@"'),
    ('VerifyEmailIdentity', {'EmailAddress': 'a@b@example.com'}, 'InvalidParameterValue', 'exactly one "@"'),
    ('VerifyEmailIdentity', {'EmailAddress': '@example.com'}, 'InvalidParameterValue', 'local part'),
    ('VerifyEmailIdentity', {'EmailAddress': 'a b@example.com'}, 'InvalidParameterValue', 'local part'),
    ('VerifyEmailIdentity', {'EmailAddress': 'a..b@example.com'}, 'InvalidParameterValue', 'local part'),
    ('VerifyEmailIdentity', {'EmailAddress': 'a@localhost'}, 'InvalidParameterValue', 'two labels'),
    ('VerifyEmailIdentity', {'EmailAddress': 'x' + LONG_EMAIL}, 'InvalidParameterValue', 'too long'),
    ('VerifyEmailIdentity', {'EmailAddress': 'a@example.com', 'Extra': '1'}, 'InvalidParameterValue', 'Unknown parameter'),
    ('VerifyDomainIdentity', {}, 'MissingParameter', 'Domain'),
    ('VerifyDomainIdentity', {'Domain': 'localhost'}, 'InvalidParameterValue', 'two labels'),
    ('VerifyDomainIdentity', {'Domain': '-bad.example.com'}, 'InvalidParameterValue', 'hyphen'),
    ('VerifyDomainIdentity', {'Domain': 'a..example.com'}, 'InvalidParameterValue', 'label'),
    ('VerifyDomainIdentity', {'Domain': 'under_score.example.com'}, 'InvalidParameterValue', 'label'),
    ('VerifyDomainIdentity', {'Domain': 'example.com.'}, 'InvalidParameterValue', 'label'),
    ('VerifyDomainIdentity', {'Domain': '192.168.0.1'}, 'InvalidParameterValue', 'numeric'),
    ('VerifyDomainIdentity', {'Domain': 'bücher.example'}, 'InvalidParameterValue', 'xn--'),
    ('VerifyDomainIdentity', {'Domain': 'x.' + LONG_DOMAIN}, 'InvalidParameterValue', 'too long'),
    ('VerifyDomainIdentity', {'Domain': 'a@example.com'}, 'InvalidParameterValue', 'label'),
    ('DeleteIdentity', {}, 'MissingParameter', 'Identity'),
    ('DeleteIdentity', {'Identity': 'not a domain'}, 'InvalidParameterValue', 'label'),
    ('GetIdentityVerificationAttributes', {}, 'MissingParameter', 'Identities.member.1'),
    ('GetIdentityVerificationAttributes', {'Identities.member.1': 'a@'}, 'InvalidParameterValue', 'domain'),
    ('GetIdentityVerificationAttributes', {'Identities.member.1': 'a.com', 'Identities.member.3': 'b.com'}, 'InvalidParameterValue', 'without gaps'),
    ('GetIdentityVerificationAttributes', {'Identities.member.0': 'a.com'}, 'InvalidParameterValue', 'Unknown parameter'),
    ('GetIdentityVerificationAttributes', {'Identities.member.01': 'a.com'}, 'InvalidParameterValue', 'Unknown parameter'),
    ('GetSendQuota', {'Extra': '1'}, 'InvalidParameterValue', 'Unknown parameter'),
    ('GetSendStatistics', {'Extra': '1'}, 'InvalidParameterValue', 'Unknown parameter'),
])
def test_identity_validation(emu, token, action, params, code, words):
    message = assert_error(emu.mail(action, token, params=params), code)
    assert words in message
    assert contract_identities(emu) == {}


def test_identity_length_limits(emu, token):
    assert len(LONG_DOMAIN) == 255 and len(LONG_EMAIL) == 256
    ok(emu, 'VerifyDomainIdentity', token, {'Domain': LONG_DOMAIN})
    ok(emu, 'VerifyEmailIdentity', token, {'EmailAddress': LONG_EMAIL})
    assert sorted(contract_identities(emu)) == sorted([LONG_DOMAIN, LONG_EMAIL])
    root = ok(emu, 'GetIdentityVerificationAttributes', token, members('Identities', [LONG_DOMAIN, LONG_EMAIL]))
    assert texts(root, 'key') == [LONG_DOMAIN, LONG_EMAIL]


def test_delete_identity(emu, token):
    ok(emu, 'VerifyEmailIdentity', token, {'EmailAddress': 'a@example.com'})
    ok(emu, 'VerifyDomainIdentity', token, {'Domain': 'example.com'})
    root = ok(emu, 'DeleteIdentity', token, {'Identity': 'EXAMPLE.com'})
    assert len(result(root)) == 0
    assert list(contract_identities(emu)) == ['a@example.com']
    # unknown identity: 200, as in SES
    ok(emu, 'DeleteIdentity', token, {'Identity': 'nobody@example.com'})
    ok(emu, 'DeleteIdentity', token, {'Identity': 'a@example.com'})
    assert contract_identities(emu) == {}
    assert identities(result(ok(emu, 'ListIdentities', token))) == []


def test_get_identity_verification_attributes(emu, token):
    ok(emu, 'VerifyDomainIdentity', token, {'Domain': 'example.com'})
    domain_token = contract_identities(emu)['example.com']['token']
    emu.set_identity('ok@example.org')
    emu.set_identity('bad@example.org', 'Failed')
    emu.set_identity('later.example.org', 'NotStarted')
    asked = ['EXAMPLE.com', 'unknown@example.org', 'ok@example.org', 'bad@example.org', 'later.example.org', 'unknown.example']
    root = ok(emu, 'GetIdentityVerificationAttributes', token, members('Identities', asked))
    entries = result(root).xpath('*[local-name()="VerificationAttributes"]/*[local-name()="entry"]')
    found = {}
    for entry in entries:
        found[text(entry, 'key')] = {etree.QName(node).localname: node.text for node in entry.xpath('*[local-name()="value"]/*')}
    assert found == {
        'EXAMPLE.com': {'VerificationStatus': 'Pending', 'VerificationToken': domain_token},
        'ok@example.org': {'VerificationStatus': 'Success'},
        'bad@example.org': {'VerificationStatus': 'Failed'},
        'later.example.org': {'VerificationStatus': 'NotStarted', 'VerificationToken': contract_identities(emu)['later.example.org']['token']},
    }
    # only unknown identities: an empty map
    root = ok(emu, 'GetIdentityVerificationAttributes', token, {'Identities.member.1': 'nobody.example'})
    assert len(result(root)) == 1 and len(result(root)[0]) == 0


def test_get_identity_verification_attributes_batch_limit(emu, token):
    names = ['user%03d@example.com' % index for index in range(101)]
    assert emu.seed_identities(names) == 101
    root = ok(emu, 'GetIdentityVerificationAttributes', token, members('Identities', names[:100]))
    assert texts(root, 'key') == names[:100]
    assert texts(root, 'VerificationStatus') == ['Success'] * 100
    message = assert_error(emu.mail('GetIdentityVerificationAttributes', token, params=members('Identities', names)), 'InvalidParameterValue')
    assert '100' in message and '101' in message


def test_list_identities_three_pages(emu, token):
    names = ['b@example.com', 'example.org', 'a@example.com', 'example.com', 'c@example.net']
    for name in names:
        emu.set_identity(name, 'Pending')
    pages = list_all(emu, token, MaxItems=2)
    assert pages == [['a@example.com', 'b@example.com'], ['c@example.net', 'example.com'], ['example.org']]
    assert list_all(emu, token, IdentityType='Domain', MaxItems=1) == [['example.com'], ['example.org']]
    assert list_all(emu, token, IdentityType='EmailAddress') == [['a@example.com', 'b@example.com', 'c@example.net']]
    # an exact multiple: no NextToken on the last page
    assert list_all(emu, token, IdentityType='Domain', MaxItems=2) == [['example.com', 'example.org']]
    # the token points after the last item seen, so a deletion between pages loses nothing
    first = result(ok(emu, 'ListIdentities', token, {'MaxItems': '2'}))
    ok(emu, 'DeleteIdentity', token, {'Identity': 'b@example.com'})
    rest = result(ok(emu, 'ListIdentities', token, {'MaxItems': '2', 'NextToken': text(first, 'NextToken')}))
    assert identities(rest) == ['c@example.net', 'example.com']


def test_list_identities_250(emu, token):
    names = ['user%03d@example.com' % index for index in range(200)] + ['domain%02d.example.com' % index for index in range(50)]
    assert emu.seed_identities(names) == 250
    pages = list_all(emu, token, MaxItems=100)
    assert [len(page) for page in pages] == [100, 100, 50]
    assert sum(pages, []) == sorted(names)
    assert [len(page) for page in list_all(emu, token)] == [100, 100, 50]  # default MaxItems is 100
    assert [len(page) for page in list_all(emu, token, IdentityType='Domain')] == [50]


def test_list_identities_validation(emu, token):
    emu.seed_identities(['a@example.com', 'b@example.com', 'example.com'])
    for params in ({'IdentityType': 'Bogus'}, {'IdentityType': ''}, {'MaxItems': '0'}, {'MaxItems': '101'}, {'MaxItems': 'x'},
                   {'MaxItems': ''}, {'MaxItems': '-1'}, {'Other': '1'}):
        assert_error(emu.mail('ListIdentities', token, params=params), 'InvalidParameterValue')
    assert_error(emu.mail('ListIdentities', token, params={'NextToken': 'garbage!'}), 'InvalidNextToken')
    assert_error(emu.mail('ListIdentities', token, params={'NextToken': ''}), 'InvalidNextToken')
    assert_error(emu.mail('ListIdentities', token, params={'NextToken': base64.b64encode(b'{"a": 1}').decode()}), 'InvalidNextToken')
    first = result(ok(emu, 'ListIdentities', token, {'MaxItems': '1', 'IdentityType': 'EmailAddress'}))
    assert_error(emu.mail('ListIdentities', token, params={'NextToken': text(first, 'NextToken'), 'IdentityType': 'Domain'}), 'InvalidNextToken')


# ------------------------------------------------------------------ sending
def test_send_email_unverified_source_is_rejected(emu, token):
    message = assert_error(emu.mail('SendEmail', token, params=send_params()), 'MessageRejected')
    assert message.startswith('Email address is not verified.') and SENDER in message
    emu.set_identity(SENDER, 'Pending')
    assert_error(emu.mail('SendEmail', token, params=send_params()), 'MessageRejected')
    emu.set_identity('example.com', 'Failed')
    assert_error(emu.mail('SendEmail', token, params=send_params()), 'MessageRejected')
    # verified for another address or a parent domain does not count
    emu.set_identity('other@example.com')
    emu.set_identity('example.org')
    assert_error(emu.mail('SendEmail', token, params=send_params(source='x@sub.example.org')), 'MessageRejected')
    assert emu.messages() == []


def test_send_email_is_stored(emu, token):
    emu.set_identity(SENDER)
    params = send_params(source='=?utf-8?B?U8OpbmRlcg==?= <sender@example.com>', to=('To One <to1@example.net>', 'to2@example.net'),
                         cc=('cc@example.net',), bcc=('bcc@example.net',), subject='Grüße', text_body='Hallo, Welt',
                         html='<p>Grüße</p>', **{'Message.Subject.Charset': 'ISO-8859-1', 'Message.Body.Html.Charset': 'UTF-8'})
    sent_at = round(time.time(), 6)  # the record's precision
    root = ok(emu, 'SendEmail', token, params)
    assert [etree.QName(child).localname for child in result(root)] == ['MessageId']
    message_id = text(root, 'MessageId')
    assert MESSAGE_ID_RE.match(message_id)
    record, = emu.messages()
    assert record['source'] == 'api' and record['auth_user'] is None
    assert record['project_id'] == DEFAULT_PROJECT_ID
    assert record['mail_from'] == SENDER
    assert record['rcpt_tos'] == ['to1@example.net', 'to2@example.net', 'cc@example.net', 'bcc@example.net']
    assert record['message_id'] == message_id
    assert record['subject'] == 'Grüße'
    assert sent_at <= record['time'] <= time.time()
    parsed = email.message_from_string(record['data'], policy=email.policy.default)
    assert '\r\n' in record['data']
    assert str(parsed['From']) == 'Sénder <sender@example.com>'
    assert str(parsed['To']) == 'To One <to1@example.net>, to2@example.net'
    assert str(parsed['Cc']) == 'cc@example.net'
    assert parsed['Bcc'] is None
    assert str(parsed['Subject']) == 'Grüße'
    assert 'iso-8859-1' in record['data'].lower()
    assert parsed['Message-ID'].strip() == '<%s@email.k5emu.localhost>' % message_id
    assert parsed['Date'] is not None and parsed['MIME-Version'] == '1.0'
    assert parsed.get_content_type() == 'multipart/alternative'
    assert parsed.get_body(('plain',)).get_content().strip() == 'Hallo, Welt'
    assert parsed.get_body(('html',)).get_content().strip() == '<p>Grüße</p>'


def test_send_email_from_verified_domain_and_limits(emu, token):
    emu.set_identity('Example.com')
    html_only = send_params(source='News <news@EXAMPLE.com>', text_body=None, html='<b>x</b>')
    ok(emu, 'SendEmail', token, html_only)
    record, = emu.messages()
    assert record['mail_from'] == 'news@example.com'
    assert email.message_from_string(record['data'], policy=email.policy.default).get_content_type() == 'text/html'
    # 50 recipients in total is the maximum; exactly 2 MB of text and html is allowed
    fifty = send_params(source='news@example.com', to=['t%d@example.net' % i for i in range(20)],
                        cc=['c%d@example.net' % i for i in range(20)], bcc=['b%d@example.net' % i for i in range(10)])
    ok(emu, 'SendEmail', token, fifty)
    ok(emu, 'SendEmail', token, send_params(source='news@example.com', text_body='t' * (TWO_MB - 10), html='h' * 10))
    assert len(emu.messages()) == 3


@pytest.mark.parametrize('change, code, words', [
    ({'Source': None}, 'MissingParameter', 'Source'),
    ({'Destination.ToAddresses.member.1': None}, 'MissingParameter', 'recipient'),
    ({'Message.Subject.Data': None}, 'MissingParameter', 'Message.Subject.Data'),
    ({'Message.Body.Text.Data': None}, 'MissingParameter', 'Message.Body'),
    ({'Destination.ToAddresses.member.3': 'x@example.net'}, 'InvalidParameterValue', 'without gaps'),
    ({'Destination.ToAddresses.member.1': 'not-an-address'}, 'InvalidParameterValue', 'Illegal address'),
    ({'Destination.ToAddresses.member.1': 'a@example.net, b@example.net'}, 'InvalidParameterValue', 'exactly one address'),
    ({'Destination.ToAddresses.member.1': 'Zoë <a@example.net>'}, 'InvalidParameterValue', 'RFC 2047'),
    ({'Source': 'sender@example.com\r\nBcc: x@example.net'}, 'InvalidParameterValue', 'line breaks'),
    ({'Message.Subject.Data': 'a\r\nBcc: x@example.net'}, 'InvalidParameterValue', 'line breaks'),
    ({'Message.Subject.Charset': 'no-such-charset'}, 'InvalidParameterValue', 'unknown charset'),
    ({'Message.Subject.Data': 'Grüße', 'Message.Subject.Charset': 'US-ASCII'}, 'InvalidParameterValue', 'cannot be encoded'),
    ({'Message.Body.Html.Charset': 'UTF-8'}, 'InvalidParameterValue', 'without Message.Body.Html.Data'),
    ({'Destination.ReplyToAddresses.member.1': 'x@example.net'}, 'InvalidParameterValue', 'Unknown parameter'),
    ({'ReturnPath': 'x@example.net'}, 'InvalidParameterValue', 'Unknown parameter'),
    ({'Message.Body.Text.Data': 't' * (TWO_MB // 2), 'Message.Body.Html.Data': 'h' * (TWO_MB // 2 + 1)}, 'MessageRejected', '2097152'),
])
def test_send_email_validation(emu, token, change, code, words):
    emu.set_identity(SENDER)
    params = send_params()
    for key, value in change.items():
        if value is None:
            del params[key]
        else:
            params[key] = value
    assert words in assert_error(emu.mail('SendEmail', token, params=params), code)
    assert emu.messages() == []


def test_send_email_51_recipients(emu, token):
    emu.set_identity(SENDER)
    params = send_params(to=['t%d@example.net' % i for i in range(25)], cc=['c%d@example.net' % i for i in range(25)],
                         bcc=['b@example.net'])
    assert '50' in assert_error(emu.mail('SendEmail', token, params=params), 'InvalidParameterValue')
    params = send_params(to=['t%d@example.net' % i for i in range(51)])
    assert_error(emu.mail('SendEmail', token, params=params), 'InvalidParameterValue')
    assert emu.messages() == []


def test_send_raw_email(emu, token):
    emu.set_identity('example.com')
    # Destinations replace the header recipients; the message is stored as it is
    root = ok(emu, 'SendRawEmail', token, raw_params(RAW, ['one@example.org', 'Two <two@example.org>']))
    message_id = text(root, 'MessageId')
    assert MESSAGE_ID_RE.match(message_id)
    record, = emu.messages()
    assert record['source'] == 'api' and record['auth_user'] is None and record['project_id'] == DEFAULT_PROJECT_ID
    assert record['rcpt_tos'] == ['one@example.org', 'two@example.org']
    assert record['mail_from'] == SENDER
    assert record['data'] == RAW.decode()
    assert record['message_id'] == message_id
    assert record['subject'] == 'Raw hello'
    # without Destinations: To, Cc and Bcc of the message; Source sets the envelope sender
    raw = RAW.replace(b'Subject:', b'Bcc: hidden@example.net\r\nSubject:')
    ok(emu, 'SendRawEmail', token, raw_params(raw, Source='bounces@example.com'))
    record = emu.messages()[-1]
    assert record['rcpt_tos'] == ['header-to@example.net', 'header-cc@example.net', 'hidden@example.net']
    assert record['mail_from'] == 'bounces@example.com'
    # base64 split into lines (as base64.encodebytes does) is fine
    ok(emu, 'SendRawEmail', token, {'RawMessage.Data': base64.encodebytes(RAW * 20).decode('ascii')})
    assert len(emu.messages()) == 3


def test_send_raw_email_validation(emu, token):
    emu.set_identity(SENDER)
    cases = [
        ({}, 'MissingParameter', 'RawMessage.Data'),
        ({'RawMessage.Data': 'not base64!'}, 'InvalidParameterValue', 'base64'),
        ({'RawMessage.Data': 'QUJD RA=='}, 'InvalidParameterValue', 'base64'),  # a "+" sent without URL encoding
        ({'RawMessage.Data': ''}, 'InvalidParameterValue', 'empty'),
        (raw_params(RAW, ['t%d@example.net' % i for i in range(51)]), 'InvalidParameterValue', '50'),
        (raw_params(RAW, ['bad address']), 'InvalidParameterValue', 'Illegal address'),
        (raw_params(RAW.replace(b'To: header-to@example.net', b'To: ' + b', '.join(b'r%d@example.net' % i for i in range(50)))),
         'InvalidParameterValue', '50'),
        (raw_params(RAW.replace(b'From: Sender <sender@example.com>\r\n', b'')), 'InvalidParameterValue', "'From'"),
        (raw_params(RAW.replace(b'To: header-to@example.net\r\nCc: header-cc@example.net\r\n', b'')), 'InvalidParameterValue', 'no recipient'),
        (raw_params(RAW.replace(b'sender@example.com', b'other@example.com')), 'MessageRejected', 'other@example.com'),
        (raw_params(RAW, Source='other@example.com'), 'MessageRejected', 'other@example.com'),
        (raw_params(RAW, Other='x'), 'InvalidParameterValue', 'Unknown parameter'),
        (raw_params(RAW + b'x' * (TWO_MB - len(RAW) + 1)), 'MessageRejected', '2097152'),
    ]
    for params, code, words in cases:
        assert words in assert_error(emu.mail('SendRawEmail', token, params=params), code), params.keys()
    assert emu.messages() == []
    # exactly 2 MB is accepted
    ok(emu, 'SendRawEmail', token, raw_params(RAW + b'x' * (TWO_MB - len(RAW))))


# --------------------------------------------------------- quota, statistics
def send_over_smtp(emu, recipients):
    assert emu.mail('CreateSMTPUser', emu.token()).status_code == 200
    smtp_user = emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user']
    with smtplib.SMTP('localhost', emu.smtp_port, local_hostname='client.example.com', timeout=10) as client:
        client.starttls(context=ssl.create_default_context(cafile=emu.ca_cert))
        client.login(smtp_user['user'], smtp_user['password'])
        client.sendmail(SENDER, recipients, 'Subject: smtp\r\n\r\nx\r\n')


def test_send_quota(emu, token):
    assert quota(emu, token) == {'SentLast24Hours': 0.0, 'Max24HourSend': 200.0, 'MaxSendRate': 1.0}
    emu.set_identity(SENDER)
    ok(emu, 'SendEmail', token, send_params(to=('a@example.net', 'b@example.net')))
    ok(emu, 'SendRawEmail', token, raw_params(RAW, ['c@example.net']))
    send_over_smtp(emu, ['d@example.net'])
    # every recipient counts, as in SES; mail of the SMTP relay counts too
    assert quota(emu, token)['SentLast24Hours'] == 4.0
    emu.set_config(max_24hour_send=5, max_send_rate=14)
    assert quota(emu, token) == {'SentLast24Hours': 4.0, 'Max24HourSend': 5.0, 'MaxSendRate': 14.0}
    message = assert_error(emu.mail('SendEmail', token, params=send_params(to=('a@example.net', 'b@example.net'))), 'Throttling')
    assert message == 'Daily message quota exceeded.'
    ok(emu, 'SendEmail', token, send_params())
    assert_error(emu.mail('SendRawEmail', token, params=raw_params(RAW, ['c@example.net'])), 'Throttling')
    assert quota(emu, token)['SentLast24Hours'] == 5.0
    emu.clear_messages()
    assert quota(emu, token)['SentLast24Hours'] == 0.0


def statistics_points(emu, token):
    root = result(ok(emu, 'GetSendStatistics', token))
    assert [etree.QName(child).localname for child in root] == ['SendDataPoints']
    points = []
    for member in root[0]:
        names = [etree.QName(child).localname for child in member]
        assert names == ['DeliveryAttempts', 'Timestamp', 'Rejects', 'Bounces', 'Complaints']
        point = {etree.QName(child).localname: child.text for child in member}
        assert TIMESTAMP_RE.match(point['Timestamp'])
        points.append(point)
    return points


def bucket_timestamp(epoch):
    start = datetime.datetime.fromtimestamp(int(epoch // 900) * 900, tz=datetime.timezone.utc)
    return start.strftime('%Y-%m-%dT%H:%M:%S.000Z')


def test_send_statistics(emu, token):
    assert statistics_points(emu, token) == []
    emu.set_identity(SENDER)
    ok(emu, 'SendEmail', token, send_params(to=('a@example.net', 'b@example.net', 'c@example.net')))
    ok(emu, 'SendEmail', token, send_params())
    records = emu.messages()
    now = records[-1]['time']
    emu.add_send_event(complaints=1, when=now)
    emu.add_send_event(rejects=2, bounces=1, delivery_attempts=5, when=now - 3600)
    emu.add_send_event(rejects=7, when=now - 15 * 86400)  # older than two weeks: not reported
    emu.add_send_event(bounces=9, when=now + 3600)        # in the future: not reported
    expected = {}
    for when, attempts, rejects, bounces, complaints in ([(r['time'], len(r['rcpt_tos']), 0, 0, 0) for r in records]
                                                         + [(now, 0, 0, 0, 1), (now - 3600, 5, 2, 1, 0)]):
        point = expected.setdefault(bucket_timestamp(when), [0, 0, 0, 0])
        for index, value in enumerate((attempts, rejects, bounces, complaints)):
            point[index] += value
    points = statistics_points(emu, token)
    assert {p['Timestamp']: [int(p[name]) for name in ('DeliveryAttempts', 'Rejects', 'Bounces', 'Complaints')] for p in points} == expected
    assert sum(int(p['DeliveryAttempts']) for p in points) == 4 + 5
    # newest first (clients must sort: the order is not documented)
    stamps = [p['Timestamp'] for p in points]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) in (2, 3)
    assert stamps[-1] == bucket_timestamp(now - 3600)
    with pytest.raises(EmulatorError):
        emu.add_send_event(rejects=-1)


# -------------------------------------------------------------- admin, misc
def test_admin_identity_endpoints(emu, token):
    entry = emu.set_identity('Example.com', 'TemporaryFailure')
    assert entry['identity'] == 'example.com' and entry['status'] == 'TemporaryFailure' and TOKEN_RE.match(entry['token'])
    assert entry['project_id'] == DEFAULT_PROJECT_ID
    for bad in ({'identity': 'example.com', 'status': 'Verified'}, {'identity': 'bad name'}, {'identity': 'a@b.com', 'project_id': 'nope'},
                {'identity': 'a@b.com', 'other': 1}):
        with pytest.raises(EmulatorError, match='400'):
            emu.admin('POST', 'identities', bad)
    with pytest.raises(EmulatorError, match='400'):
        emu.seed_identities(['ok@example.com', 'not valid'])
    assert list(contract_identities(emu)) == ['example.com']  # all or nothing
    assert emu.seed_identities(['ok@example.com', 'example.org'], status='Failed') == 2
    root = ok(emu, 'GetIdentityVerificationAttributes', token, members('Identities', ['ok@example.com', 'example.org', 'example.com']))
    assert texts(root, 'VerificationStatus') == ['Failed', 'Failed', 'TemporaryFailure']


def test_rate_limit_and_request_log(emu, token):
    emu.set_config(min_interval=1.0)
    emu.clear_log()
    ok(emu, 'ListIdentities', token)
    assert_error(emu.mail('GetSendQuota', token), 'Throttling')
    assert_error(emu.mail('VerifyDomainIdentity', token, params={'Domain': 'example.com'}), 'Throttling')
    assert contract_identities(emu) == {}
    log = [(record['action'], record['status'], record['error_code']) for record in emu.log()]
    assert log == [('ListIdentities', 200, None), ('GetSendQuota', 400, 'Throttling'), ('VerifyDomainIdentity', 400, 'Throttling')]
