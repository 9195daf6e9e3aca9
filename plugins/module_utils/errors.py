# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error every call of the collection raises: what was asked, what came back."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# What a failure says about the request, for the retry decision (retries.should_retry).
FINAL = 'final'                  # a repeat would get the same answer: a 4xx, a redirect, TLS, bad input
NOT_SENT = 'not sent'            # the connection failed before the request went out
NOT_PROCESSED = 'not processed'  # the server answered that it did not process it (throttling, busy)
LOST_REPLY = 'lost reply'        # the request went out, no complete reply came back (timeout, reset, cut short)
SERVER_ERROR = 'server error'    # a 5xx: the service may have acted before it failed


class K5MailError(Exception):
    """A failed call: what was asked, what the service (or the network) answered."""

    def __init__(self, action, reason, status=None, code=None, error_type=None,
                 request_id=None, failure=FINAL, attempts=1, hint=None, retry_after=None):
        super(K5MailError, self).__init__(reason)
        self.action = action
        self.reason = reason
        self.status = status
        self.code = code
        self.error_type = error_type
        self.request_id = request_id
        self.failure = failure
        self.attempts = attempts
        self.hint = hint
        self.retry_after = retry_after  # seconds the server asked to wait (Retry-After)
        self.decided = False  # a retry loop has already given up on it

    def __str__(self):
        text = '%s failed: ' % self.action
        if self.status is not None:
            text += 'HTTP %d ' % self.status
        if self.code:
            text += '%s: ' % self.code
        text += self.reason
        if self.request_id:
            text += ' (request id %s)' % self.request_id
        if self.attempts > 1:
            text += ' after %d attempts' % self.attempts
        if self.hint:
            text += '. %s' % self.hint
        return text

    def to_result(self):
        """The keys a module adds to its failure result."""
        return dict(
            action=self.action,
            status=self.status,
            error_code=self.code,
            error_type=self.error_type,
            request_id=self.request_id,
            attempts=self.attempts,
        )
