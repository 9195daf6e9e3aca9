# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Pacing: the service accepts one request per second per contract, for every action."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import hashlib
import math
import os
import time

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import (
    StateDir,
    normalised_url,
    read_record,
    write_record,
)

# The service accepts one request per second per contract, for every action.
MIN_REQUEST_INTERVAL = 1.0
# Bounds the wait behind the other calls of this user (each holds the lock about a second).
LOCK_TIMEOUT = 120
ACTION = 'Pacing mail API calls'


class Pacer:
    """Keeps consecutive calls of one client at least ``interval`` seconds apart."""

    def __init__(self, interval=MIN_REQUEST_INTERVAL, clock=None, sleep=None):
        self.interval = interval
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self._last = None

    @contextlib.contextmanager
    def slot(self):
        """Wait for the next free slot, make the call inside, and record when it ended."""
        self._acquire()
        try:
            last = self._read_last()
            if last is not None:
                remaining = last + self.interval - self.clock()
                if remaining > 0:
                    self.sleep(remaining)
            yield
        finally:
            try:
                self._write_last(self.clock())
            finally:
                self._release()

    def _acquire(self):
        pass

    def _release(self):
        pass

    def _read_last(self):
        return self._last

    def _write_last(self, value):
        self._last = value


class SharedPacer(Pacer):
    """Paces every client of the user on this host that talks to the same endpoint.

    Each task of a play is a new process, and forks run in parallel: without
    a shared record, back-to-back tasks would meet the service's limit. A
    locked file in the private state directory holds the end time of the last
    call; holding the lock during the call also serialises concurrent
    processes. Every spelling of the endpoint shares one file, whatever TMPDIR
    is. The wait for the lock is bounded and ends in a K5MailError.
    """

    def __init__(self, endpoint, interval=MIN_REQUEST_INTERVAL, state_dir=None, clock=None, sleep=None,
                 lock_timeout=LOCK_TIMEOUT, monotonic=None):
        # Recorded times are wall-clock times (shared by processes); the lock wait is timed
        # with the monotonic clock, which a clock step cannot stretch or cut short.
        super(SharedPacer, self).__init__(interval, clock=clock or time.time, sleep=sleep)
        self.monotonic = monotonic or time.monotonic
        self.endpoint = normalised_url(endpoint)
        self.lock_timeout = lock_timeout
        self.state = StateDir(ACTION, state_dir)
        self.name = 'pace-%s' % hashlib.sha256(self.endpoint.encode('utf-8')).hexdigest()[:32]
        self.path = os.path.join(self.state.path, self.name)
        self._fd = None

    def _acquire(self):
        self._fd = self.state.open_file(self.name)
        try:
            locked = self.state.lock(self._fd, self.name, self.lock_timeout, sleep=self.sleep, clock=self.monotonic)
        except K5MailError:
            self._close()
            raise
        if not locked:
            self._close()
            raise K5MailError(
                ACTION, 'not sent: other calls to %s held the pacing lock %s for more than %d seconds' % (
                    self.endpoint, self.path, self.lock_timeout),
                hint='Too many runs of this user call the service at once, or one of them hangs; run again later')

    def _release(self):
        self._close()

    def _close(self):
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def _read_last(self):
        try:
            last = float(read_record(self._fd))
        except ValueError:  # empty or corrupt: only this process's own record
            return self._last
        if math.isnan(last):
            return self._last
        # A time in the future (a clock set back) delays by one interval at most.
        return min(last, self.clock())

    def _write_last(self, value):
        self._last = value
        try:
            write_record(self._fd, '%.6f' % value)
        except OSError:
            pass  # the call is made; a full disk costs the other processes their pacing, not this result
