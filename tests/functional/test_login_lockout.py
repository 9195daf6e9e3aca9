# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logins that cannot lock the account: real ansible-playbook runs with many forks against the emulator.

The emulator locks an account after five failed logins within 15 minutes, as
K5 does. Every run here counts the password checks Keystone really received.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import STATE_DIR_ENV
from harness import DEMO_AUTH, keystone_requests

FLEET = 30
FIFTY = 50
FLEET_PLAY = '''
- hosts: fleet
  gather_facts: false
  tasks:
    - fjcloud.mail.auth:
        auth: %s
        ca_cert: %s
'''
WRONG_PROJECT = 'ffffffffffffffffffffffffffffffff'


def credentials(emulator, **changes):
    return dict(DEMO_AUTH, auth_url=emulator.auth_url, **changes)


def fleet_login(ansible, emulator, hosts, forks, env=None, **changes):
    """One play of fjcloud.mail.auth on ``hosts`` local hosts with ``forks`` forks."""
    inventory = ansible.tmp_path / ('fleet-%d.ini' % ansible.runs)
    inventory.write_text('[fleet]\n%s\n[fleet:vars]\nansible_connection=local\n' % '\n'.join(
        'host%d' % index for index in range(hosts)))
    return ansible.playbook(FLEET_PLAY % (json.dumps(credentials(emulator, **changes)), emulator.ca_cert),
                            extra_args=['-i', str(inventory), '-f', str(forks)], env=env)


def login(ansible, emulator, env=None, **changes):
    return ansible.module('auth', dict(auth=credentials(emulator, **changes), ca_cert=emulator.ca_cert), env=env)


def statuses(emulator):
    return [record['status'] for record in keystone_requests(emulator)]


def messages(run):
    return sorted(result['msg'] for result in run.results if result['_status'] == 'failed')


def test_thirty_forks_with_a_wrong_password_after_an_accepted_login_make_one_attempt(ansible, emulator):
    assert login(ansible, emulator).rc == 0
    emulator.clear_log()
    # Keystone answers in a second: every fork starts while the first login is still in flight.
    emulator.fault(service='keystone', action='authenticate', delay=1, count=FLEET)
    run = fleet_login(ansible, emulator, FLEET, FLEET, password='rotated-in-the-portal')
    assert run.rc != 0
    run.assert_no_traceback()
    assert statuses(emulator) == [401]
    failed = messages(run)
    assert len(failed) == FLEET, run.output
    # Every other fork was refused for the rejection, none ran out its wait for the account's lock.
    refused = [message for message in failed if 'not tried: Keystone rejected these credentials' in message]
    assert len(refused) == FLEET - 1, failed
    assert all('a different password or project is tried at once' in message for message in refused)
    assert not any('delete' in message for message in failed)
    assert 'rotated-in-the-portal' not in run.output + json.dumps(run.results)
    emulator.clear_faults()

    # The corrected password works at once.
    run = login(ansible, emulator)
    assert run.rc == 0, run.output
    assert statuses(emulator) == [401, 201]

    # Other wrong passwords are tried, but never more than three failed logins in all, over many runs.
    for index in range(4):
        run = login(ansible, emulator, password='wrong-%d' % index)
        assert run.rc != 0
        run.assert_no_traceback()
    assert statuses(emulator) == [401, 201, 401, 401]
    assert 'failed or got no answer within the last 15 minutes' in run.result['msg']
    assert 'no login of the account is tried from this host until' in run.result['msg']
    # Not even the right password: it cannot be told from a wrong one before Keystone answers.
    run = login(ansible, emulator)
    assert run.rc != 0 and statuses(emulator) == [401, 201, 401, 401]
    assert 'The account is locked' not in json.dumps(emulator.log())


def test_a_wrong_project_does_not_block_the_right_one(ansible, emulator):
    run = login(ansible, emulator, project_id=WRONG_PROJECT)
    assert run.rc != 0 and statuses(emulator) == [401]
    run = login(ansible, emulator)
    assert run.rc == 0, run.output
    assert statuses(emulator) == [401, 201]
    # The wrong project stays refused, without a request, and the message names it.
    run = login(ansible, emulator, project_id=WRONG_PROJECT)
    assert run.rc != 0 and statuses(emulator) == [401, 201]
    assert 'not tried: Keystone rejected these credentials (user demo-user of contract %s, project id %s, ' \
           'this password)' % (DEMO_AUTH['user_domain_name'], WRONG_PROJECT) in run.result['msg']


@pytest.fixture
def full_state_dir(tmp_path):
    """A state directory on a small tmpfs, the filesystem then filled up by ``fill()``."""
    mount_point = tmp_path / 'small-fs'
    mount_point.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


def fill(directory):
    """Fill the filesystem of ``directory`` up to the last byte (bounded: the filesystem is 256 KiB)."""
    # Unbuffered: a buffered file would try the rest again at close and raise there.
    fd = os.open(os.path.join(str(directory), 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _chunk in range(1024):
            try:
                os.write(fd, b'\0' * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return
    finally:
        os.close(fd)
    raise AssertionError('the filesystem did not fill up')


@pytest.mark.skipif(os.getuid() != 0, reason='mounting a small filesystem needs root')
def test_ten_forks_with_a_record_that_cannot_be_written_make_no_attempt(ansible, emulator, full_state_dir):
    env = {'FJCLOUD_MAIL_STATE_DIR': str(full_state_dir / 'state')}
    assert login(ansible, emulator, env=env).rc == 0  # key, lock and record exist; an acceptance is recorded
    fill(full_state_dir)
    emulator.clear_log()
    run = fleet_login(ansible, emulator, 10, 10, env=env, password='wrong-password')
    assert run.rc != 0
    run.assert_no_traceback()
    assert statuses(emulator) == []
    failed = messages(run)
    assert len(failed) == 10, run.output
    assert all('not tried: the attempt could not be recorded before the login: cannot write %s' % os.path.join(
        env['FJCLOUD_MAIL_STATE_DIR'], 'login-') in message for message in failed), failed
    assert all('No space left on device' in message for message in failed)


def test_a_wrong_password_on_fifty_hosts_makes_one_login_and_does_not_lock_the_account(ansible, emulator):
    run = fleet_login(ansible, emulator, FIFTY, FIFTY, password='wrong-password')
    assert run.rc != 0
    run.assert_no_traceback()
    assert [record['status'] for record in keystone_requests(emulator)] == [401]
    failed = messages(run)
    assert len(failed) == len(run.results) == FIFTY
    tried = [message for message in failed if 'rejected the credentials' in message]
    refused = [message for message in failed
               if 'not tried: Keystone rejected these credentials (user demo-user' in message]
    assert len(tried) == 1 and len(refused) == FIFTY - 1, failed
    assert all('a different password or project is tried at once' in message for message in refused)
    assert 'wrong-password' not in run.output and 'wrong-password' not in json.dumps(run.results)

    # The corrected password is tried at once, and the records hold no secret.
    run = login(ansible, emulator)
    assert run.rc == 0, run.output
    assert [record['status'] for record in keystone_requests(emulator)] == [401, 201]
    records = [os.path.join(ansible.env[STATE_DIR_ENV], name) for name in os.listdir(ansible.env[STATE_DIR_ENV])]
    for password in ('wrong-password', DEMO_AUTH['password']):
        plain_hash = hashlib.sha256(password.encode('utf-8')).hexdigest()
        for record in records:
            with open(record) as handle:
                text = handle.read()
            assert password not in text and plain_hash not in text, record
