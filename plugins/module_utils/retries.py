# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

When a failed call is repeated, and the one loop that repeats it.

Every call of the collection is one of three kinds, and ``should_retry`` is
the only place that decides, from the kind and what the failure says about
the request (the ``failure`` of the K5MailError), whether a repeat is safe.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import (
    K5MailError,
    LOST_REPLY,
    NOT_PROCESSED,
    NOT_SENT,
    SERVER_ERROR,
)

BACKOFF_BASE = 1.0
BACKOFF_MAX = 20.0

# The kinds of call.
IDEMPOTENT = 'idempotent'  # reads, and writes whose repeat answers "already done" (create gets 409)
SEND = 'send'              # sending a mail: each accepted request is one more message
LOGIN = 'login'            # a Keystone password check: each one counts towards the account lockout


def should_retry(kind, error):
    """The retry decision: may a call of ``kind`` that failed with ``error`` be repeated?"""
    if error.failure in (NOT_SENT, NOT_PROCESSED):
        # The service cannot have acted: a repeat is safe for every kind, even a login or a send.
        return True
    if kind == IDEMPOTENT:
        # A lost or cut-short reply, or a 5xx: a repeat has the same effect as one call.
        return error.failure in (LOST_REPLY, SERVER_ERROR)
    # A login may have counted towards the lockout (a rejected password, 401, is FINAL anyway),
    # and a send may have been accepted: never repeated on anything else.
    return False


def may_have_acted(error):
    """Whether the service may have processed the request that failed with ``error``."""
    return error.failure in (LOST_REPLY, SERVER_ERROR)


class Backoff:
    """Exponential backoff with jitter, bounded by ``retries`` extra attempts."""

    def __init__(self, retries, base=BACKOFF_BASE, maximum=BACKOFF_MAX, rng=None):
        self.retries = retries
        self.base = base
        self.maximum = maximum
        self.rng = rng or random.random

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        cap = min(self.maximum, self.base * (2 ** attempt))
        # Equal jitter: never zero, so a throttled caller really slows down.
        delay = cap / 2 + self.rng() * cap / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.maximum))
        return delay


class Outcome:
    """What came of a call repeated by ``run_with_retries``."""

    def __init__(self, result, attempts, earlier_attempt_may_have_acted):
        self.result = result
        self.attempts = attempts
        # An earlier attempt failed after the service may have acted on it: a "409 already
        # exists" now may answer our own earlier request.
        self.earlier_attempt_may_have_acted = earlier_attempt_may_have_acted


def run_with_retries(kind, attempt, backoff, sleep):
    """Call ``attempt()`` until it returns, or until ``should_retry`` or the backoff says stop.

    Return an Outcome. The K5MailError that stops the loop leaves with its
    ``attempts`` set, and is never repeated by an outer loop: a login run
    inside a mail API call has already been decided on.
    """
    maybe_acted = False
    tries = 0
    waited = 0.0
    while True:
        tries += 1
        try:
            return Outcome(attempt(), tries, maybe_acted)
        except K5MailError as error:
            if error.decided:
                raise
            delay = None
            if tries <= backoff.retries and should_retry(kind, error):
                delay = backoff.delay(tries - 1, error.retry_after)
                if error.retry_within is not None:
                    # A failure worth repeating only briefly (a refused connection): no longer wait in all.
                    delay = min(delay, error.retry_within - waited)
            if delay is None or delay <= 0:
                error.attempts, error.decided = tries, True
                raise
            maybe_acted = maybe_acted or may_have_acted(error)
            sleep(delay)
            waited += delay
