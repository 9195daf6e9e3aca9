# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error every call of the collection raises: what was asked, what came back."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

class K5MailError(Exception):
    """A failed call: what was asked, what the service (or the network) answered."""

    def __init__(self, action, reason, status=None, code=None, error_type=None,
                 request_id=None, retryable=False, attempts=1, hint=None):
        super(K5MailError, self).__init__(reason)
        self.action = action
        self.reason = reason
        self.status = status
        self.code = code
        self.error_type = error_type
        self.request_id = request_id
        self.retryable = retryable
        self.attempts = attempts
        self.hint = hint

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
