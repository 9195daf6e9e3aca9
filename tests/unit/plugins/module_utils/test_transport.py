# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Transport.post: redirects refused, replies capped, every HTTP-layer exception a K5MailError."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket

import pytest
import requests
from urllib3.exceptions import LocationParseError

from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import (
    FINAL, LOST_REPLY, NOT_SENT, K5MailError, bounded_text, userinfo_secrets, without_userinfo)
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import KeystonePassword
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import Pacer
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import error_from_reply
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import Backoff
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import Transport, safe_location
from fake_http import FakeClock, FakeSession, Reply, connection_refused

URL = 'https://mail.example.com/'


class FreeGuard:
    """A login guard that lets every login through: these tests are about the messages."""

    def __init__(self, *args, **kwargs):
        pass

    def attempt(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def accepted(self):
        pass

    def rejected(self):
        pass


def post(reply=None, raises=None, limit=1024):
    session = FakeSession().expect(URL, reply, raises=raises)
    transport = Transport(session, 30, True, max_reply_bytes=limit)
    try:
        return transport.post('GetSMTPUserInfo', URL, [('Action', 'GetSMTPUserInfo')], {})
    finally:
        session.assert_done()


@pytest.mark.parametrize('status', [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_naming_status_and_location_without_credentials(status):
    reply = Reply(status, '', {'Location': 'http://user:pw-secret@evil.example:8080/x?token=tok-secret#f'})
    with pytest.raises(K5MailError) as info:
        post(reply)
    message = str(info.value)
    assert message.startswith('GetSMTPUserInfo failed: HTTP %d the server at %s answered with a redirect to '
                              'http://evil.example:8080/x; redirects are never followed' % (status, URL))
    assert 'secret' not in message and info.value.failure == FINAL and reply.closed


def test_a_redirect_without_location():
    with pytest.raises(K5MailError, match='redirect to nowhere'):
        post(Reply(302))


@pytest.mark.parametrize('location, shown', [
    ('/relative/path?q=1', '/relative/path'),
    ('https://[::1]:8443/a', 'https://[::1]:8443/a'),
    ('https://h/\r\nX-Injected: 1', 'https://h/X-Injected:1'),
    ('https://h:notaport/', '(an unreadable URL)'),
    ('https://h/' + 'p' * 500, 'https://h/' + 'p' * 190 + '...'),
])
def test_safe_location(location, shown):
    assert safe_location(location) == shown


def test_a_reply_over_the_limit_stops_reading():
    reply = Reply(200, b'x' * 10000)
    with pytest.raises(K5MailError, match='HTTP 200 the reply is larger than 0 MiB') as info:
        post(reply, limit=4096)
    assert reply.bytes_read <= 4096 + 64 * 1024 and info.value.failure == FINAL and reply.closed


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    reply = Reply(200, b'x' * 10, {'Content-Length': str(10 ** 12)})
    with pytest.raises(K5MailError, match='larger than'):
        post(reply)
    assert reply.bytes_read == 0


def test_a_reply_at_the_limit_is_read():
    assert post(Reply(200, b'y' * 1024)).content == b'y' * 1024


@pytest.mark.parametrize('exc, failure, starts', [
    (requests.exceptions.ChunkedEncodingError('Connection broken: IncompleteRead'), LOST_REPLY, 'the reply was cut short'),
    (requests.exceptions.ContentDecodingError('bad gzip'), LOST_REPLY, 'the reply was cut short'),
    (requests.exceptions.ConnectionError('Read timed out.'), LOST_REPLY, 'timed out reading the reply'),
])
def test_exceptions_while_reading_are_lost_replies(exc, failure, starts):
    with pytest.raises(K5MailError) as info:
        post(Reply(200, b'<a>' * 100, breaks=exc))
    assert info.value.failure == failure and info.value.reason.startswith(starts) and info.value.status == 200


@pytest.mark.parametrize('exc, failure, starts', [
    (connection_refused(URL), NOT_SENT, 'cannot connect: '),
    (requests.exceptions.ConnectTimeout('connect timed out'), NOT_SENT, 'timed out: '),
    (requests.exceptions.ReadTimeout('read timed out'), LOST_REPLY, 'timed out: '),
    (requests.exceptions.InvalidURL('Failed to parse'), FINAL, 'the request to %s could not be made: ' % URL),
    (LocationParseError('x' * 400), FINAL, 'the request to %s could not be made: ' % URL),
    (OverflowError('timeout doesn\'t fit into C _PyTime_t'), FINAL, 'the request to %s could not be made: ' % URL),
    (ValueError('Timeout value connect was 1e+20, but it must be an int, float or None.'), FINAL, 'the request'),
    (requests.exceptions.TooManyRedirects('too many'), FINAL, 'the request'),
])
def test_exceptions_while_sending_become_clear_errors(exc, failure, starts):
    with pytest.raises(K5MailError) as info:
        post(raises=exc)
    assert info.value.failure == failure and info.value.reason.startswith(starts), info.value.reason
    assert len(str(info.value)) < 450


# ------------------------------------------------- the service's error shapes

@pytest.mark.parametrize('body', [
    b'<AccessDeniedException><Message>Access Denied</Message></AccessDeniedException>',
    b'<AccessDeniedException xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Message>Access Denied</Message>'
    b'</AccessDeniedException>',
    b'<?xml version="1.0"?>\n  <AccessDeniedException>\n  <Message>  Access Denied \n</Message>\n</AccessDeniedException>\n',
])
@pytest.mark.parametrize('header', ['x-fj-request-id', 'X-FJ-Request-Id', 'X-FJ-REQUEST-ID'])
def test_access_denied_in_every_variant(body, header):
    error = error_from_reply('CreateSMTPUser', 403, {header: ' rid-1 ', 'Content-Type': 'application/xml'}, body)
    assert str(error).startswith('CreateSMTPUser failed: HTTP 403 Access Denied (request id rid-1). The user lacks a role')
    assert error.error_type == 'AccessDeniedException' and error.failure == FINAL


@pytest.mark.parametrize('body', [b'', b'  \n', None])
def test_401_without_body(body):
    error = error_from_reply('GetSMTPUserInfo', 401, {'X-Fj-Request-Id': 'r'}, body)
    assert str(error) == ('GetSMTPUserInfo failed: HTTP 401 authentication rejected: the token is missing, invalid or '
                          'expired (request id r)')


# --------------------------------------------- names that do not resolve (issue 16, finding 9)

def unresolvable(monkeypatch):
    """Make every name lookup fail as for a name that does not exist, without asking any resolver."""
    def getaddrinfo(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
    monkeypatch.setattr(socket, 'getaddrinfo', getaddrinfo)


@pytest.mark.parametrize('keystone', [False, True], ids=['endpoint', 'auth_url'])
def test_a_name_that_does_not_resolve_fails_at_once_with_a_hint(monkeypatch, keystone):
    unresolvable(monkeypatch)
    clock = FakeClock()
    login = KeystonePassword('https://identity.jp-east-9.example/v3', 'alice', 's3cret', 'ct0001', project_id='p1',
                             login_guard=FreeGuard) if keystone else None
    client = K5MailClient('https://mail.jp-east-9.example', token=None if keystone else 'tok', keystone=login,
                          retries=5, pacer=Pacer(clock=clock, sleep=clock.sleep), sleep=clock.sleep,
                          backoff=Backoff(5, rng=lambda: 0.5))  # a real requests session
    with pytest.raises(K5MailError) as info:
        client.call('GetSendQuota')
    message = str(info.value)
    url, option = (('https://identity.jp-east-9.example/v3/auth/tokens', 'auth_url') if keystone
                   else ('https://mail.jp-east-9.example/', 'endpoint'))
    assert 'the host name of %s does not resolve (' % url in message and 'Name or service not known' in message
    assert 'Check region_name and %s' % option in message
    assert info.value.attempts == 1 and info.value.failure == FINAL and clock.sleeps == []


def test_a_name_error_is_recognised_when_wrapped_as_by_urllib3_1():
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    inner = NewConnectionError(object(), 'Failed to establish a new connection: [Errno -2] Name or service not known')
    inner.__context__ = socket.gaierror(socket.EAI_NONAME, 'Name or service not known')  # raised while handling it
    exc = requests.exceptions.ConnectionError(MaxRetryError(None, URL, inner))
    with pytest.raises(K5MailError, match='does not resolve') as info:
        post(raises=exc)
    assert info.value.failure == FINAL


def test_a_refused_connection_is_repeated_within_a_few_seconds_only():
    with pytest.raises(K5MailError) as info:
        post(raises=connection_refused(URL))
    assert info.value.failure == NOT_SENT and 0 < info.value.retry_within <= 5
    assert 'Check endpoint and that the service is reachable' in str(info.value)


# ------------------------------------------------ URLs without user info (issue 16, finding 5)

@pytest.mark.parametrize('url, shown', [
    ('https://user:pw-secret@host:4430x/', 'https://********@host:4430x/'),
    ('https://user:pw-secret@[::1/', 'https://********@[::1/'),
    ('https://user:pw-secret@host:99999/v3', 'https://********@host:99999/v3'),
    ('https://user:p@ss/w#rd-secret@host/', 'https://********@host/'),
    ('user:pw-secret@host:443', '********@host:443'),
    ('https://tok-secret@host/', 'https://********@host/'),
    ('https://host:443/v3', 'https://host:443/v3'),
])
def test_without_userinfo_needs_no_parser(url, shown):
    assert without_userinfo(url) == shown
    assert 'secret' not in without_userinfo(url)


def test_userinfo_secrets_are_the_password_not_the_user_name():
    assert userinfo_secrets('https://admin:pw@[::1/') == {'admin:pw', 'pw'}
    assert userinfo_secrets('https://TOKEN@host/') == {'TOKEN'}
    assert userinfo_secrets('https://host/') == set()


def test_the_reason_of_an_exception_never_shows_the_password():
    url = 'https://admin:pw-secret@host:4430x/'
    session = FakeSession().expect(url, raises=requests.exceptions.InvalidURL('Failed to parse: %s' % url))
    with pytest.raises(K5MailError) as info:
        Transport(session, 30, True).post('GetSendQuota', url, [], {})
    assert 'pw-secret' not in str(info.value) and 'https://********@host:4430x/' in str(info.value)


# ------------------------------------------ service texts bounded like Keystone's (issue 16, finding 9)

def test_a_huge_message_of_the_mail_api_is_bounded():
    body = '<ErrorResponse><Error><Code>Bad</Code><Message>%s</Message></Error></ErrorResponse>' % ('m' * 3000000)
    error = error_from_reply('GetSendQuota', 400, {}, body.encode(), url=URL)
    assert error.reason == 'm' * 300 + '...' and len(str(error)) < 500


def test_a_huge_message_of_keystone_is_bounded_by_the_same_helper():
    login = KeystonePassword(URL, 'alice', 's3cret', 'ct0001', project_id='p1', login_guard=FreeGuard)
    error = login._error_from(Reply(400, json.dumps({'error': {'message': 'k\n' * 1000000}})))
    assert error.reason.endswith(': ' + bounded_text('k\n' * 1000000)) and len(str(error)) < 600


@pytest.mark.parametrize('text, expected', [('a\x00b\r\nc\x1b[31m', 'a b c [31m'), ('x' * 301, 'x' * 300 + '...'),
                                            ('  fits  ', 'fits')])
def test_bounded_text(text, expected):
    assert bounded_text(text) == expected


# ----------------------------------------- Keystone errors that say what to do (issue 16, findings 2 and 9)

AUTH_REQUIRED = json.dumps({'error': {'code': 401, 'message': 'The request you have made requires authentication.'}})


@pytest.mark.parametrize('scope, shown', [(dict(project_id='p1'), 'project_id p1'),
                                          (dict(project_name='prj'), 'project_name prj of domain ct0001')])
def test_a_keystone_401_names_every_possible_cause_and_ends_once(scope, shown):
    login = KeystonePassword('https://identity.example.com/v3', 'alice', 's3cret', 'ct0001', login_guard=FreeGuard, **scope)
    message = str(login._error_from(Reply(401, AUTH_REQUIRED)))
    assert message.startswith('Keystone authentication failed: HTTP 401 Keystone rejected the credentials of user alice '
                              'of contract ct0001 for %s at https://identity.example.com/v3/auth/tokens: The request '
                              'you have made requires authentication. Check the password, the user name, '
                              'user_domain_name (the contract number) and the project (project_id or project_name)'
                              % shown), message
    assert '..' not in message and 'Not retried' in message and 's3cret' not in message


def test_a_keystone_404_names_the_url_tried():
    login = KeystonePassword('https://admin:pw-secret@identity.example.com/identity', 'alice', 's3cret', 'ct0001',
                             project_id='p1', login_guard=FreeGuard)
    message = str(login._error_from(Reply(404, '{"error": "no such resource"}', reason='Not Found')))
    assert message.startswith('Keystone authentication failed: HTTP 404 Keystone at '
                              'https://********@identity.example.com/identity/v3/auth/tokens answered Not Found. '
                              'Check auth_url: it must be the Keystone v3 of the region, ending in /v3'), message
