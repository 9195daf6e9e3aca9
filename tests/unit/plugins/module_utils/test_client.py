# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""K5MailClient (client.py) against scripted HTTP replies: reading replies, pacing, retries, Keystone login.

The end-to-end behaviour is proven against the emulator in tests/functional;
these tests pin the decisions that are hard to provoke from a real server.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
import requests

from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import FINAL, SERVER_ERROR, K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import KeystonePassword
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import Pacer
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import error_from_reply, find_text, parse_xml, throttling_reply
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import BACKOFF_MAX, Backoff
from fake_http import FakeSession, Reply, connection_refused, connection_reset, form

ENDPOINT = 'https://mail.jp-east-1.cloud.global.fujitsu.com/'
KEYSTONE = 'https://identity.jp-east-1.cloud.global.fujitsu.com/v3/auth/tokens'
NS = 'http://ses.amazonaws.com/doc/2010-12-01/'
RID = '65ce6f91-4e8d-44a1-b33e-5ba3de2f528b'

CREATE_REPLY_DOC = '''<?xml version="1.0" encoding="UTF-8"?>
<CreateSMTPUserResponse>
  <CreateSMTPUserResult>
    <SMTPUser>NKUIGMTPOU9PUZGKL1RW</SMTPUser>
    <SMTPPassword>BiUIRJHe...</SMTPPassword>
  </CreateSMTPUserResult>
  <ResponseMetadata>
    <RequestId>65ce6f91-4e8d-44a1-b33e-5ba3de2f528b </RequestId>
  </ResponseMetadata>
</CreateSMTPUserResponse>'''

CREATE_REPLY_NS = ('<CreateSMTPUserResponse xmlns="%s"><CreateSMTPUserResult><SMTPUser>\n  NKUIGMTPOU9PUZGKL1RW\n</SMTPUser>'
                   '<SMTPPassword>pw+/x</SMTPPassword></CreateSMTPUserResult><ResponseMetadata><RequestId>%s</RequestId>'
                   '</ResponseMetadata></CreateSMTPUserResponse>' % (NS, RID))

CREATE_REPLY_PREFIXED = ('<ses:CreateSMTPUserResponse xmlns:ses="%s"><ses:CreateSMTPUserResult><ses:SMTPUser>U1</ses:SMTPUser>'
                         '<ses:SMTPPassword>P1</ses:SMTPPassword></ses:CreateSMTPUserResult></ses:CreateSMTPUserResponse>' % NS)

ERROR_REPLY = ('<ErrorResponse xmlns="%s">\n <Error>\n  <Type>Sender</Type>\n  <Code> InvalidParameterValue </Code>\n'
               '  <Message>Version must be v1.0</Message>\n </Error>\n <RequestId>%s</RequestId>\n</ErrorResponse>' % (NS, RID))

ACCESS_DENIED = '<AccessDeniedException><Message>Access Denied</Message></AccessDeniedException>'


def xml_reply(status, body, request_id=RID, **headers):
    hdrs = {'Content-Type': 'application/xml'}
    if request_id:
        hdrs['x-fj-request-id'] = request_id
    hdrs.update(headers)
    return Reply(status, body, hdrs)


def throttle_reply(code='Throttling', message='Service use limit exceeded.'):
    return xml_reply(400, '<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>'
                          '<RequestId>r</RequestId></ErrorResponse>' % (NS, code, message))


def make_client(session, clock, retries=3, token='tok', keystone=None):
    return K5MailClient(ENDPOINT, token=token, keystone=keystone, session=session, retries=retries,
                        pacer=Pacer(clock=clock, sleep=clock.sleep), sleep=clock.sleep,
                        backoff=Backoff(retries, rng=lambda: 0.5))


def keystone():
    return KeystonePassword('https://identity.jp-east-1.cloud.global.fujitsu.com/v3/', 'alice', 's3cret',
                            'ct0001', project_id='p1')


# --------------------------------------------------------------------- parsing

@pytest.mark.parametrize('body', [CREATE_REPLY_DOC, CREATE_REPLY_NS, CREATE_REPLY_PREFIXED,
                                  '\n\n  ' + CREATE_REPLY_DOC, '\ufeff' + CREATE_REPLY_DOC])
def test_create_reply_parsed_whatever_namespace_and_whitespace(body):
    root = parse_xml(body)
    assert find_text(root, 'CreateSMTPUserResult', 'SMTPUser') in ('NKUIGMTPOU9PUZGKL1RW', 'U1')
    assert find_text(root, 'SMTPPassword') in ('BiUIRJHe...', 'pw+/x', 'P1')


def test_request_id_in_body_is_stripped():
    assert find_text(parse_xml(CREATE_REPLY_DOC), 'ResponseMetadata', 'RequestId') == RID


def test_entities_are_not_expanded_and_no_network_access():
    evil = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<GetSMTPUserInfoResponse><SMTPUser>&x;</SMTPUser></GetSMTPUserInfoResponse>')
    root = parse_xml(evil)
    assert 'root:' not in (find_text(root, 'SMTPUser') or '')


@pytest.mark.parametrize('body', ['', '   ', '<html><body>Bad Gateway', 'garbage \x00', '<CreateSMTPUserResponse><Create'])
def test_non_xml_raises_value_error(body):
    with pytest.raises(ValueError):
        parse_xml(body)


# ---------------------------------------------------------------- error mapping

def test_error_response_with_namespace_gives_code_message_and_request_id():
    error = error_from_reply('CreateSMTPUser', 400, {'x-fj-request-id': ' %s ' % RID}, ERROR_REPLY.encode())
    assert (error.status, error.code, error.error_type, error.request_id) == (400, 'InvalidParameterValue', 'Sender', RID)
    assert str(error) == 'CreateSMTPUser failed: HTTP 400 InvalidParameterValue: Version must be v1.0 (request id %s)' % RID
    assert error.failure == FINAL


def test_request_id_falls_back_to_body_when_header_is_missing():
    error = error_from_reply('CreateSMTPUser', 500, {}, ERROR_REPLY.encode())
    assert error.request_id == RID
    assert error.failure == SERVER_ERROR


def test_access_denied_names_the_url_and_what_to_do():
    error = error_from_reply('CreateSMTPUser', 403, {'X-FJ-Request-Id': RID}, ACCESS_DENIED.encode(),
                             url='https://admin:pw-secret@mail.example.com/')
    assert str(error) == (
        "CreateSMTPUser failed: HTTP 403 Access Denied (request id %s) from https://********@mail.example.com/. "
        "The user lacks a role for the mail service in the token's project, or the token is for another project: "
        "check project_id or project_name (or the project of auth_token) and the user's roles in the K5 portal" % RID)


def test_empty_401():
    error = error_from_reply('GetSMTPUserInfo', 401, {}, b'')
    assert str(error) == 'GetSMTPUserInfo failed: HTTP 401 authentication rejected: the token is missing, invalid or expired'


def test_html_error_page_is_described_not_dumped():
    page = b'<html><head><title>502 Bad Gateway</title></head><body><hr>nginx</body></html>'
    error = error_from_reply('CreateSMTPUser', 502, {'Content-Type': 'text/html'}, page)
    assert 'not XML (text/html' in str(error) and '502 Bad Gateway' in str(error)
    assert error.failure == SERVER_ERROR


@pytest.mark.parametrize('status, code, message, expected', [
    (400, 'Throttling', 'Rate exceeded', True),
    (400, 'ServiceUseLimitExceeded', '', True),
    (400, 'InvalidParameterValue', 'Service use limit exceeded.', True),
    (400, 'LimitExceeded', 'The service use limit is exceeded', True),
    (400, None, 'You have exceeded the request limit', True),
    (400, 'RequestLimitExceeded', None, True),
    (429, None, None, True),
    (503, 'SlowDown', 'Please slow down', True),
    (400, 'InvalidParameterValue', 'Identity too long', False),
    (400, 'MessageRejected', 'Email address is not verified.', False),
    (403, 'Throttling', 'x', False),
    (400, 'Throttling', 'Daily message quota exceeded.', False),
    (400, 'Throttling', 'Maximum sending rate exceeded.', True),
])
def test_throttling_recognised_in_its_usual_wordings(status, code, message, expected):
    assert throttling_reply(status, code, message) is expected


# ------------------------------------------------------------- requests made

def test_call_posts_form_with_action_version_and_headers(session, clock):
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS), form=form('CreateSMTPUser'), headers={
        'User-Agent': 'FGCP-OS-API-CLIENT', 'X-Auth-Token': 'tok',
        'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'})
    response = make_client(session, clock).call('CreateSMTPUser')
    assert response.require_text('SMTPUser') == 'NKUIGMTPOU9PUZGKL1RW'
    assert response.request_id == RID


def test_token_loses_cr_lf():
    client = K5MailClient(ENDPOINT, token='abc\r\ndef\n', session=FakeSession())
    assert client.token == 'abcdef'


def test_accepted_status_is_returned_not_raised(session, clock):
    session.expect(ENDPOINT, xml_reply(409, ERROR_REPLY))
    assert make_client(session, clock).call('CreateSMTPUser', accept=(409,)).status == 409


def test_missing_element_in_200_is_a_clear_error(session, clock):
    session.expect(ENDPOINT, xml_reply(200, '<GetSMTPUserInfoResponse><GetSMTPUserInfoResult><SMTPUser>u</SMTPUser>'
                                            '</GetSMTPUserInfoResult></GetSMTPUserInfoResponse>'))
    response = make_client(session, clock).call('GetSMTPUserInfo')
    with pytest.raises(K5MailError, match='GetSMTPUserInfo failed: HTTP 200 the reply lacks SMTPPassword'):
        response.require_text('SMTPPassword')


def test_garbage_200_never_echoes_the_body(session, clock):
    session.expect(ENDPOINT, xml_reply(200, '<GetSMTPUserInfoResponse><SMTPPassword>SECRETPART'))
    with pytest.raises(K5MailError) as info:
        make_client(session, clock, retries=0).call('GetSMTPUserInfo')
    assert 'SECRETPART' not in str(info.value)
    assert 'not XML' in str(info.value) and RID in str(info.value)


# --------------------------------------------------------------------- pacing

def test_consecutive_calls_are_spaced_one_second(session, clock):
    for _attempt in range(3):
        session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    client = make_client(session, clock)
    for _attempt in range(3):
        client.call('GetSMTPUserInfo')
    times = [call['time'] for call in session.calls]
    assert times[1] - times[0] >= 1.0 and times[2] - times[1] >= 1.0
    assert clock.sleeps == [1.0, 1.0]


def test_no_sleep_when_calls_are_already_far_apart(session, clock):
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS)).expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    client = make_client(session, clock)
    client.call('GetSMTPUserInfo')
    clock.now += 5
    client.call('GetSMTPUserInfo')
    assert clock.sleeps == []


# -------------------------------------------------------------------- retries

def test_500_then_200_recovers(session, clock):
    session.expect(ENDPOINT, xml_reply(500, ERROR_REPLY)).expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    assert make_client(session, clock).call('GetSMTPUserInfo').status == 200


def test_500_that_does_not_recover_stops_after_retries(session, clock):
    for _attempt in range(3):
        session.expect(ENDPOINT, xml_reply(500, ERROR_REPLY))
    with pytest.raises(K5MailError) as info:
        make_client(session, clock, retries=2).call('GetSMTPUserInfo')
    assert info.value.attempts == 3 and 'after 3 attempts' in str(info.value)


@pytest.mark.parametrize('status', [400, 403, 404, 409])
def test_client_errors_are_never_retried(session, clock, status):
    session.expect(ENDPOINT, xml_reply(status, ERROR_REPLY))
    with pytest.raises(K5MailError) as info:
        make_client(session, clock).call('CreateSMTPUser')
    assert info.value.status == status and info.value.attempts == 1


def test_throttling_400_is_retried(session, clock):
    session.expect(ENDPOINT, throttle_reply()).expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    assert make_client(session, clock).call('GetSMTPUserInfo').status == 200


def test_connection_errors_are_retried(session, clock):
    session.expect(ENDPOINT, raises=connection_refused()).expect(ENDPOINT, raises=requests.exceptions.ReadTimeout('read'))
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    assert make_client(session, clock).call('CreateSMTPUser').status == 200


def test_a_send_is_repeated_only_when_it_cannot_have_been_accepted(session, clock):
    session.expect(ENDPOINT, throttle_reply()).expect(ENDPOINT, raises=connection_refused())
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    assert make_client(session, clock).call('SendEmail', idempotent=False).status == 200


@pytest.mark.parametrize('failure', [dict(reply=xml_reply(500, ERROR_REPLY)), dict(raises=requests.exceptions.ReadTimeout('read')),
                                     dict(raises=connection_reset())])
def test_a_send_is_not_repeated_when_it_may_have_been_accepted(session, clock, failure):
    session.expect(ENDPOINT, **failure)
    with pytest.raises(K5MailError) as info:
        make_client(session, clock).call('SendEmail', idempotent=False)
    assert info.value.attempts == 1


def test_unreachable_endpoint_message(session, clock):
    for _attempt in range(2):
        session.expect(ENDPOINT, raises=connection_refused())
    with pytest.raises(K5MailError) as info:
        make_client(session, clock, retries=1).call('CreateSMTPUser')
    assert str(info.value) == ('CreateSMTPUser failed: cannot connect: %s (Failed to establish a new connection: '
                               '[Errno 111] Connection refused) after 2 attempts. Check endpoint and that the service '
                               'is reachable from this host (proxy, firewall)' % ENDPOINT)


def test_tls_failure_is_not_retried_and_names_ca_cert(session, clock):
    session.expect(ENDPOINT, raises=requests.exceptions.SSLError('certificate verify failed: self-signed certificate'))
    with pytest.raises(K5MailError, match='TLS handshake .* certificate verify failed.*ca_cert'):
        make_client(session, clock).call('CreateSMTPUser')


def test_backoff_grows_and_is_bounded():
    low, high = Backoff(10, rng=lambda: 0.0), Backoff(10, rng=lambda: 0.999999)
    assert [low.delay(n) for n in range(3)] == [0.5, 1.0, 2.0]
    assert [round(high.delay(n), 3) for n in range(3)] == [1.0, 2.0, 4.0]
    assert high.delay(30) <= BACKOFF_MAX
    assert low.delay(0, retry_after=7) == 7


def test_retry_after_header_is_honoured(session, clock):
    session.expect(ENDPOINT, xml_reply(503, ERROR_REPLY, **{'Retry-After': '4'}))
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    make_client(session, clock).call('GetSMTPUserInfo')
    assert max(clock.sleeps) >= 4


# ------------------------------------------------------------------- keystone

def token_reply(header='X-Subject-Token', token='new-token'):
    return Reply(201, json.dumps({'token': {'expires_at': '2026-11-24T13:00:00.000000Z'}}), {header: token})


def test_password_authentication_request_shape(session, clock):
    session.expect(KEYSTONE, token_reply(), json_body={'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'domain': {'name': 'ct0001'}, 'name': 'alice', 'password': 's3cret'}}},
        'scope': {'project': {'id': 'p1'}}}})
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS), headers={'X-Auth-Token': 'new-token'})
    client = make_client(session, clock, token=None, keystone=keystone())
    client.call('GetSMTPUserInfo')
    assert client.token == 'new-token'


def test_project_name_scope_defaults_to_user_domain():
    auth = KeystonePassword('https://k/v3', 'u', 'p', 'ct9', project_name='prj')
    assert auth.request_body()['auth']['scope'] == {'project': {'name': 'prj', 'domain': {'name': 'ct9'}}}


def test_token_header_in_lower_case(session, clock):
    session.expect(KEYSTONE, token_reply(header='x-subject-token', token='lower\r\n'))
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS), headers={'X-Auth-Token': 'lower'})
    make_client(session, clock, token=None, keystone=keystone()).call('GetSMTPUserInfo')


def test_wrong_password_is_tried_exactly_once(session, clock):
    session.expect(KEYSTONE, Reply(401, json.dumps({'error': {'code': 401, 'message': 'The request you have made requires authentication.'}})))
    with pytest.raises(K5MailError) as info:
        make_client(session, clock, token=None, keystone=keystone()).call('GetSMTPUserInfo')
    message = str(info.value)
    assert message.startswith('Keystone authentication failed: HTTP 401 Keystone rejected the credentials of user alice of contract ct0001')
    assert 'Not retried' in message and 's3cret' not in message
    assert info.value.attempts == 1


def test_keystone_read_timeout_is_not_retried(session, clock):
    session.expect(KEYSTONE, raises=requests.exceptions.ReadTimeout('read timed out'))
    with pytest.raises(K5MailError, match='timed out'):
        make_client(session, clock, token=None, keystone=keystone()).call('GetSMTPUserInfo')


def test_keystone_reset_connection_is_not_retried(session, clock):
    session.expect(KEYSTONE, raises=connection_reset())
    with pytest.raises(K5MailError):
        make_client(session, clock, token=None, keystone=keystone()).call('GetSMTPUserInfo')


def test_keystone_refused_connection_and_5xx_are_retried(session, clock):
    session.expect(KEYSTONE, raises=connection_refused()).expect(KEYSTONE, Reply(503, 'busy'))
    session.expect(KEYSTONE, token_reply()).expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS))
    make_client(session, clock, token=None, keystone=keystone()).call('GetSMTPUserInfo')


def test_expired_token_is_renewed_once_and_the_call_repeated_once(session, clock):
    session.expect(ENDPOINT, Reply(401), headers={'X-Auth-Token': 'old'})
    session.expect(KEYSTONE, token_reply())
    session.expect(ENDPOINT, xml_reply(200, CREATE_REPLY_NS), headers={'X-Auth-Token': 'new-token'})
    make_client(session, clock, token='old', keystone=keystone()).call('GetSMTPUserInfo')


def test_second_401_after_renewal_fails(session, clock):
    session.expect(ENDPOINT, Reply(401)).expect(KEYSTONE, token_reply()).expect(ENDPOINT, Reply(401))
    with pytest.raises(K5MailError, match='HTTP 401'):
        make_client(session, clock, token='old', keystone=keystone()).call('GetSMTPUserInfo')


def test_401_without_password_auth_says_what_to_do(session, clock):
    session.expect(ENDPOINT, Reply(401, '', {'x-fj-request-id': RID}))
    with pytest.raises(K5MailError) as info:
        make_client(session, clock).call('GetSMTPUserInfo')
    assert str(info.value) == ('GetSMTPUserInfo failed: HTTP 401 authentication rejected: the token is missing, invalid or expired '
                               '(request id %s) from %s. Give a fresh auth_token, or auth (Keystone password) so the module '
                               'can get one' % (RID, ENDPOINT))
