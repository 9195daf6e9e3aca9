# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""At most one Keystone login after a rejected password, across every process of the user.

Five failed logins within 15 minutes lock a K5 account for 15 minutes. A play
on many hosts runs one module process per host at once: with a wrong password
each would fail once and together they would lock the account. The guard
keeps a record per (auth_url, user, domain) in the private state directory:

* with no recent outcome, the first process logs in holding an exclusive lock
  on the record and the others wait for its outcome;
* after a rejection, every process refuses without a request for the window;
* after an acceptance, logins run in parallel (fleets stay fast).

The record holds only a word and a time: no password, no hash of it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import hashlib
import os
import time

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import (
    StateDir,
    lock_exclusive,
    normalised_url,
    read_record,
    write_record,
)

ACTION = 'Keystone authentication'
LOCKOUT_WINDOW = 900  # five failures within 15 minutes lock the account for 15 minutes
LOCK_TIMEOUT = 120
REJECTED = 'rejected'
ACCEPTED = 'accepted'


class LoginOutcome:
    """What the caller tells the guard about its one login."""

    def __init__(self):
        self.result = None

    def rejected(self):
        """Keystone answered 401 to the password."""
        self.result = REJECTED

    def accepted(self):
        """Keystone answered 201."""
        self.result = ACCEPTED


class LoginGuard:
    """Guards the logins of one (auth_url, username, user_domain_name) on this host."""

    def __init__(self, auth_url, username, user_domain_name, window=LOCKOUT_WINDOW, state_dir=None,
                 clock=None, sleep=None, lock_timeout=LOCK_TIMEOUT):
        self.username = username
        self.user_domain_name = user_domain_name
        self.window = window
        self.clock = clock or time.time
        self.sleep = sleep or time.sleep
        self.lock_timeout = lock_timeout
        self.state = StateDir(ACTION, state_dir)
        self.name = 'login-%s' % login_key(auth_url, username, user_domain_name)
        self.path = os.path.join(self.state.path, self.name)

    @contextlib.contextmanager
    def attempt(self):
        """Allow one login, or raise K5MailError without any request; record the outcome the caller reports."""
        fd = self.state.open_file(self.name)
        try:
            if not self._settled(fd):
                # Nobody logged in lately: log in alone; the others wait for the outcome.
                locked = lock_exclusive(fd, self.lock_timeout, sleep=self.sleep, clock=self.clock,
                                        stop_when=lambda: self._settled(fd))
                # Read again, holding the lock: the login before may have ended just now.
                if not self._settled(fd) and not locked:
                    raise self._lock_timeout_error()
            outcome = LoginOutcome()
            try:
                yield outcome
            finally:
                # Also when the caller raises its error right after reporting the outcome.
                if outcome.result is not None:
                    self._record(fd, outcome.result)
        finally:
            os.close(fd)  # releases the lock

    def _settled(self, fd):
        """True after a recent acceptance; raise after a recent rejection; False when unknown."""
        kind, when = self._read(fd)
        if kind == REJECTED:
            raise self._refusal(when)
        return kind == ACCEPTED

    def _read(self, fd):
        """The recorded outcome within the window and its time, or (None, None)."""
        try:
            kind, text = read_record(fd).split()
            when = float(text)
        except ValueError:  # empty, being written, or corrupt: no outcome
            return None, None
        now = self.clock()
        if kind not in (REJECTED, ACCEPTED) or now - when >= self.window:
            return None, None
        if when > now:  # the clock was set back
            if kind == ACCEPTED:
                return None, None
            # Count the rejection from now, and record that so that it expires. The refusal
            # that follows closes the file, so the lock is not kept.
            when = now
            if lock_exclusive(fd, 0):
                write_record(fd, '%s %.3f' % (kind, now))
        return kind, when

    def _record(self, fd, kind):
        # Even a parallel login (after an acceptance) writes under the lock, so the record
        # stays whole; the others hold it only to write. Should that wait or the write fail,
        # the caller's own result or error matters more than the record.
        if lock_exclusive(fd, self.lock_timeout, sleep=self.sleep, clock=self.clock):
            try:
                write_record(fd, '%s %.3f' % (kind, self.clock()))
            except OSError:
                pass

    def _refusal(self, rejected_at):
        now = self.clock()
        wait = int(rejected_at + self.window - now) + 1
        return K5MailError(
            ACTION,
            'not tried: Keystone rejected the login of user %s of contract %s %d seconds ago on this host, '
            'and every failed login counts towards the lockout (five within 15 minutes lock the account '
            'for 15 minutes)' % (self.username, self.user_domain_name, int(now - rejected_at)),
            hint='Correct the credentials, then delete %s to try at once; otherwise the next login is tried '
                 'in %d seconds (after %s UTC)' % (self.path, wait, _utc(rejected_at + self.window)))

    def _lock_timeout_error(self):
        return K5MailError(
            ACTION,
            'not tried: another login of user %s of contract %s on this host held %s for more than %d seconds, '
            'and its outcome decides whether this one may try' % (
                self.username, self.user_domain_name, self.path, self.lock_timeout),
            hint='Run again once the other run has finished')


def login_key(auth_url, username, user_domain_name):
    """A file-name-safe key of the account: the same for every spelling of the Keystone URL."""
    url = normalised_url(auth_url, keep_path=True)
    if url.endswith('/v3'):
        url = url[:-len('/v3')]
    text = '\n'.join((url, username, user_domain_name))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]


def _utc(timestamp):
    return time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(timestamp))
