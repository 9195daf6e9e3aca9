# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pacing: the service accepts one request per second per contract, for every action."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import hashlib
import math
import os
import tempfile
import time

# The service accepts one request per second per contract, for every action.
MIN_REQUEST_INTERVAL = 1.0


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
    """Paces every client on this host that talks to the same endpoint.

    Each task of a play is a new process, and forks run in parallel: without
    a shared record, back-to-back tasks would meet the service's limit. A
    locked file holds the end time of the last call; holding the lock during
    the call also serialises concurrent processes. Falls back to pacing
    within the process when the file cannot be used.
    """

    def __init__(self, endpoint, interval=MIN_REQUEST_INTERVAL, directory=None, clock=None, sleep=None):
        super(SharedPacer, self).__init__(interval, clock=clock or time.time, sleep=sleep)
        digest = hashlib.sha256(endpoint.encode('utf-8')).hexdigest()[:16]
        self.path = os.path.join(directory or tempfile.gettempdir(), 'fjcloud-mail-pace-%d-%s' % (os.getuid(), digest))
        self._fd = None

    def _acquire(self):
        try:
            # O_NOFOLLOW: the directory is shared, never follow a planted link.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            self._close()

    def _release(self):
        self._close()

    def _close(self):
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def _read_last(self):
        if self._fd is None:
            return self._last
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            last = float(os.read(self._fd, 64).decode('ascii').strip() or 'nan')
        except (OSError, ValueError, UnicodeDecodeError):
            return self._last
        if math.isnan(last) or last > self.clock() + 60:  # a clock that went back: ignore
            return self._last
        return last

    def _write_last(self, value):
        self._last = value
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, ('%.6f' % value).encode('ascii'))
        except OSError:
            pass
