# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client under faults and with unsafe settings: real ansible runs against the emulator.

Redirects, replies cut short or too large, lost replies, and connection options
that would leak credentials or crash the module.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from harness import DEMO_AUTH, assert_clean_failure, keystone_requests, mail_actions, refused_before_any_request, smtp_user_of

SENDER = 'ops@example.com'
LEAK = 'leaked-secret-7f3a'


class PlainListener:
    """A plain TCP listener on 127.0.0.1 that records whatever reaches it (bounded in time and size)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b'')

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener():
    plain = PlainListener()
    yield plain
    plain.close()


# ----------------------------------------------------------------- redirects

def test_mail_api_redirect_is_reported_not_followed(ansible, emulator, password_conn, listener):
    emulator.fault(action='CreateSMTPUser', status=307,
                   location='http://admin:%s@127.0.0.1:%d/elsewhere?token=%s' % (LEAK, listener.port, LEAK))
    run = ansible.module('smtp_user', password_conn)
    assert_clean_failure(run, 'CreateSMTPUser failed: HTTP 307 the server answered with a redirect to '
                              'http://127.0.0.1:%d/elsewhere; redirects are never followed' % listener.port)
    assert LEAK not in run.output
    assert listener.received == []
    assert mail_actions(emulator) == [('CreateSMTPUser', 307)]  # a redirect is never retried


def test_keystone_redirect_is_reported_not_followed(ansible, emulator, password_conn, listener):
    emulator.fault(service='keystone', action='authenticate', status=308,
                   location='http://127.0.0.1:%d/v3/auth/tokens' % listener.port)
    run = ansible.module('smtp_user', password_conn)
    assert_clean_failure(run, 'Keystone authentication failed: HTTP 308 the server answered with a redirect to '
                              'http://127.0.0.1:%d/v3/auth/tokens' % listener.port)
    assert listener.received == []
    assert [r['status'] for r in keystone_requests(emulator)] == [308]
    assert DEMO_AUTH['password'] not in run.output


# ------------------------------------------------- replies cut short or lost

def test_read_with_a_truncated_reply_is_retried(ansible, emulator, conn):
    emulator.fault(action='GetSMTPUserInfo', body='truncated', after=True)
    run = ansible.module('smtp_user_info', conn)
    assert run.rc == 0, run.output
    run.assert_no_traceback()
    assert run.result['exists'] is False
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 404), ('GetSMTPUserInfo', 404)]


def test_keystone_reply_cut_short_is_a_clean_error_and_not_retried(ansible, emulator, password_conn):
    emulator.fault(service='keystone', action='authenticate', body='truncated', after=True)
    run = ansible.module('smtp_user_info', password_conn)
    assert_clean_failure(run, 'Keystone authentication failed: HTTP 201 the reply was cut short: ')
    assert [r['status'] for r in keystone_requests(emulator)] == [201]
    assert mail_actions(emulator) == []


def test_send_with_a_reply_cut_short_is_not_repeated(ansible, emulator, conn):
    emulator.set_identity(SENDER)
    emulator.fault(action='SendEmail', body='truncated', after=True)
    run = ansible.module('send_email', dict(conn, sender=SENDER, to=['qa@example.com'], subject='s', body_text='b'))
    assert_clean_failure(run, 'SendEmail failed: HTTP 200 the reply was cut short: ')
    assert mail_actions(emulator) == [('SendEmail', 200)]
    assert len(emulator.messages()) == 1


@pytest.mark.parametrize('fault', [dict(drop=True), dict(body='truncated')], ids=['dropped', 'truncated'])
def test_lost_create_reply_is_reported_as_created(ansible, emulator, conn, fault):
    emulator.fault(action='CreateSMTPUser', after=True, **fault)
    run = ansible.module('smtp_user', conn, diff=True)
    assert run.rc == 0, run.output
    issued = smtp_user_of(emulator)
    assert run.result['changed'] is True and run.result['created'] is True
    assert (run.result['smtp_user'], run.result['smtp_password']) == (issued['user'], issued['password'])
    assert run.result['diff']['before'] == {'state': 'absent'}
    assert [action for action, dummy in mail_actions(emulator)] == ['CreateSMTPUser', 'CreateSMTPUser', 'GetSMTPUserInfo']
    # The next run finds the user: no change.
    run = ansible.module('smtp_user', conn)
    assert run.result['changed'] is False and run.result['created'] is False


def test_oversized_reply_is_not_read_into_memory(ansible, emulator, conn):
    emulator.fault(action='GetSMTPUserInfo', body='oversized', size=256 * 1024 * 1024)
    started = time.monotonic()
    run = ansible.module('smtp_user_info', conn)
    assert_clean_failure(run, 'GetSMTPUserInfo failed: HTTP 200 the reply is larger than 4 MiB')
    assert time.monotonic() - started < 60
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 200)]


def test_oversized_keystone_reply(ansible, emulator, password_conn):
    emulator.fault(service='keystone', action='authenticate', body='oversized', status=201, size=16 * 1024 * 1024)
    run = ansible.module('smtp_user_info', password_conn)
    assert_clean_failure(run, 'Keystone authentication failed: HTTP 201 the reply is larger than 4 MiB')


# ----------------------------------------------------- unsafe or bad settings

def test_plain_http_is_refused_before_any_request(ansible, emulator, password_conn, listener):
    url = 'http://127.0.0.1:%d' % listener.port
    run = ansible.module('smtp_user', dict(password_conn, endpoint=url, auth=dict(password_conn['auth'], auth_url=url + '/v3')))
    message = refused_before_any_request(run, emulator)
    assert "endpoint '%s' uses http://, which sends the password and the token in clear text" % url in message
    assert "auth.auth_url '%s/v3' uses http://" % url in message
    assert keystone_requests(emulator) == [] and listener.received == []


def test_plain_http_with_allow_http_warns(ansible, emulator, conn, listener):
    url = 'http://127.0.0.1:%d' % listener.port
    run = ansible.module('smtp_user_info', dict(conn, endpoint=url, allow_http=True, retries=0))
    assert run.rc != 0
    run.assert_no_traceback()
    assert any('uses plain http:// (allow_http=true)' in warning for warning in run.result['warnings'])
    assert listener.received and listener.received[0].startswith(b'POST / HTTP/1.1')


def test_disabled_certificate_validation_warns(ansible, emulator, conn):
    run = ansible.module('smtp_user_info', dict(conn, validate_certs=False, ca_cert=None))
    assert run.rc == 0, run.output
    assert any(warning.startswith('validate_certs=false: the certificates') for warning in run.result['warnings'])


@pytest.mark.parametrize('option', ['endpoint', 'auth_url'])
def test_credentials_in_a_url_are_refused_and_not_echoed(ansible, emulator, password_conn, option):
    if option == 'endpoint':
        args = dict(password_conn, endpoint=emulator.url.replace('https://', 'https://admin:%s@' % LEAK))
    else:
        args = dict(password_conn, auth=dict(password_conn['auth'],
                                             auth_url=emulator.auth_url.replace('https://', 'https://admin:%s@' % LEAK)))
    run = ansible.module('smtp_user', args)
    message = refused_before_any_request(run, emulator)
    assert 'must not hold a user name or password' in message
    # The whole result the module returned; ansible-core itself prints the ad-hoc task's arguments on failure.
    assert LEAK not in json.dumps(run.result)
    assert keystone_requests(emulator) == []


@pytest.mark.parametrize('args, message', [
    (dict(region_name='a' * 300), 'region_name is 300 characters long, at most 63 are allowed'),
    (dict(api_timeout=99999999999999), 'api_timeout must be between 1 and 3600 seconds, got 99999999999999'),
    (dict(endpoint='https://' + 'x' * 70 + '.example.com'), 'the host name is not dot-separated labels'),
])
def test_bad_connection_options_fail_before_any_login(ansible, emulator, password_conn, args, message):
    # Without an endpoint, region_name builds it: a bad region must stop the run before the login.
    conn = dict(password_conn, **args)
    if 'region_name' in args:
        del conn['endpoint']
    run = ansible.module('smtp_user', conn)
    assert message in refused_before_any_request(run, emulator)
    assert keystone_requests(emulator) == []
    assert 'a' * 100 not in run.result['msg']
