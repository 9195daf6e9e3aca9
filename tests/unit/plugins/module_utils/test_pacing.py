# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pacer and SharedPacer: spacing, the shared record, and the checks of the private state directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import Pacer, SharedPacer
from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import STATE_DIR_ENV, default_state_dir, normalised_url

ENDPOINT = 'https://mail.example/'
OTHER_UID = 65534  # nobody


def shared(state, clock, endpoint=ENDPOINT, **kwargs):
    return SharedPacer(endpoint, state_dir=state, clock=clock, sleep=clock.sleep, **kwargs)


def use(pacer):
    with pacer.slot():
        pass


def test_pacer_spaces_calls_of_one_process(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    use(pacer)
    clock.now += 0.4
    use(pacer)
    clock.now += 3
    use(pacer)
    assert clock.sleeps == [pytest.approx(0.6)]


def test_shared_pacer_spaces_calls_of_two_processes(state, clock):
    first, second, other_endpoint = shared(state, clock), shared(state, clock), shared(state, clock, 'https://other.example/')
    use(first)
    use(other_endpoint)
    assert clock.sleeps == []
    clock.now += 0.25
    use(second)
    assert clock.sleeps == [0.75]
    assert oct(os.stat(first.path).st_mode & 0o777) == '0o600'
    assert oct(os.stat(state).st_mode & 0o777) == '0o700'


@pytest.mark.parametrize('spelling', ['https://MAIL.example.com/', 'https://mail.example.com:443',
                                      'https://user@mail.example.com/some/path?q=1', ' https://mail.example.com '])
def test_every_spelling_of_an_endpoint_shares_one_record(state, clock, spelling):
    assert shared(state, clock, spelling).path == shared(state, clock, 'https://mail.example.com').path
    assert normalised_url(spelling) == 'https://mail.example.com:443'


@pytest.mark.parametrize('other', ['http://mail.example.com', 'https://mail.example.com:8443', 'https://mail2.example.com'])
def test_other_endpoints_have_their_own_record(state, clock, other):
    assert shared(state, clock, other).path != shared(state, clock, 'https://mail.example.com').path


def test_the_state_dir_does_not_follow_tmpdir_or_home(monkeypatch, tmp_path):
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    first = default_state_dir()
    monkeypatch.setenv('TMPDIR', str(tmp_path))
    monkeypatch.setenv('HOME', str(tmp_path))
    assert default_state_dir() == first
    assert not first.startswith(str(tmp_path)) and first.endswith(os.path.join('.ansible', 'fjcloud.mail'))
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / 'mine'))
    assert default_state_dir() == str(tmp_path / 'mine')
    assert SharedPacer(ENDPOINT).path.startswith(str(tmp_path / 'mine') + os.sep)


def test_a_recorded_time_in_the_future_delays_one_interval_at_most(state, clock):
    pacer = shared(state, clock)
    use(pacer)
    with open(pacer.path, 'w') as handle:
        handle.write('%f' % (clock.now + 59))
    use(shared(state, clock))
    assert clock.sleeps == [1.0]


def test_a_corrupt_record_falls_back_to_the_process_record(state, clock):
    pacer = shared(state, clock)
    use(pacer)
    with open(pacer.path, 'w') as handle:
        handle.write('not a number')
    use(pacer)
    assert clock.sleeps == [1.0]


# ------------------------------------------------------- planted state files

def refused(pacer, *words):
    with pytest.raises(K5MailError) as info:
        use(pacer)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def test_a_symlink_in_place_of_the_record_is_refused_and_its_target_untouched(state, clock, tmp_path):
    pacer = shared(state, clock)
    use(pacer)
    os.unlink(pacer.path)
    target = tmp_path / 'elsewhere'
    target.write_text('precious')
    os.symlink(str(target), pacer.path)
    refused(pacer, pacer.path, 'symbolic link', STATE_DIR_ENV)
    assert target.read_text() == 'precious'


def test_a_hard_link_in_place_of_the_record_is_refused_and_not_truncated(state, clock, tmp_path):
    pacer = shared(state, clock)
    use(pacer)
    os.unlink(pacer.path)
    target = tmp_path / 'elsewhere'
    target.write_text('precious')
    os.link(str(target), pacer.path)
    refused(pacer, pacer.path, '2 hard links')
    assert target.read_text() == 'precious'


def test_a_directory_in_place_of_the_record_is_refused(state, clock):
    pacer = shared(state, clock)
    use(pacer)
    os.unlink(pacer.path)
    os.mkdir(pacer.path, 0o700)
    refused(pacer, pacer.path, 'is a directory, not a regular file')


@pytest.mark.skipif(os.getuid() != 0, reason='giving a file away needs root')
def test_a_record_of_another_user_is_refused(state, clock):
    pacer = shared(state, clock)
    use(pacer)
    os.chown(pacer.path, OTHER_UID, -1)
    refused(pacer, pacer.path, 'belongs to uid %d' % OTHER_UID)


def test_a_record_open_to_others_is_refused(state, clock):
    pacer = shared(state, clock)
    use(pacer)
    os.chmod(pacer.path, 0o644)
    refused(pacer, pacer.path, 'mode 0644', 'chmod 600 %s' % pacer.path)


def test_a_state_dir_open_to_others_is_refused(state, clock):
    os.makedirs(state)
    os.chmod(state, 0o755)
    refused(shared(state, clock), state, 'mode 0755', 'open to group or others', 'chmod 700 %s' % state)


@pytest.mark.skipif(os.getuid() != 0, reason='giving a directory away needs root')
def test_a_state_dir_of_another_user_is_refused(state, clock):
    os.makedirs(state, 0o700)
    os.chown(state, OTHER_UID, -1)
    refused(shared(state, clock), state, 'belongs to uid %d' % OTHER_UID)


def test_a_symlinked_or_file_state_dir_is_refused(state, clock, tmp_path):
    real = tmp_path / 'real'
    real.mkdir(mode=0o700)
    os.symlink(str(real), state)
    refused(shared(state, clock), state, 'symbolic link')
    os.unlink(state)
    with open(state, 'w'):
        pass
    refused(shared(state, clock), state)


# ------------------------------------------------------------------ the lock

HOLD_LOCK = '''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print('locked', flush=True)
time.sleep(float(sys.argv[2]))
'''


def hold_lock(path, seconds):
    """Another process that holds the lock on ``path`` for ``seconds``."""
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, path, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'locked'
    return holder


def test_a_lock_held_by_another_process_ends_in_a_bounded_clear_error(state):
    pacer = SharedPacer(ENDPOINT, state_dir=state, lock_timeout=1)
    use(pacer)
    holder = hold_lock(pacer.path, 30)
    try:
        started = time.monotonic()
        message = refused(pacer, 'held the pacing lock', pacer.path, 'more than 1 seconds')
        assert time.monotonic() - started >= 1, message
        assert holder.poll() is None  # it gave up on the lock, it did not outwait the holder
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_lock_wait_is_bounded_in_attempts(state, clock):
    pacer = shared(state, clock, lock_timeout=2)
    use(pacer)
    fd = os.open(pacer.path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: another holder
        refused(pacer, 'held the pacing lock')
        assert 30 < len(clock.sleeps) < 50
    finally:
        os.close(fd)


def test_a_call_waits_for_the_lock_of_another_process_then_runs(state):
    pacer = SharedPacer(ENDPOINT, state_dir=state, lock_timeout=10)
    use(pacer)
    holder = hold_lock(pacer.path, 0.5)
    try:
        started = time.monotonic()
        use(pacer)  # no error: it had the lock long before its 10 seconds were up
        assert time.monotonic() - started > 0.4
    finally:
        holder.wait(timeout=10)
