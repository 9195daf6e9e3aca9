# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The one error every call of the collection raises: what was asked, what came back."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# What a failure says about the request, for the retry decision (retries.should_retry).
FINAL = 'final'                  # a repeat would get the same answer: a 4xx, a redirect, TLS, bad input
NOT_SENT = 'not sent'            # the connection failed before the request went out
NOT_PROCESSED = 'not processed'  # the server answered that it did not process it (throttling, busy)
LOST_REPLY = 'lost reply'        # the request went out, no complete reply came back (timeout, reset, cut short)
SERVER_ERROR = 'server error'    # a 5xx: the service may have acted before it failed

# Text from the service (an error message, a page title) is cut at this length: a
# misbehaving server must not turn one error into megabytes of output.
MAX_SERVICE_TEXT = 300
REDACTED = '********'


class K5MailError(Exception):
    """A failed call: what was asked, what the service (or the network) answered."""

    def __init__(self, action, reason, status=None, code=None, error_type=None,
                 request_id=None, failure=FINAL, attempts=1, hint=None, retry_after=None, url=None,
                 retry_within=None):
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
        self.url = without_userinfo(url) if url else None  # where the reply came from
        # Seconds of waiting within which the retry loop may repeat the call (None: the backoff decides).
        self.retry_within = retry_within
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
        if self.url:
            text += ' from %s' % self.url
        if self.attempts > 1:
            text += ' after %d attempts' % self.attempts
        if self.hint:
            # A reason may end with its own full stop (or the "..." of a cut text): never "..".
            text += ('' if text.endswith('.') else '.') + ' ' + self.hint
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
            url=self.url,
        )


def bounded_text(text, limit=MAX_SERVICE_TEXT):
    """Text from the service fit for a message: one line, no control characters, at most ``limit`` characters."""
    text = re.sub(r'[\x00-\x1f\x7f]', ' ', str(text))
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit] + '...'


def _userinfo_span(url):
    """Start and end of what stands between ``//`` and the last ``@`` of ``url``, or None.

    Found without parsing, so that it works on URLs that no parser accepts (a bad
    port, a broken IPv6 bracket). A password may hold ``/``, ``?``, ``#`` or ``@``:
    everything up to the last ``@`` counts, at the cost of hiding the host of the
    rare URL whose path holds an ``@``.
    """
    at = url.rfind('@')
    if at < 0:
        return None
    slashes = url.find('//')
    start = slashes + 2 if 0 <= slashes < at else 0
    return start, at


def without_userinfo(url):
    """``url`` with its user name and password (``user:password@``) replaced by ``********``."""
    url = str(url)
    span = _userinfo_span(url)
    if span is None:
        return url
    return url[:span[0]] + REDACTED + url[span[1]:]


def userinfo_secrets(url):
    """The secret parts of the user info of ``url`` (parsed or not): to be masked wherever they appear."""
    span = _userinfo_span(str(url))
    if span is None:
        return set()
    userinfo = str(url)[span[0]:span[1]]
    user, colon, password = userinfo.partition(':')
    # With a password the user name is no secret; a lone user part (https://TOKEN@host) may be one.
    return set(part for part in (userinfo, password if colon else user) if part)
