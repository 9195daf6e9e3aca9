# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning exceptions of the HTTP layer (requests, urllib3) into K5MailError."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    import requests
    from urllib3.exceptions import NewConnectionError
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    import traceback
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError


def tls_error(action, url, exc):
    return K5MailError(action, 'TLS handshake with %s failed: %s' % (url, short_reason(exc)),
                       hint='Check ca_cert (a CA bundle that signs the server certificate) or validate_certs')


def network_error(action, url, exc, retryable):
    kind = 'timed out' if isinstance(exc, requests.exceptions.Timeout) else 'cannot connect'
    return K5MailError(action, '%s: %s (%s)' % (kind, url, short_reason(exc)), retryable=retryable)


def nothing_sent(exc):
    """True when the connection failed before a request could be sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], 'reason', None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def short_reason(exc):
    """The innermost cause of a requests/urllib3 exception, without object reprs."""
    seen = 0
    while seen < 10:
        seen += 1
        inner = getattr(exc, 'reason', None)
        if not isinstance(inner, Exception) and exc.args and isinstance(exc.args[0], Exception):
            inner = exc.args[0]
        if not isinstance(inner, Exception):
            break
        exc = inner
    return re.sub(r'<[^<>]*object at 0x[0-9a-f]+>:?\s*', '', str(exc))[:300]


def clean_token(token):
    if not token:
        return None
    return token.replace('\r', '').replace('\n', '').strip() or None
