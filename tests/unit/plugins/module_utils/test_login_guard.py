# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LoginGuard: logins that cannot lock the account, across processes, whatever the record holds."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import json
import multiprocessing
import os
import pwd
import time

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError, LOST_REPLY, NOT_SENT, SERVER_ERROR
from ansible_collections.fjcloud.mail.plugins.module_utils.login_guard import LoginGuard
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import SharedPacer
from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import STATE_DIR_ENV, default_state_dir

AUTH_URL = 'https://identity.example.com/v3'
WINDOW = 900
PASSWORD = 'Secret-Passw0rd'
KEY_NAME = 'login-key'  # the secret key of the fingerprints, in the state directory


def guard(state, clock=None, auth_url=AUTH_URL, username='alice', domain='ct0001', password=PASSWORD,
          scope='project id p1', **kwargs):
    if clock is not None:
        kwargs.update(clock=clock, sleep=clock.sleep, monotonic=clock)
    return LoginGuard(auth_url, username, domain, password=password, project_scope=scope, state_dir=state, **kwargs)


def login(login_guard, result):
    """One guarded login with the given outcome; True if it was tried."""
    with login_guard.attempt() as outcome:
        getattr(outcome, result)()
        return True


def reject(login_guard):
    """A login that Keystone rejects: the caller reports it, then raises its error."""
    with pytest.raises(K5MailError, match='HTTP 401'):
        with login_guard.attempt() as outcome:
            outcome.rejected()
            raise K5MailError('Keystone authentication', 'Keystone rejected the credentials', status=401)


def refusal(login_guard):
    tried = []
    with pytest.raises(K5MailError) as info:
        with login_guard.attempt():
            tried.append(True)
    assert tried == []
    message = str(info.value)
    assert message.startswith('Keystone authentication failed: not tried: '), message
    assert 'delete' not in message and PASSWORD not in message
    return message


def read_record(login_guard):
    with open(login_guard.path) as handle:
        return json.load(handle)


def write_record(login_guard, text):
    os.close(login_guard.state.open_file(login_guard.lock_name))  # creates the state dir as the guard does
    with open(login_guard.path, 'w') as handle:
        handle.write(text)
    os.chmod(login_guard.path, 0o600)


def failure(at, credentials=None, outcome='rejected'):
    return dict(at=at, credentials=credentials, outcome=outcome)


# ------------------------------------------------------------ the rules

def test_a_rejection_refuses_the_same_credentials_for_the_window(state, clock):
    reject(guard(state, clock))
    clock.now += 60
    message = refusal(guard(state, clock))
    assert 'Keystone rejected these credentials (user alice of contract ct0001, project id p1, this password) ' \
           '60 seconds ago on this host' in message
    assert 'Correct the credentials: a different password or project is tried at once; or wait until 00:32 UTC' \
           in message  # the rejection at 00:16:40 expires at 00:31:40
    clock.now += WINDOW - 60
    assert login(guard(state, clock), 'accepted')


@pytest.mark.parametrize('corrected', [dict(password='Corrected-Passw0rd'), dict(scope='project id p2'),
                                       dict(scope='project demo of domain ct0001')])
def test_corrected_credentials_are_tried_at_once(state, clock, corrected):
    reject(guard(state, clock))
    assert login(guard(state, clock, **corrected), 'accepted')
    refusal(guard(state, clock))  # the rejected ones stay refused


def test_never_more_than_three_failed_logins_of_an_account_whatever_the_passwords(state, clock):
    for index in range(3):
        reject(guard(state, clock, password='wrong-%d' % index))
        clock.now += 10
    for password in ('wrong-3', PASSWORD):  # not even the right one: it cannot be told from a wrong one
        message = refusal(guard(state, clock, password=password))
        assert '3 logins of user alice of contract ct0001 failed or got no answer within the last 15 minutes' in message
        assert 'no login of the account is tried from this host until 00:32 UTC' in message
    clock.now += WINDOW - 30  # the first rejection has expired, the others not
    assert login(guard(state, clock, password=PASSWORD), 'accepted')
    reject(guard(state, clock, password='wrong-4'))  # two within the window: one more may fail
    assert 'failed or got no answer' in refusal(guard(state, clock, password='wrong-5'))


def test_an_acceptance_does_not_erase_the_rejections(state, clock):
    reject(guard(state, clock, password='wrong-1'))
    reject(guard(state, clock, password='wrong-2'))
    assert login(guard(state, clock), 'accepted')
    reject(guard(state, clock, password='wrong-3'))
    assert 'failed or got no answer' in refusal(guard(state, clock))
    assert len(read_record(guard(state))['failures']) == 3


def test_a_rejection_is_recorded_when_the_caller_raises_its_error_after_reporting_it(state, clock):
    reject(guard(state, clock))
    assert [entry['outcome'] for entry in read_record(guard(state))['failures']] == ['rejected']


@pytest.mark.parametrize('failure_kind, counted', [(SERVER_ERROR, True), (LOST_REPLY, True), (NOT_SENT, False)])
def test_a_lost_answer_counts_towards_the_limit_but_does_not_block_the_credentials(state, clock, failure_kind, counted):
    with pytest.raises(K5MailError):
        with guard(state, clock).attempt():
            raise K5MailError('Keystone authentication', 'no answer', failure=failure_kind)
    assert len(read_record(guard(state))['failures']) == (1 if counted else 0)
    assert login(guard(state, clock), 'accepted')


def test_every_spelling_of_the_keystone_url_is_one_account(state, clock):
    reject(guard(state, clock))
    for spelling in ('https://IDENTITY.example.com:443/v3/', 'https://identity.example.com', 'https://identity.example.com/'):
        refusal(guard(state, clock, auth_url=spelling))


@pytest.mark.parametrize('other', [dict(username='bob'), dict(domain='ct0002'), dict(auth_url='https://identity2.example.com/v3')])
def test_other_accounts_are_not_refused(state, clock, other):
    for index in range(3):
        reject(guard(state, clock, password='wrong-%d' % index))
    assert login(guard(state, clock, **other), 'accepted')


def test_the_record_holds_only_a_keyed_fingerprint_and_every_file_is_private(state, clock, tmp_path):
    login_guard = guard(state, clock)
    reject(login_guard)
    text = open(login_guard.path).read()
    plain = hashlib.sha256(PASSWORD.encode('utf-8')).hexdigest()
    assert PASSWORD not in text and plain not in text
    fingerprint = read_record(login_guard)['failures'][0]['credentials']
    assert len(fingerprint) == 64
    for name in os.listdir(state):
        assert os.stat(os.path.join(state, name)).st_mode & 0o777 == 0o600, name
    assert os.stat(state).st_mode & 0o777 == 0o700
    assert len(open(os.path.join(state, KEY_NAME)).read().strip()) == 64
    # Another state directory has another key: the fingerprint is not a function of the password alone.
    other = guard(str(tmp_path / 'other'), clock)
    reject(other)
    assert read_record(other)['failures'][0]['credentials'] != fingerprint


def test_the_key_is_created_once(state, clock):
    reject(guard(state, clock))
    key = open(os.path.join(state, KEY_NAME)).read()
    refusal(guard(state, clock))
    assert open(os.path.join(state, KEY_NAME)).read() == key


# ------------------------------------------------------------ records from a crash, a clock or an attacker

def test_a_rejection_dated_in_the_future_counts_from_now_and_expires(state, clock):
    login_guard = guard(state, clock)
    fingerprint = login_guard._fingerprint()
    write_record(login_guard, json.dumps(dict(version=1, failures=[failure(clock.now + 10 * WINDOW, fingerprint)])))
    assert '0 seconds ago' in refusal(login_guard)
    assert read_record(login_guard)['failures'][0]['at'] == clock.now  # clamped on disk, so it expires
    clock.now += WINDOW
    assert login(guard(state, clock), 'accepted')


@pytest.mark.parametrize('text', [
    '{"version": 1, "failures": [{"at": NaN, "credentials": null, "outcome": "rejected"}]}',
    '{"version": 1, "failures": [{"at": Infinity, "credentials": null, "outcome": "rejected"}]}',
    '{"version": 1, "failures": [{"at": 1e400, "credentials": null, "outcome": "rejected"}]}',
    '{"version": 1, "failures": [{"at": "yesterday", "credentials": null, "outcome": "rejected"}]}',
    '{"version": 1, "failures": [{"at": 1000, "credentials": "x", "outcome": "rejected"}]}',
    '{"version": 1, "failures": [{"at": 1000, "credentials": null, "outcome": "forgiven"}]}',
    '{"version": 1, "failures": [{"at": 1000, "credentials": null, "outco',
    '{"version": 1, "failures": {}}',
    'rejected nan',
    '\x00\xff garbage',
    '',
])
def test_a_corrupt_record_uses_the_window_up_with_a_clear_message_and_expires(state, clock, text):
    login_guard = guard(state, clock)
    write_record(login_guard, text)
    message = refusal(login_guard)
    assert 'the login record %s could not be read (' % login_guard.path in message
    assert 'it is replaced by one that counts the lockout window as used up' in message
    assert 'Wait until 00:32 UTC' in message
    assert 'failed or got no answer' in refusal(guard(state, clock, password='other'))
    clock.now += WINDOW
    assert login(guard(state, clock), 'accepted')


def test_a_corrupt_key_is_a_clear_error_before_any_login(state, clock):
    login_guard = guard(state, clock)
    os.close(login_guard.state.open_file(KEY_NAME))  # empty, as a crash before the first write would leave it
    assert 'is not a login key of fjcloud.mail (64 hexadecimal digits)' in refusal(login_guard)


def died_in_flight(state):
    """A process that dies with its login in flight: the password is out, the answer never recorded."""
    with guard(state).attempt():
        os._exit(0)


def test_a_login_whose_process_died_in_flight_counts_as_rejected(state, clock):
    clock.now = time.time()
    process = multiprocessing.get_context('fork').Process(target=died_in_flight, args=(state,))
    process.start()
    process.join(timeout=30)
    assert read_record(guard(state))['in_flight'] is not None
    message = refusal(guard(state, clock))
    assert 'a login with these credentials (user alice of contract ct0001, project id p1, this password) ended' in message
    assert 'without a recorded answer' in message
    assert login(guard(state, clock, password='corrected'), 'accepted')
    assert [entry['outcome'] for entry in read_record(guard(state))['failures']] == ['interrupted']


# ------------------------------------------------------------ a record that cannot be written or read

def failing(operation, error, state):
    """os.<operation> failing with ``error`` for the files of ``state`` only."""
    real = getattr(os, operation)

    def fake(*args, **kwargs):
        target = args[0]
        path = os.readlink('/proc/self/fd/%d' % target) if isinstance(target, int) else target
        if path.startswith(state) or 'dir_fd' in kwargs or 'src_dir_fd' in kwargs:
            raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)
    return fake


@pytest.mark.parametrize('operation, error', [('write', errno.ENOSPC), ('fsync', errno.EIO), ('rename', errno.EROFS)])
def test_a_record_that_cannot_be_written_stops_the_login_before_any_request(state, clock, monkeypatch, operation, error):
    reject(guard(state, clock, password='earlier'))
    before = open(guard(state).path).read()
    monkeypatch.setattr(os, operation, failing(operation, error, state))
    message = refusal(guard(state, clock))
    monkeypatch.undo()
    assert 'not tried: the attempt could not be recorded before the login: cannot write %s: %s' % (
        guard(state).path, os.strerror(error)) in message
    assert 'Make room on the filesystem of %s' % state in message
    assert open(guard(state).path).read() == before  # the previous record, whole
    assert [name for name in os.listdir(state) if name.endswith('.tmp')] == []


def test_an_outcome_that_cannot_be_recorded_is_an_error_and_counts_as_rejected(state, clock, monkeypatch):
    login_guard = guard(state, clock)
    with pytest.raises(K5MailError) as info:
        with login_guard.attempt() as outcome:
            monkeypatch.setattr(os, 'write', failing('write', errno.ENOSPC, state))
            outcome.accepted()
    monkeypatch.undo()
    assert 'Keystone answered, but the outcome could not be recorded: cannot write' in str(info.value)
    assert 'the next login with these credentials counts this one as rejected until 00:32 UTC' in str(info.value)
    assert 'without a recorded answer' in refusal(guard(state, clock))


def test_a_rejection_that_cannot_be_recorded_keeps_the_callers_error_and_counts(state, clock, monkeypatch):
    with pytest.raises(K5MailError, match='HTTP 401'):
        with guard(state, clock).attempt() as outcome:
            monkeypatch.setattr(os, 'write', failing('write', errno.ENOSPC, state))
            outcome.rejected()
            raise K5MailError('Keystone authentication', 'Keystone rejected the credentials', status=401)
    monkeypatch.undo()
    refusal(guard(state, clock))


def test_a_record_that_cannot_be_read_is_an_error(state, clock, monkeypatch):
    login_guard = guard(state, clock)
    reject(guard(state, clock, password='earlier'))
    real_read = os.read

    def read(fd, size):
        if os.readlink('/proc/self/fd/%d' % fd) == login_guard.path:
            raise OSError(errno.EIO, 'Input/output error')
        return real_read(fd, size)
    monkeypatch.setattr(os, 'read', read)
    assert 'cannot read %s: Input/output error' % login_guard.path in refusal(login_guard)


def no_locks(fd, operation):
    raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))


def test_a_state_dir_without_locks_is_a_clear_error(state, clock, monkeypatch):
    monkeypatch.setattr(fcntl, 'flock', no_locks)
    with pytest.raises(K5MailError, match='offers no locks') as info:
        with SharedPacer('https://mail.example.com', state_dir=state).slot():
            pass
    assert str(info.value).startswith('Pacing mail API calls failed: cannot lock ')
    message = refusal(guard(state, clock))
    assert 'the filesystem of the state directory offers no locks (ENOLCK' in message
    assert 'Set %s to a directory on a local filesystem' % STATE_DIR_ENV in message


def no_passwd_entry(uid):
    raise KeyError('getpwuid(): uid not found: %d' % uid)


def test_without_a_passwd_entry_the_state_dir_is_under_home_when_home_is_the_users(tmp_path, monkeypatch, clock):
    monkeypatch.delenv(STATE_DIR_ENV)
    monkeypatch.setattr(pwd, 'getpwuid', no_passwd_entry)
    monkeypatch.setenv('HOME', str(tmp_path))
    assert SharedPacer('https://mail.example.com').path.startswith(str(tmp_path / '.ansible' / 'fjcloud.mail') + os.sep)
    assert default_state_dir() == str(tmp_path / '.ansible' / 'fjcloud.mail')
    assert login(guard(None, clock), 'accepted')


@pytest.mark.parametrize('home', [None, 'relative/home', '/nonexistent/home', 'other owner'])
def test_without_a_passwd_entry_nor_a_home_of_the_user_the_error_says_what_to_set(tmp_path, monkeypatch, home):
    monkeypatch.delenv(STATE_DIR_ENV)
    monkeypatch.setattr(pwd, 'getpwuid', no_passwd_entry)
    if home is None:
        monkeypatch.delenv('HOME', raising=False)
    elif home == 'other owner':
        monkeypatch.setenv('HOME', str(tmp_path))
        real_stat = os.stat
        monkeypatch.setattr(os, 'stat', lambda path, *args, **kwargs: os.stat_result(
            (0o40700, 0, 0, 1, os.getuid() + 1, 0, 0, 0, 0, 0)) if path == str(tmp_path) else real_stat(path, *args, **kwargs))
    else:
        monkeypatch.setenv('HOME', home)
    for make in (lambda: SharedPacer('https://mail.example.com'),
                 lambda: LoginGuard(AUTH_URL, 'alice', 'ct0001', password=PASSWORD)):
        with pytest.raises(K5MailError) as info:
            make()
        message = str(info.value)
        assert 'uid %d has no passwd entry, and $HOME (' % os.getuid() in message
        assert 'Set %s to a directory only you can access, on a local filesystem' % STATE_DIR_ENV in message


# ------------------------------------------------------------ concurrency

def hold(login_guard):
    """Another open file description holding the account's lock, as another process would."""
    fd = login_guard.state.open_file(login_guard.lock_name)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_login_waits_for_the_one_in_flight_and_the_wait_is_bounded_by_the_monotonic_clock(state, clock):
    wall = [5000.0]

    def stepping_wall_clock():  # NTP steps the wall clock by ten minutes at every reading
        wall[0] += 600
        return wall[0]

    login_guard = LoginGuard(AUTH_URL, 'alice', 'ct0001', password=PASSWORD, state_dir=state, lock_timeout=3,
                             clock=stepping_wall_clock, sleep=clock.sleep, monotonic=clock)
    fd = hold(login_guard)
    try:
        message = refusal(login_guard)
    finally:
        os.close(fd)
    assert 'other logins of user alice of contract ct0001 on this host held' in message
    assert 'more than 3 seconds (logins of one account run one at a time)' in message
    assert 3 <= sum(clock.sleeps) < 3.2 and len(clock.sleeps) < 100


def test_after_an_acceptance_logins_still_run_one_at_a_time(state, clock):
    login(guard(state, clock), 'accepted')
    login_guard = guard(state, clock, lock_timeout=1)
    fd = hold(login_guard)
    try:
        assert 'held' in refusal(login_guard)
    finally:
        os.close(fd)


def waiting_login(state, password, go, queue):
    """A process that waits for the lock, then reports whether it was let in."""
    go.wait(10)
    try:
        with guard(state, password=password, lock_timeout=10).attempt():
            queue.put('tried')
    except K5MailError as exc:
        queue.put(str(exc))


@pytest.mark.parametrize('password, answer', [(PASSWORD, 'Keystone authentication failed: not tried: Keystone rejected these credentials'),
                                              ('corrected', 'tried')])
def test_a_waiting_login_refuses_as_soon_as_the_same_credentials_are_rejected(state, password, answer):
    context = multiprocessing.get_context('fork')
    go, queue = context.Event(), context.Queue()
    waiter = context.Process(target=waiting_login, args=(state, password, go, queue))
    waiter.start()  # before this process holds the lock, so that it does not inherit it
    with guard(state).attempt() as outcome:
        go.set()
        time.sleep(0.5)
        assert queue.empty()  # it waits for this login's outcome
        outcome.rejected()
    # Refused for the rejection (or let in), not for a wait of 10 seconds that ran out.
    assert queue.get(timeout=10).startswith(answer)
    waiter.join(timeout=10)


def test_a_waiting_login_is_refused_while_the_lock_is_still_held_once_the_rejection_is_recorded(state, clock):
    reject(guard(state, clock))
    waiting = guard(state, clock, lock_timeout=60)
    with open(waiting.path) as handle:
        rejection = handle.read()
    os.unlink(waiting.path)  # back to before the other login's answer
    polls = []

    def poll(seconds):
        clock.sleep(seconds)
        polls.append(seconds)
        if len(polls) == 3:
            write_record(waiting, rejection)  # the other login records its rejection, and still holds the lock

    waiting.sleep = poll
    fd = hold(waiting)
    try:
        message = refusal(waiting)
    finally:
        os.close(fd)
    assert 'Keystone rejected these credentials' in message
    assert len(polls) == 3  # at the next look at the record, not once the 60 seconds ran out


def racing_login(state, password, start, tried_path, queue):
    start.wait(10)
    try:
        with guard(state, password=password, lock_timeout=60).attempt() as outcome:
            with open(tried_path, 'a') as tried:
                tried.write('x')
            time.sleep(0.2)  # Keystone takes its time
            outcome.rejected()
        queue.put('tried')
    except K5MailError as exc:
        queue.put(str(exc))


def race(state, tmp_path, passwords):
    context = multiprocessing.get_context('fork')
    start, queue, tried_path = context.Event(), context.Queue(), str(tmp_path / 'tried')
    processes = [context.Process(target=racing_login, args=(state, password, start, tried_path, queue))
                 for password in passwords]
    for process in processes:
        process.start()
    start.set()
    answers = [queue.get(timeout=60) for _process in processes]
    for process in processes:
        process.join(timeout=10)
    return answers, open(tried_path).read() if os.path.exists(tried_path) else ''


def test_of_many_processes_started_at_once_with_one_wrong_password_exactly_one_tries(state, tmp_path):
    answers, tried = race(state, tmp_path, [PASSWORD] * 20)
    assert tried == 'x' and answers.count('tried') == 1
    assert all('not tried: Keystone rejected these credentials' in answer for answer in answers if answer != 'tried'), answers


def test_of_many_processes_with_different_wrong_passwords_at_most_three_try(state, tmp_path):
    answers, tried = race(state, tmp_path, ['wrong-%d' % index for index in range(10)])
    assert tried == 'xxx' and answers.count('tried') == 3
    assert all('failed or got no answer' in answer for answer in answers if answer != 'tried'), answers
