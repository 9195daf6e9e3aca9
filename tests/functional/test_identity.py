# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""auth, identity, identity_info and send_quota_info, run by real ansible commands against the emulator."""

from __future__ import annotations

import json
import threading
import time

import pytest

from harness import DEMO_AUTH, keystone_requests, mail_actions, refused_before_any_request, throttled

READS = ('GetIdentityVerificationAttributes', 200)


def set_status_after_first_read(emulator, identity, status):
    """Start a thread that changes ``identity``'s status once the module has read it (and seen the old one)."""
    emulator.clear_log()

    def flip():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if READS in mail_actions(emulator):
                emulator.set_identity(identity, status=status)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    return thread


def identities_of(emulator):
    return emulator.state()['contracts'][DEMO_AUTH['project_id']].get('identities') or {}


# ----------------------------------------------------------------------- auth

def test_auth_once_then_five_tasks_make_one_token_request(ansible, emulator):
    run = ansible.playbook('''
- hosts: localhost
  gather_facts: false
  tasks:
    - fjcloud.mail.auth:
        auth: %s
        endpoint: %s
        ca_cert: %s
      register: k5
      no_log: true
    - name: Every later task uses the token
      module_defaults:
        group/fjcloud.mail.mail:
          auth_token: "{{ k5.auth_token }}"
          endpoint: "{{ k5.endpoint }}"
          ca_cert: %s
      block:
        - fjcloud.mail.smtp_user:
          no_log: true
        - fjcloud.mail.smtp_user_info:
          no_log: true
        - fjcloud.mail.identity:
            domain: example.com
        - fjcloud.mail.identity_info:
        - fjcloud.mail.send_quota_info:
    - ansible.builtin.assert:
        that:
          - k5 is not changed
          - k5.expires_at is string
''' % (json.dumps(dict(DEMO_AUTH, auth_url=emulator.auth_url)), emulator.url, emulator.ca_cert, emulator.ca_cert))
    assert run.rc == 0, run.output
    assert [record['status'] for record in keystone_requests(emulator)] == [201]
    assert len([action for action in mail_actions(emulator) if action[1] == 200]) >= 6
    assert 'demo-password' not in run.output


def test_auth_returns_the_endpoint_in_check_mode(ansible, emulator, password_conn):
    # The endpoint rule of every module (issue 16): the option, then FJCLOUD_MAIL_ENDPOINT, then the default.
    del password_conn['endpoint']
    run = ansible.module('auth', password_conn, check=True, env={'FJCLOUD_MAIL_ENDPOINT': emulator.url})
    assert run.rc == 0, run.output
    assert run.result['changed'] is False
    assert run.result['endpoint'].rstrip('/') == emulator.url
    assert len(run.result['auth_token']) > 20


def test_auth_needs_password_credentials(ansible, emulator, conn):
    run = ansible.module('auth', conn)
    assert run.rc != 0
    assert run.result['msg'].startswith('auth needs Keystone password credentials')
    assert keystone_requests(emulator) == []


# ------------------------------------------------------------------- identity

def test_email_identity_lifecycle(ansible, emulator, conn):
    args = dict(conn, email='ops@example.com')
    run = ansible.module('identity', args, check=True, diff=True)
    assert run.rc == 0, run.output
    assert run.result['changed'] is True and run.result['verification_status'] is None
    assert mail_actions(emulator) == [READS]

    run = ansible.module('identity', args)
    assert run.result['changed'] is True and run.result['verification_status'] == 'Pending'
    assert identities_of(emulator)['ops@example.com']['status'] == 'Pending'
    assert 'dns_record' not in run.result

    emulator.clear_log()
    run = ansible.module('identity', args)
    assert run.result['changed'] is False and run.result['verification_status'] == 'Pending'
    assert mail_actions(emulator) == [READS]

    emulator.set_identity('ops@example.com', status='Failed')
    run = ansible.module('identity', args)
    assert run.result['changed'] is True and run.result['verification_status'] == 'Pending'

    emulator.clear_log()
    run = ansible.module('identity', dict(args, state='absent'), check=True)
    assert run.result['changed'] is True and mail_actions(emulator) == [READS]
    run = ansible.module('identity', dict(args, state='absent'))
    assert run.result['changed'] is True and 'ops@example.com' not in identities_of(emulator)
    run = ansible.module('identity', dict(args, state='absent'))
    assert run.result['changed'] is False


def test_domain_identity_returns_the_dns_record(ansible, emulator, conn):
    run = ansible.module('identity', dict(conn, domain='example.com'), diff=True)
    assert run.rc == 0, run.output
    token = identities_of(emulator)['example.com']['token']
    assert run.result['verification_token'] == token
    assert run.result['dns_record'] == {'name': '_niftycloudess.example.com', 'type': 'TXT', 'value': token}
    assert run.result['diff'] == {'before': {'state': 'absent'}, 'after': {'state': 'present', 'verification_status': 'Pending'}}
    run = ansible.module('identity', dict(conn, domain='example.com'))
    assert run.result['changed'] is False and run.result['dns_record']['value'] == token


def test_wait_until_verified(ansible, emulator, conn):
    ansible.module('identity', dict(conn, domain='example.org'))
    flipper = set_status_after_first_read(emulator, 'example.org', 'Success')
    run = ansible.module('identity', dict(conn, domain='example.org', wait=True, wait_timeout=60))
    flipper.join()
    assert run.rc == 0, run.output
    assert run.result['verification_status'] == 'Success' and run.result['changed'] is False


def test_wait_fails_clearly_on_failure_and_on_timeout(ansible, emulator, conn):
    ansible.module('identity', dict(conn, domain='example.net'))
    emulator.clear_log()
    run = ansible.module('identity', dict(conn, domain='example.net', wait=True, wait_timeout=3))
    assert run.rc != 0
    assert run.result['msg'].startswith('GetIdentityVerificationAttributes failed: the verification of example.net '
                                        'is still Pending after 3 seconds; publish the TXT record _niftycloudess.example.net')
    # The read before the wait, then polls at 2 and 3 seconds (the second one left out on a slow machine): the wait
    # ended at its 3 seconds; the default 15 minutes poll 33 times.
    assert 2 <= mail_actions(emulator).count(READS) <= 3, mail_actions(emulator)
    # Pending when the wait starts, Failed at the next poll.
    ansible.module('identity', dict(conn, email='ops@example.net'))
    flipper = set_status_after_first_read(emulator, 'ops@example.net', 'Failed')
    run = ansible.module('identity', dict(conn, email='ops@example.net', wait=True, wait_timeout=60))
    flipper.join()
    assert run.rc != 0
    assert 'the verification of ops@example.net failed' in run.result['msg']


@pytest.mark.parametrize('args, message', [
    (dict(email='a@example.com', domain='example.com'), 'parameters are mutually exclusive: email|domain'),
    (dict(), 'one of the following is required: email, domain'),
    (dict(email='Ops <ops@example.com>'), "email 'Ops <ops@example.com>' is not valid: the address contains white space"),
    (dict(domain='exa mple.com'), "domain 'exa mple.com' is not valid: the domain exa mple.com is not dot-separated labels"),
    (dict(domain=('a' * 63 + '.') * 4 + 'com'), 'the domain is 259 characters long, the service accepts at most 255'),
    (dict(domain='example.com', wait_timeout=0), 'wait_timeout must be a positive number of seconds'),
])
def test_identity_bad_input_fails_before_any_request(ansible, emulator, conn, args, message):
    run = ansible.module('identity', dict(conn, **args))
    assert message in refused_before_any_request(run, emulator)


# -------------------------------------------------------------- identity_info

def test_identity_info_lists_250_identities_in_pages_and_batches(ansible, emulator, conn):
    domains = ['d%03d.example.com' % number for number in range(125)]
    addresses = ['user%03d@example.com' % number for number in range(125)]
    emulator.seed_identities(domains, status='Success')
    emulator.seed_identities(addresses, status='Pending')
    emulator.clear_log()
    run = ansible.module('identity_info', conn)
    assert run.rc == 0, run.output
    found = dict((item['identity'], item) for item in run.result['identities'])
    assert len(run.result['identities']) == 250 and len(found) == 250
    assert all(found[domain]['verification_status'] == 'Success' for domain in domains)
    assert all(found[address]['verification_status'] == 'Pending' for address in addresses)
    assert found['d000.example.com']['dns_record']['name'] == '_niftycloudess.d000.example.com'
    # 3 pages of at most 100, then 3 batches of at most 100; never throttled.
    assert mail_actions(emulator) == [('ListIdentities', 200)] * 3 + [READS] * 3
    assert throttled(emulator) == []

    emulator.clear_log()
    run = ansible.module('identity_info', dict(conn, identity_type='Domain'), check=True)
    assert sorted(item['identity'] for item in run.result['identities']) == domains
    assert mail_actions(emulator) == [('ListIdentities', 200)] * 2 + [READS] * 2


def test_identity_info_of_an_empty_contract(ansible, emulator, conn):
    run = ansible.module('identity_info', conn)
    assert run.rc == 0 and run.result['identities'] == [], run.output


# ------------------------------------------------------------ send_quota_info

def test_send_quota_and_statistics(ansible, emulator, conn):
    emulator.set_identity('example.com', status='Success')
    for number in range(2):
        time.sleep(1.05)  # the emulator enforces the service's rate limit on direct calls too
        reply = emulator.mail('SendEmail', token=conn['auth_token'], params={
            'Source': 'ops@example.com', 'Destination.ToAddresses.member.1': 'someone@example.net',
            'Message.Subject.Data': 'quota %d' % number, 'Message.Body.Text.Data': 'hello'})
        assert reply.status_code == 200, reply.text
    emulator.clear_log()
    run = ansible.module('send_quota_info', conn)
    assert run.rc == 0, run.output
    quota = run.result['quota']
    assert quota['sent_last_24_hours'] == 2.0 and quota['max_24_hour_send'] > 0 and quota['max_send_rate'] > 0
    points = run.result['send_data_points']
    assert sum(point['delivery_attempts'] for point in points) == 2
    assert all(isinstance(point['delivery_attempts'], int) for point in points)
    assert [point['timestamp'] for point in points] == sorted(point['timestamp'] for point in points)
    assert mail_actions(emulator) == [('GetSendQuota', 200), ('GetSendStatistics', 200)]

    run = ansible.module('send_quota_info', dict(conn, statistics=False))
    assert 'send_data_points' not in run.result
