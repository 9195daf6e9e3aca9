# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pacing and the login guard, with real ansible runs against the emulator.

The pacing and login records live in a private per-user state directory: the
same whatever TMPDIR is, and closed to planted files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import KeystonePassword
from ansible_collections.fjcloud.mail.plugins.module_utils.login_guard import LoginGuard
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import LOCK_TIMEOUT as PACING_LOCK_TIMEOUT, SharedPacer
from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import STATE_DIR_ENV, default_state_dir
from harness import DEMO_AUTH, Ansible, keystone_requests, mail_actions, refused_before_any_request, throttled

FLEET_SIZE = 50
CALLS_PER_RUN = 3
OTHER_UID = 65534  # nobody

HOLD_LOCK = '''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print('locked', flush=True)
time.sleep(float(sys.argv[2]))
'''


class LockHolder:
    """Another process that holds an flock on ``path`` for at most ``seconds``."""

    def __init__(self, path, seconds):
        self.process = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, path, str(seconds)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == 'locked'

    def __enter__(self):
        return self

    def assert_holding(self):
        assert self.process.poll() is None, 'the lock holder exited'

    def __exit__(self, *exc_info):
        self.process.kill()
        self.process.wait(timeout=10)
        self.process.stdout.close()


def runner(tmp_path, name):
    directory = tmp_path / name
    directory.mkdir()
    return Ansible(directory)


def quota_playbook(endpoint, conn, calls=CALLS_PER_RUN):
    """A play of ``calls`` read-only tasks (each at least one mail API call)."""
    defaults = dict(auth_token=conn['auth_token'], endpoint=endpoint, ca_cert=conn['ca_cert'])
    return '''
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/fjcloud.mail.mail: %s
  tasks:
''' % json.dumps(defaults) + '    - fjcloud.mail.send_quota_info:\n' * calls


def run_together(*runs):
    """Run ``(ansible, playbook, env)`` triples at once; return their AnsibleRuns."""
    results = [None] * len(runs)

    def run(index, ansible, text, env):
        results[index] = ansible.playbook(text, env=env)

    threads = [threading.Thread(target=run, args=(index,) + spec) for index, spec in enumerate(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def assert_paced(runs, emulator):
    for run in runs:
        assert run.rc == 0, run.output
        run.assert_no_traceback()
    assert throttled(emulator) == []
    assert len(mail_actions(emulator)) >= CALLS_PER_RUN * len(runs)


# ---------------------------------------------------------- shared pacing

def test_runs_with_different_tmpdirs_homes_and_endpoint_spellings_share_pacing(tmp_path, emulator, conn, monkeypatch):
    first, second = runner(tmp_path, 'first'), runner(tmp_path, 'second')
    for ansible in (first, second):
        del ansible.env[STATE_DIR_ENV]  # the real default: under the passwd home
        ansible.env['HOME'] = str(ansible.tmp_path)
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    try:
        runs = run_together(
            (first, quota_playbook('https://localhost:%d' % emulator.port, conn), None),
            (second, quota_playbook('https://LocalHost:%d/' % emulator.port, conn), None))
        assert_paced(runs, emulator)
    finally:
        record = SharedPacer('https://localhost:%d' % emulator.port).path
        if os.path.exists(record):
            os.unlink(record)
    assert os.path.dirname(record) == default_state_dir()


def old_tmp_record(tmpdir, endpoint):
    """Where 16abf23 kept the pacing record: a predictable name in the shared temporary directory."""
    digest = hashlib.sha256((endpoint.rstrip('/') + '/').encode('utf-8')).hexdigest()[:16]
    return os.path.join(tmpdir, 'fjcloud-mail-pace-%d-%s' % (os.getuid(), digest))


@pytest.mark.parametrize('planted', ['future time', 'held lock', 'directory', 'hard link', 'symlink'])
def test_files_planted_at_the_old_tmp_path_neither_slow_block_nor_unpace_runs(tmp_path, emulator, conn, planted):
    shared_tmp = tmp_path / 'tmp'
    shared_tmp.mkdir()
    path = old_tmp_record(str(shared_tmp), emulator.url)
    precious = tmp_path / 'precious'
    precious.write_text('precious')
    holder = None
    if planted == 'future time':
        with open(path, 'w') as handle:
            handle.write('%.6f' % (time.time() + 59))
    elif planted == 'held lock':
        # Held past the pacing lock's timeout: a run that took this lock would fail, not just wait.
        holder = LockHolder(path, PACING_LOCK_TIMEOUT + 60)
    elif planted == 'directory':
        os.mkdir(path)
    elif planted == 'hard link':
        os.link(str(precious), path)
    else:
        os.symlink(str(precious), path)
    planted_state = snapshot(path)
    first, second = runner(tmp_path, 'first'), runner(tmp_path, 'second')
    second.env[STATE_DIR_ENV] = first.env[STATE_DIR_ENV]  # one user: one state dir
    try:
        runs = run_together((first, quota_playbook(emulator.url, conn), dict(TMPDIR=str(shared_tmp))),
                            (second, quota_playbook(emulator.url, conn), dict(TMPDIR=str(shared_tmp))))
    finally:
        if holder is not None:
            holder.__exit__()
    assert_paced(runs, emulator)
    # Neither read nor written: a run that paced itself on the old record would have written its time there.
    assert snapshot(path) == planted_state
    assert precious.read_text() == 'precious'


def snapshot(path):
    """What ``path`` is and holds: the target of a symbolic link, the entries of a directory, the bytes of a file."""
    if os.path.islink(path):
        return 'symlink', os.readlink(path)
    if os.path.isdir(path):
        return 'directory', sorted(os.listdir(path))
    with open(path, 'rb') as handle:
        return 'file', handle.read()


def plant(kind, ansible, emulator, tmp_path):
    """Plant ``kind`` in the run's private state dir; return the path the error must name and what it must say."""
    state = ansible.env[STATE_DIR_ENV]
    precious = tmp_path / 'precious'
    precious.write_text('precious')
    if kind == 'state dir open to others':
        os.mkdir(state, 0o755)
        os.chmod(state, 0o755)
        return state, 'is open to group or others (mode 0755, expected 0700)'
    if kind == 'state dir is a symlink':
        os.symlink(str(tmp_path), state)
        return state, 'is a symbolic link, not a directory'
    os.mkdir(state, 0o700)
    record = SharedPacer(emulator.url, state_dir=state).path
    if kind == 'symlink':
        os.symlink(str(precious), record)
        return record, 'is a symbolic link, not a regular file'
    if kind == 'directory':
        os.mkdir(record)
        return record, 'is a directory, not a regular file'
    if kind == 'hard link':
        os.link(str(precious), record)
        return record, 'has 2 hard links'
    with open(record, 'w') as handle:
        handle.write('%.6f' % (time.time() + 59))
    if kind == 'record open to others':
        os.chmod(record, 0o644)
        return record, 'is open to group or others (mode 0644, expected 0600)'
    os.chown(record, OTHER_UID, -1)
    return record, 'belongs to uid %d' % OTHER_UID


@pytest.mark.parametrize('kind', [
    'state dir open to others', 'state dir is a symlink', 'symlink', 'directory', 'hard link', 'record open to others',
    pytest.param('record of another user', marks=pytest.mark.skipif(os.getuid() != 0, reason='chown needs root')),
])
def test_a_planted_state_file_is_a_clear_error_before_any_request(tmp_path, ansible, emulator, conn, kind):
    path, problem = plant(kind, ansible, emulator, tmp_path)
    run = ansible.module('send_quota_info', conn)
    message = refused_before_any_request(run, emulator)
    assert message.startswith('Pacing mail API calls failed: %s %s' % (path, problem)), message
    assert STATE_DIR_ENV in message
    assert (tmp_path / 'precious').read_text() == 'precious'


def test_a_pacing_lock_held_by_another_process_ends_in_a_bounded_clear_error(tmp_path, emulator, conn):
    pacer = SharedPacer(emulator.url, state_dir=str(tmp_path / 'state'), lock_timeout=2)
    client = K5MailClient(emulator.url, token=conn['auth_token'], ca_cert=conn['ca_cert'], pacer=pacer)
    client.call('GetSendQuota')
    emulator.clear_log()
    with LockHolder(pacer.path, 60) as holder:
        started = time.monotonic()
        with pytest.raises(K5MailError) as info:
            client.call('GetSendQuota')
        assert time.monotonic() - started >= 2
        holder.assert_holding()  # the call gave up on the lock, it did not outwait the holder
    assert 'held the pacing lock %s for more than 2 seconds' % pacer.path in str(info.value)
    assert mail_actions(emulator) == []
    client.call('GetSendQuota')  # the lock is free again


# ----------------------------------------------------------------- logins

def test_a_login_lock_held_by_another_process_ends_in_a_bounded_clear_error(tmp_path, emulator):
    guard = functools.partial(LoginGuard, state_dir=str(tmp_path / 'state'), lock_timeout=2)
    keystone = KeystonePassword(emulator.auth_url, DEMO_AUTH['username'], DEMO_AUTH['password'],
                                DEMO_AUTH['user_domain_name'], project_id=DEMO_AUTH['project_id'], login_guard=guard)
    client = K5MailClient(emulator.url, keystone=keystone, ca_cert=emulator.ca_cert,
                          pacer=SharedPacer(emulator.url, state_dir=str(tmp_path / 'state')))
    emulator.clear_log()
    record = guard(emulator.auth_url, DEMO_AUTH['username'], DEMO_AUTH['user_domain_name'])
    with LockHolder(created(record), 60) as holder:  # the account's lock: logins of one account run one at a time
        started = time.monotonic()
        with pytest.raises(K5MailError) as info:
            client.call('GetSendQuota')
        assert time.monotonic() - started >= 2
        holder.assert_holding()  # the login gave up on the lock, it did not outwait the holder
    assert 'other logins of user demo-user of contract %s on this host held %s for more than 2 seconds' % (
        DEMO_AUTH['user_domain_name'], created(record)) in str(info.value)
    assert keystone_requests(emulator) == [] and mail_actions(emulator) == []
    client.call('GetSendQuota')  # the lock is free again
    assert [record['status'] for record in keystone_requests(emulator)] == [201]


def created(guard):
    """The guard's lock file, created (with its private state dir) as the guard creates it."""
    os.close(guard.state.open_file(guard.lock_name))
    return os.path.join(guard.state.path, guard.lock_name)
