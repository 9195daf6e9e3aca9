# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""smtp_user and smtp_user_info, run by real ansible commands against the emulator."""

from __future__ import annotations

import json
import socket

import pytest

from harness import (
    DEMO_AUTH, assert_clean_failure, keystone_requests, mail_actions, refused_before_any_request, smtp_user_of, throttled,
)


def test_lifecycle_check_create_again_rotate_absent(ansible, emulator, conn):
    # Check mode on an empty contract: would create, reads only.
    run = ansible.module('smtp_user', conn, check=True, diff=True)
    assert run.rc == 0, run.output
    assert run.result['changed'] is True and run.result['created'] is True
    assert run.result['smtp_user'] is None and run.result['smtp_password'] is None
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 404)]
    assert smtp_user_of(emulator) is None

    # Create.
    run = ansible.module('smtp_user', conn)
    assert run.rc == 0, run.output
    issued = smtp_user_of(emulator)
    assert run.result['changed'] is True and run.result['created'] is True
    assert (run.result['smtp_user'], run.result['smtp_password']) == (issued['user'], issued['password'])
    assert len(run.result['request_id']) == 36

    # Again: unchanged, the same credentials, read back after the 409.
    emulator.clear_log()
    run = ansible.module('smtp_user', conn, diff=True)
    assert run.rc == 0, run.output
    assert run.result['changed'] is False and run.result['created'] is False
    assert (run.result['smtp_user'], run.result['smtp_password']) == (issued['user'], issued['password'])
    assert mail_actions(emulator) == [('CreateSMTPUser', 409), ('GetSMTPUserInfo', 200)]
    assert issued['password'] not in json.dumps(run.result['diff'])

    # Check mode with a user: unchanged, returns the credentials, reads only.
    emulator.clear_log()
    run = ansible.module('smtp_user', conn, check=True)
    assert run.result['changed'] is False and run.result['smtp_password'] == issued['password']
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 200)]

    # Rotate in check mode: would change, writes nothing.
    emulator.clear_log()
    run = ansible.module('smtp_user', dict(conn, rotate=True), check=True, diff=True)
    assert run.result['changed'] is True
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 200)]
    assert smtp_user_of(emulator)['password'] == issued['password']

    # Rotate: a new password, the one the service now holds.
    run = ansible.module('smtp_user', dict(conn, rotate=True))
    assert run.rc == 0, run.output
    rotated = smtp_user_of(emulator)
    assert run.result['changed'] is True and run.result['created'] is True
    assert rotated['password'] != issued['password']
    assert (run.result['smtp_user'], run.result['smtp_password']) == (rotated['user'], rotated['password'])

    # Absent in check mode: would delete, reads only.
    emulator.clear_log()
    run = ansible.module('smtp_user', dict(conn, state='absent'), check=True)
    assert run.result['changed'] is True
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 200)]

    # Absent, then absent again.
    run = ansible.module('smtp_user', dict(conn, state='absent'))
    assert run.rc == 0 and run.result['changed'] is True, run.output
    assert smtp_user_of(emulator) is None
    run = ansible.module('smtp_user', dict(conn, state='absent'))
    assert run.rc == 0 and run.result['changed'] is False, run.output
    assert run.result['smtp_password'] is None


def test_info_module(ansible, emulator, conn):
    run = ansible.module('smtp_user_info', conn)
    assert run.rc == 0, run.output
    assert run.result['exists'] is False and 'smtp_password' not in run.result
    ansible.module('smtp_user', conn)
    run = ansible.module('smtp_user_info', conn, check=True)
    issued = smtp_user_of(emulator)
    assert run.result['exists'] is True and run.result['changed'] is False
    assert (run.result['smtp_user'], run.result['smtp_password']) == (issued['user'], issued['password'])


def test_password_authentication(ansible, emulator, password_conn):
    run = ansible.module('smtp_user', password_conn)
    assert run.rc == 0, run.output
    assert run.result['smtp_password'] == smtp_user_of(emulator)['password']
    assert len(keystone_requests(emulator)) == 1


def test_credentials_from_openstack_environment_variables(ansible, emulator):
    env = dict(OS_AUTH_URL=emulator.auth_url, OS_USERNAME=DEMO_AUTH['username'], OS_PASSWORD=DEMO_AUTH['password'],
               OS_USER_DOMAIN_NAME=DEMO_AUTH['user_domain_name'], OS_PROJECT_NAME='demo-project',
               OS_CACERT=emulator.ca_cert, FJCLOUD_MAIL_ENDPOINT=emulator.url)
    run = ansible.module('smtp_user_info', {}, env=env)
    assert run.rc == 0, run.output
    assert run.result['exists'] is False


def test_expired_token_is_renewed_with_the_password(ansible, emulator, password_conn):
    stale = emulator.token()
    emulator.expire_tokens()
    emulator.clear_log()
    run = ansible.module('smtp_user_info', dict(password_conn, auth_token=stale))
    assert run.rc == 0, run.output
    assert [r['status'] for r in keystone_requests(emulator)] == [201]
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 401), ('GetSMTPUserInfo', 404)]


def test_module_defaults_through_the_action_group(ansible, emulator, conn):
    run = ansible.playbook('''
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/fjcloud.mail.mail: %s
  tasks:
    - fjcloud.mail.smtp_user:
      register: created
      no_log: true
    - fjcloud.mail.smtp_user_info:
      register: info
      no_log: true
    - ansible.builtin.assert:
        that:
          - created is changed
          - info.exists
          - info.smtp_password == created.smtp_password
''' % json.dumps(conn))
    assert run.rc == 0, run.output
    assert mail_actions(emulator) == [('CreateSMTPUser', 200), ('GetSMTPUserInfo', 200)]
    # Each task is a new process; the pacing they share keeps them under the service's limit.
    assert throttled(emulator) == []


def test_no_secret_in_verbose_output_of_a_no_log_task(ansible, emulator, password_conn):
    run = ansible.playbook('''
- hosts: localhost
  gather_facts: false
  tasks:
    - fjcloud.mail.smtp_user: %s
      register: smtp
      no_log: true
    - fjcloud.mail.smtp_user: %s
      register: again
      no_log: true
''' % (json.dumps(password_conn), json.dumps(dict(password_conn, auth_token=emulator.token()))),
        extra_args=['-vvv', '--diff'])
    assert run.rc == 0, run.output
    secrets = [smtp_user_of(emulator)['password'], DEMO_AUTH['password'], emulator.token()]
    for secret in secrets:
        assert secret not in run.output
    assert 'censored' in run.output


# ------------------------------------------------------------------ failures

def test_no_credentials(ansible, emulator):
    run = ansible.module('smtp_user', dict(endpoint=emulator.url, ca_cert=emulator.ca_cert))
    assert_clean_failure(run, 'no credentials: give auth_token')
    assert emulator.log() == []


def test_wrong_password_is_tried_once(ansible, emulator, password_conn):
    password_conn['auth']['password'] = 'wrong-password'
    run = ansible.module('smtp_user', password_conn)
    message = assert_clean_failure(run, 'Keystone authentication failed: HTTP 401 Keystone rejected the credentials of '
                                        'user demo-user of contract ct0000000001')
    assert 'Not retried' in message and 'wrong-password' not in run.output
    assert [r['status'] for r in keystone_requests(emulator)] == [401]
    assert mail_actions(emulator) == []


def test_unreachable_endpoint(ansible, emulator, conn):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    run = ansible.module('smtp_user', dict(conn, endpoint='https://127.0.0.1:%d' % port, retries=1))
    assert_clean_failure(run, 'CreateSMTPUser failed: cannot connect: https://127.0.0.1:%d/ (' % port)
    assert 'after 2 attempts' in run.result['msg']


def test_certificate_not_signed_by_the_given_ca(ansible, emulator, conn, tmp_path):
    import trustme
    other_ca = tmp_path / 'other-ca.pem'
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    run = ansible.module('smtp_user', dict(conn, ca_cert=str(other_ca)))
    message = assert_clean_failure(run, 'CreateSMTPUser failed: TLS handshake with %s/ failed: ' % emulator.url)
    assert 'certificate verify failed' in message and 'ca_cert' in message
    assert mail_actions(emulator) == []


def test_malformed_reply(ansible, emulator, conn):
    emulator.fault(action='CreateSMTPUser', status=200, body='garbage')
    run = ansible.module('smtp_user', conn)
    message = assert_clean_failure(run, 'CreateSMTPUser failed: HTTP 200 the reply is not XML (')
    assert 'request id ' in message


def test_html_error_page(ansible, emulator, conn):
    emulator.fault(action='CreateSMTPUser', status=502, body='html', count=5)
    run = ansible.module('smtp_user', dict(conn, retries=1))
    message = assert_clean_failure(run, 'CreateSMTPUser failed: HTTP 502 the reply is not XML (text/html')
    assert 'after 2 attempts' in message


def test_access_denied(ansible, emulator):
    token = emulator.token(user='denied-user', password='denied-password')
    run = ansible.module('smtp_user', dict(endpoint=emulator.url, ca_cert=emulator.ca_cert, auth_token=token))
    assert_clean_failure(run, 'CreateSMTPUser failed: HTTP 403 Access Denied (request id ')
    assert run.result['status'] == 403 and run.result['request_id']


def test_500_that_recovers(ansible, emulator, conn):
    emulator.fault(action='CreateSMTPUser', status=500, body='error', count=1)
    run = ansible.module('smtp_user', conn)
    assert run.rc == 0, run.output
    assert run.result['changed'] is True
    assert mail_actions(emulator) == [('CreateSMTPUser', 500), ('CreateSMTPUser', 200)]


def test_500_that_does_not_recover(ansible, emulator, conn):
    emulator.fault(action='CreateSMTPUser', status=500, body='error', count=10)
    run = ansible.module('smtp_user', dict(conn, retries=2))
    message = assert_clean_failure(run, 'CreateSMTPUser failed: HTTP 500 InternalFailure: ')
    assert message.endswith('after 3 attempts') and '(request id ' in message
    assert run.result['status'] == 500
    assert mail_actions(emulator) == [('CreateSMTPUser', 500)] * 3


def test_dropped_connection_then_success(ansible, emulator, conn):
    emulator.fault(action='CreateSMTPUser', drop=True, count=1)
    run = ansible.module('smtp_user', conn)
    assert run.rc == 0, run.output
    assert run.result['created'] is True


@pytest.mark.parametrize('args, message', [
    (dict(state='gone'), 'value of state must be one of: present, absent, got: gone'),
    (dict(state='absent', rotate=True), 'rotate=true needs state=present'),
    (dict(region_name='jp_east_1'), "region_name 'jp_east_1' is not a region name"),
])
def test_bad_input_fails_before_any_request(ansible, emulator, conn, args, message):
    run = ansible.module('smtp_user', dict(conn, **args))
    assert message in refused_before_any_request(run, emulator)
