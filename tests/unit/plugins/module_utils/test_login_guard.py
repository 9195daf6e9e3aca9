# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LoginGuard: one Keystone login per account after a rejection, across processes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import multiprocessing
import os
import time

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.login_guard import LoginGuard

AUTH_URL = 'https://identity.example.com/v3'
WINDOW = 900


def guard(state, clock=None, auth_url=AUTH_URL, username='alice', domain='ct0001', **kwargs):
    if clock is not None:
        kwargs.update(clock=clock, sleep=clock.sleep)
    return LoginGuard(auth_url, username, domain, state_dir=state, **kwargs)


def login(login_guard, result):
    """One guarded login with the given outcome; True if it was tried."""
    with login_guard.attempt() as outcome:
        getattr(outcome, result)()
        return True


def record(login_guard):
    """The path of the guard's record, created as the guard creates it."""
    os.close(login_guard.state.open_file(login_guard.name))
    return login_guard.path


def refusal(login_guard):
    tried = []
    with pytest.raises(K5MailError) as info:
        with login_guard.attempt():
            tried.append(True)
    assert tried == []
    return str(info.value)


def test_a_rejection_refuses_every_later_login_of_the_account_for_the_window(state, clock):
    assert login(guard(state, clock), 'rejected')
    clock.now += 60
    message = refusal(guard(state, clock))
    assert message.startswith('Keystone authentication failed: not tried: Keystone rejected the login')
    assert 'user alice of contract ct0001 60 seconds ago' in message
    assert 'in 841 seconds' in message  # when it may try again
    assert 'delete %s' % guard(state).path in message  # how to clear it
    clock.now += WINDOW - 60
    assert login(guard(state, clock), 'accepted')


def test_a_rejection_is_recorded_when_the_caller_raises_its_error_after_reporting_it(state, clock):
    with pytest.raises(K5MailError):
        with guard(state, clock).attempt() as outcome:
            outcome.rejected()
            raise K5MailError('Keystone authentication', 'Keystone rejected the credentials', status=401)
    refusal(guard(state, clock))


def test_every_spelling_of_the_keystone_url_is_one_account(state, clock):
    login(guard(state, clock), 'rejected')
    for spelling in ('https://IDENTITY.example.com:443/v3/', 'https://identity.example.com', 'https://identity.example.com/'):
        refusal(guard(state, clock, auth_url=spelling))


@pytest.mark.parametrize('other', [dict(username='bob'), dict(domain='ct0002'), dict(auth_url='https://identity2.example.com/v3')])
def test_other_accounts_are_not_refused(state, clock, other):
    login(guard(state, clock), 'rejected')
    assert login(guard(state, clock, **other), 'accepted')


def test_the_record_holds_no_secret_and_is_private(state, clock):
    login_guard = guard(state, clock)
    login(login_guard, 'accepted')
    with open(login_guard.path) as handle:
        assert handle.read() == 'accepted %.3f' % clock.now
    assert os.stat(login_guard.path).st_mode & 0o777 == 0o600
    assert os.stat(state).st_mode & 0o777 == 0o700


def test_a_rejection_dated_in_the_future_counts_from_now(state, clock):
    login_guard = guard(state, clock)
    with open(record(login_guard), 'w') as handle:
        handle.write('rejected %.3f' % (clock.now + 10 * WINDOW))
    assert 'in 901 seconds' in refusal(login_guard)
    clock.now += WINDOW
    assert login(guard(state, clock), 'accepted')


def test_a_corrupt_record_means_no_outcome(state, clock):
    login_guard = guard(state, clock)
    with open(record(login_guard), 'w') as handle:
        handle.write('rejected yesterday')
    assert login(login_guard, 'accepted')


def test_a_failure_without_outcome_records_nothing_and_releases_the_lock(state, clock):
    with pytest.raises(RuntimeError):
        with guard(state, clock).attempt():
            raise RuntimeError('connection refused')
    assert login(guard(state, clock, lock_timeout=0), 'rejected')


def test_unsafe_state_refuses_before_the_login(state, clock):
    os.makedirs(state)
    os.chmod(state, 0o750)
    assert 'mode 0750' in refusal(guard(state, clock))


# ------------------------------------------------------------- concurrency

def hold(login_guard):
    """Another open file description holding the record's lock, as another process would."""
    fd = os.open(record(login_guard), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_without_an_outcome_a_login_waits_for_the_one_in_progress_and_the_wait_is_bounded(state, clock):
    login_guard = guard(state, clock, lock_timeout=3)
    fd = hold(login_guard)
    try:
        message = refusal(login_guard)
    finally:
        os.close(fd)
    assert 'another login of user alice of contract ct0001 on this host held' in message
    assert 'more than 3 seconds' in message
    assert 3 <= sum(clock.sleeps) < 3.2 and len(clock.sleeps) < 100


def test_after_an_acceptance_logins_run_in_parallel(state, clock):
    login(guard(state, clock), 'accepted')
    login_guard = guard(state, clock, lock_timeout=0)
    fd = hold(login_guard)
    try:
        with login_guard.attempt():
            pass  # entered although another login holds the lock
    finally:
        os.close(fd)
    assert clock.sleeps == []


def test_an_acceptance_older_than_the_window_serialises_logins_again(state, clock):
    login(guard(state, clock), 'accepted')
    clock.now += WINDOW
    login_guard = guard(state, clock, lock_timeout=1)
    fd = hold(login_guard)
    try:
        assert 'held' in refusal(login_guard)
    finally:
        os.close(fd)


def waiting_login(state, queue):
    """A process that waits for the lock, then reports whether it was let in."""
    try:
        with guard(state, lock_timeout=10).attempt():
            queue.put('tried')
    except K5MailError as exc:
        queue.put(str(exc))


def test_a_waiting_login_refuses_as_soon_as_the_one_in_progress_is_rejected(state):
    holder = guard(state)
    queue = multiprocessing.get_context('fork').Queue()
    with holder.attempt() as outcome:
        waiter = multiprocessing.get_context('fork').Process(target=waiting_login, args=(state, queue))
        waiter.start()
        time.sleep(0.5)
        assert queue.empty()  # it waits for this login's outcome
        outcome.rejected()
    started = time.monotonic()
    assert 'not tried: Keystone rejected the login' in queue.get(timeout=10)
    assert time.monotonic() - started < 2
    waiter.join(timeout=10)


def racing_login(state, start, tried_path, queue):
    start.wait(10)
    try:
        with guard(state, lock_timeout=30).attempt() as outcome:
            with open(tried_path, 'a') as tried:
                tried.write('x')
            time.sleep(0.3)  # Keystone takes its time
            outcome.rejected()
        queue.put('tried')
    except K5MailError as exc:
        queue.put(str(exc))


def test_of_many_processes_started_at_once_with_a_wrong_password_exactly_one_tries(state, tmp_path):
    context = multiprocessing.get_context('fork')
    start, queue, tried_path = context.Event(), context.Queue(), str(tmp_path / 'tried')
    processes = [context.Process(target=racing_login, args=(state, start, tried_path, queue)) for _index in range(20)]
    for process in processes:
        process.start()
    start.set()
    answers = [queue.get(timeout=30) for _process in processes]
    for process in processes:
        process.join(timeout=10)
    assert open(tried_path).read() == 'x'
    assert answers.count('tried') == 1
    assert all('not tried: Keystone rejected the login' in answer for answer in answers if answer != 'tried'), answers
