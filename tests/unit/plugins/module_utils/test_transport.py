# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Transport.post: redirects refused, replies capped, every HTTP-layer exception a K5MailError."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import requests
from urllib3.exceptions import LocationParseError

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import FINAL, LOST_REPLY, NOT_SENT, K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import error_from_reply
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import Transport, safe_location
from fake_http import FakeSession, Reply, connection_refused

URL = 'https://mail.example.com/'


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
    assert message.startswith('GetSMTPUserInfo failed: HTTP %d the server answered with a redirect to '
                              'http://evil.example:8080/x; redirects are never followed' % status)
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
    assert str(error) == 'CreateSMTPUser failed: HTTP 403 Access Denied (request id rid-1)'
    assert error.error_type == 'AccessDeniedException' and error.failure == FINAL


@pytest.mark.parametrize('body', [b'', b'  \n', None])
def test_401_without_body(body):
    error = error_from_reply('GetSMTPUserInfo', 401, {'X-Fj-Request-Id': 'r'}, body)
    assert str(error) == ('GetSMTPUserInfo failed: HTTP 401 authentication rejected: the token is missing, invalid or '
                          'expired (request id r)')
