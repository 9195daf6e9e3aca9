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
import time

import pytest

from harness import (CLOSED_ENDPOINT, DEMO_AUTH, LoopbackListener, assert_clean_failure, keystone_requests, mail_actions,
                     refused_before_any_request, smtp_user_of)

SENDER = 'ops@example.com'
LEAK = 'leaked-secret-7f3a'


@pytest.fixture
def listener():
    plain = LoopbackListener()
    yield plain
    plain.close()


# ----------------------------------------------------------------- redirects

def test_mail_api_redirect_is_reported_not_followed(ansible, emulator, password_conn, listener):
    emulator.fault(action='CreateSMTPUser', status=307,
                   location='http://admin:%s@127.0.0.1:%d/elsewhere?token=%s' % (LEAK, listener.port, LEAK))
    run = ansible.module('smtp_user', password_conn)
    assert_clean_failure(run, 'CreateSMTPUser failed: HTTP 307 the server at %s/ answered with a redirect to '
                              'http://127.0.0.1:%d/elsewhere; redirects are never followed' % (emulator.url, listener.port))
    assert LEAK not in run.output
    assert listener.received == []
    assert mail_actions(emulator) == [('CreateSMTPUser', 307)]  # a redirect is never retried


def test_keystone_redirect_is_reported_not_followed(ansible, emulator, password_conn, listener):
    emulator.fault(service='keystone', action='authenticate', status=308,
                   location='http://127.0.0.1:%d/v3/auth/tokens' % listener.port)
    run = ansible.module('smtp_user', password_conn)
    assert_clean_failure(run, 'Keystone authentication failed: HTTP 308 the server at %s/auth/tokens answered with a '
                              'redirect to http://127.0.0.1:%d/v3/auth/tokens' % (emulator.auth_url, listener.port))
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
    cut_short = replies_cut_short(emulator)
    run = ansible.module('smtp_user_info', conn)
    assert_clean_failure(run, 'GetSMTPUserInfo failed: HTTP 200 the reply is larger than 4 MiB')
    # The client hung up: the emulator could not send the rest of the 256 MiB (it logs the request once it gave up).
    deadline = time.monotonic() + 30
    while not mail_actions(emulator) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 200)]
    assert replies_cut_short(emulator) == cut_short + 1, emulator.log_tail()


def replies_cut_short(emulator):
    """How many GetSMTPUserInfo replies the emulator could not send in full, from its process log."""
    with open(emulator.log_path, encoding='utf-8', errors='replace') as handle:
        return handle.read().count('could not send the reply of mail GetSMTPUserInfo')


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
def test_bad_connection_options_fail_before_any_login(ansible, emulator, password_conn, args, message, request):
    # Without an endpoint, region_name builds it: a bad region must stop the run before the login.
    conn, env = dict(password_conn, **args), None
    if 'region_name' in args:
        del conn['endpoint']
        ansible.private_dns, env = request.getfixturevalue('private_dns'), {'FJCLOUD_MAIL_ENDPOINT': None}
    run = ansible.module('smtp_user', conn, env=env)
    assert message in refused_before_any_request(run, emulator)
    assert keystone_requests(emulator) == []
    assert 'a' * 100 not in run.result['msg']


# ------------------------------------------- clear and fast network errors (issue 16, finding 9)

def closed_port():
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize('option', ['endpoint', 'auth_url'])
def test_a_host_name_that_does_not_resolve_fails_at_once_with_a_hint(ansible, emulator, password_conn, option, private_dns):
    # The real resolver of the C library is asked, but only the private name server on loopback answers (NXDOMAIN).
    ansible.private_dns = private_dns
    if option == 'endpoint':
        host = 'mail.jp-east-9.invalid'
        args = dict(password_conn, endpoint='https://%s' % host)
        url = 'https://%s/' % host
    else:
        host = 'identity.jp-east-9.invalid'
        args = dict(password_conn, auth=dict(password_conn['auth'], auth_url='https://%s/v3' % host))
        url = 'https://%s/v3/auth/tokens' % host
    run = ansible.module('smtp_user_info', args)  # the default retries=5
    message = assert_clean_failure(run, '')
    assert 'the host name of %s does not resolve' % url in message, message
    assert 'Check region_name and %s' % option in message and 'not retried' in message
    assert run.result['attempts'] == 1 and 'after' not in message
    # What the name server saw: one lookup, not the old client's six over about 25 s.
    assert private_dns.lookups(host) == 1, private_dns.queries


def test_a_refused_connection_is_retried_for_a_few_seconds_only(ansible, emulator, conn):
    port = closed_port()
    run = ansible.module('smtp_user_info', dict(conn, endpoint='https://127.0.0.1:%d' % port))  # retries=5
    message = assert_clean_failure(run, 'GetSMTPUserInfo failed: cannot connect: https://127.0.0.1:%d/ (' % port)
    assert 'Check endpoint and that the service is reachable' in message
    # Waits of 0.5-1, 1-2 and 2-4 s, cut to 4 s in all, leave room for 4 or 5 attempts whatever the jitter; the old
    # client made all 6 (waiting 0.5-1, 1-2, 2-4, 4-8 and 8-16 s). The waits themselves: test_retries.py, on a fake clock.
    assert run.result['attempts'] in (4, 5)
    assert 'after %d attempts' % run.result['attempts'] in message


def test_access_denied_names_the_url_and_what_to_do(ansible, emulator):
    token = emulator.token(user='denied-user', password='denied-password')
    run = ansible.module('smtp_user_info', dict(endpoint=emulator.url, ca_cert=emulator.ca_cert, auth_token=token))
    message = assert_clean_failure(run, 'GetSMTPUserInfo failed: HTTP 403 Access Denied (request id ')
    assert ' from %s/. ' % emulator.url in message
    assert "lacks a role for the mail service in the token's project" in message and 'project_id' in message


def test_a_keystone_404_names_the_url_tried(ansible, emulator, password_conn):
    auth_url = emulator.url + '/identity'  # a server that answers, but not with Keystone there
    run = ansible.module('smtp_user_info', dict(password_conn, auth=dict(password_conn['auth'], auth_url=auth_url)))
    message = assert_clean_failure(run, 'Keystone authentication failed: HTTP 404 Keystone at %s/v3/auth/tokens answered '
                                        % auth_url)
    assert 'Check auth_url: it must be the Keystone v3 of the region, ending in /v3' in message
    assert mail_actions(emulator) == []


def test_a_huge_service_message_is_bounded(ansible, emulator, conn):
    emulator.fault(action='GetSMTPUserInfo', status=400, body='error', code='InvalidParameterValue',
                   message='m' * 3000000)
    run = ansible.module('smtp_user_info', conn)
    message = assert_clean_failure(run, 'GetSMTPUserInfo failed: HTTP 400 InvalidParameterValue: ' + 'm' * 300 + '... ')
    assert len(message) < 1000 and len(run.output) < 20000


def test_a_keystone_401_names_what_may_be_wrong(ansible, emulator, password_conn):
    password_conn['auth']['project_id'] = 'f' * 32  # a typo in the project: the scope may be the cause
    run = ansible.module('smtp_user_info', password_conn)
    message = assert_clean_failure(run, 'Keystone authentication failed: HTTP 401 Keystone rejected the credentials of '
                                        'user demo-user of contract ct0000000001 for project_id %s at %s/auth/tokens'
                                        % ('f' * 32, emulator.auth_url))
    for cause in ('the password', 'the user name', 'user_domain_name (the contract number)', 'project_id or project_name'):
        assert cause in message
    assert '..' not in message.replace('...', '') and 'Not retried' in message
    assert DEMO_AUTH['password'] not in run.output


# -------------------------------------- URLs with user info, also malformed (issue 16, finding 5)

MALFORMED = ['https://admin:%s@127.0.0.1:4430x/' % LEAK, 'https://admin:%s@[::1/' % LEAK,
             'https://admin:%s@127.0.0.1:99999/' % LEAK, 'admin:%s@127.0.0.1:4430' % LEAK]


@pytest.mark.parametrize('option', ['endpoint', 'auth_url'])
@pytest.mark.parametrize('url', MALFORMED, ids=['bad-port', 'bad-bracket', 'port-99999', 'no-scheme'])
def test_a_malformed_url_with_user_info_is_never_echoed(ansible, emulator, password_conn, option, url, tmp_path):
    if option == 'endpoint':
        args = dict(password_conn, endpoint=url)
    else:
        args = dict(password_conn, auth=dict(password_conn['auth'], auth_url=url))
    # From a vars file, as secrets come in: ansible-core shows the task's own text when it fails.
    (tmp_path / 'vars.json').write_text(json.dumps(dict(args=args)))
    run = ansible.playbook('''
- hosts: localhost
  gather_facts: false
  tasks:
    - fjcloud.mail.smtp_user_info: "{{ args }}"
''', extra_args=['-vvv', '-e', '@%s' % (tmp_path / 'vars.json')])
    message = refused_before_any_request(run, emulator)
    assert 'must not hold a user name or password' in message
    assert LEAK not in run.output and LEAK not in json.dumps(run.results)
    assert keystone_requests(emulator) == []


# ------------------------------------------------- one endpoint rule (issue 16, finding 9)

def test_auth_returns_the_endpoint_every_module_uses(ansible, emulator, password_conn, listener, private_dns):
    """No endpoint given: auth and smtp_user_info both take the region's default, not the token's catalog.

    smtp_user_info goes through a local proxy (the listener), which shows the host it was asked
    for without any name being resolved; Keystone (on 127.0.0.1) is reached directly. Both run
    with the private name server, so that even a lookup of the default host would stay on loopback.
    """
    ansible.private_dns = private_dns
    args = dict(password_conn, region_name='jp-east-1')  # the emulator's region, in its catalog
    del args['endpoint']
    default = 'https://mail.jp-east-1.cloud.global.fujitsu.com'
    run = ansible.module('auth', args, env={'FJCLOUD_MAIL_ENDPOINT': None})
    assert run.rc == 0, run.output
    assert run.result['endpoint'] == default
    assert any("the token's service catalog names %s" % emulator.url in warning for warning in run.result['warnings'])
    proxy = dict(listener.proxy_env(), FJCLOUD_MAIL_ENDPOINT=None)
    run = ansible.module('smtp_user_info', dict(args, retries=0), env=proxy)
    assert run.rc != 0
    assert listener.received and listener.received[0].startswith(b'CONNECT mail.jp-east-1.cloud.global.fujitsu.com:443 ')
    assert mail_actions(emulator) == []
    assert not private_dns.asked_for(default[len('https://'):]), private_dns.queries


def test_a_run_without_an_endpoint_never_reaches_the_real_service(ansible, emulator, conn):
    # The harness's guard: a test that names no endpoint gets a closed loopback port, not the region's default.
    args = dict(conn, retries=0)
    del args['endpoint']
    message = assert_clean_failure(ansible.module('smtp_user_info', args), 'GetSMTPUserInfo failed: cannot connect: ')
    assert message.startswith('GetSMTPUserInfo failed: cannot connect: %s (' % CLOSED_ENDPOINT), message
    with pytest.raises(AssertionError, match='the default endpoint only with private_dns'):
        ansible.module('smtp_user_info', args, env={'FJCLOUD_MAIL_ENDPOINT': None})


def test_auth_takes_the_endpoint_from_the_environment_like_every_module(ansible, emulator, password_conn):
    args = dict(password_conn, region_name='jp-east-3')
    del args['endpoint']
    env = {'FJCLOUD_MAIL_ENDPOINT': emulator.url}
    run = ansible.module('auth', args, env=env)
    assert run.rc == 0, run.output
    assert run.result['endpoint'] == emulator.url and not run.result.get('warnings')
    run = ansible.module('smtp_user_info', args, env=env)
    assert run.rc == 0, run.output
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 404)]
