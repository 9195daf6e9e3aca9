# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The one way the collection makes an HTTP request: ``Transport.post``.

It never follows a redirect (that would resend the password or the token
elsewhere), reads at most ``max_reply_bytes`` of a reply, and turns every
exception of the HTTP layer (requests, urllib3, URL and timeout handling) into
a K5MailError whose ``failure`` tells the retry decision what happened to the
request.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket

from urllib.parse import urlsplit

try:
    import requests
    from requests.structures import CaseInsensitiveDict
    from urllib3 import exceptions as urllib3_exceptions
    from urllib3.exceptions import HTTPError as Urllib3Error, NewConnectionError
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    import traceback
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import (
    K5MailError,
    LOST_REPLY,
    NOT_SENT,
    REDACTED,
    bounded_text,
    userinfo_secrets,
    without_userinfo,
)

# The largest legitimate reply (GetSendStatistics: two weeks of 15-minute buckets,
# about 1344 members) is a few hundred KiB, a Keystone catalog rarely more.
MAX_REPLY_BYTES = 4 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024
# A refused connection is repeated only within this many seconds of waiting in all: a
# service that is down stays down for longer, and the user should hear it soon.
REFUSED_RETRY_SECONDS = 4.0
# The service's URLs in a region: the one place they are written (connection.py fills in the region; the
# fjcloud.mail.k5 doc fragment repeats them as text, and a unit test checks that it agrees).
DEFAULT_ENDPOINT = 'https://mail.{region}.cloud.global.fujitsu.com'
DEFAULT_AUTH_URL = 'https://identity.{region}.cloud.global.fujitsu.com/v3'
# What each URL option defaults to, as messages show it.
DEFAULT_URLS = {
    'endpoint': DEFAULT_ENDPOINT.format(region='<region_name>'),
    'auth_url': DEFAULT_AUTH_URL.format(region='<region_name>'),
}


class HttpReply:
    """A whole reply, read within the size limit."""

    def __init__(self, status_code, headers, content, reason=''):
        self.status_code = status_code
        self.headers = CaseInsensitiveDict(headers or {})
        self.content = content
        self.reason = reason or ''


class Transport:
    """Posts requests of one module run through one HTTP session."""

    def __init__(self, session, timeout, verify, max_reply_bytes=MAX_REPLY_BYTES):
        self.session = session
        self.timeout = timeout
        self.verify = verify
        self.max_reply_bytes = max_reply_bytes

    def post(self, action, url, data, headers, url_option='endpoint'):
        """POST once; return an HttpReply, or raise K5MailError (never another exception).

        ``url_option`` names the option the URL comes from (endpoint or auth_url), for the hints.
        """
        shown = without_userinfo(url)
        try:
            reply = self.session.post(url, data=data, headers=headers, timeout=self.timeout, verify=self.verify,
                                      allow_redirects=False, stream=True)
        except requests.exceptions.SSLError as exc:
            raise tls_error(action, url, exc)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise network_error(action, url, exc, url_option)
        except (requests.exceptions.RequestException, Urllib3Error, ValueError, OverflowError) as exc:
            # A URL or a timeout the HTTP layer cannot use: nothing was sent, and a repeat fails alike.
            raise K5MailError(action, 'the request to %s could not be made: %s' % (shown, short_reason(exc, url)),
                              hint='Check %s' % url_option)
        try:
            if 300 <= reply.status_code < 400:
                raise redirect_error(action, reply.status_code, reply.headers.get('Location'), shown)
            content = self._read(action, url, reply, url_option)
            return HttpReply(reply.status_code, reply.headers, content, reply.reason)
        finally:
            reply.close()

    def _read(self, action, url, reply, url_option):
        limit = self.max_reply_bytes
        if _content_length(reply.headers) > limit:
            raise too_large_error(action, reply.status_code, limit, url, url_option)
        chunks, size = [], 0
        try:
            for chunk in reply.iter_content(_CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise too_large_error(action, reply.status_code, limit, url, url_option)
                chunks.append(chunk)
        except (requests.exceptions.RequestException, Urllib3Error, OSError) as exc:
            timeout = _is_timeout(exc)
            kind = 'timed out reading the reply' if timeout else 'the reply was cut short'
            raise K5MailError(action, '%s: %s (%s)' % (kind, without_userinfo(url), short_reason(exc, url)),
                              status=reply.status_code,
                              failure=LOST_REPLY, hint=_slow_hint() if timeout else _path_hint())
        return b''.join(chunks)


def retry_after(headers):
    """Seconds the Retry-After header of a reply asks to wait (delta-seconds only), or None."""
    value = headers.get('retry-after')
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _content_length(headers):
    try:
        return int(headers.get('Content-Length') or 0)
    except (TypeError, ValueError):
        return 0


def _is_timeout(exc):
    return isinstance(exc, requests.exceptions.Timeout) or 'timed out' in str(exc).lower()


def too_large_error(action, status, limit, url, url_option):
    return K5MailError(action, 'the reply is larger than %d MiB, far more than any reply of the service; not read further'
                       % (limit // (1024 * 1024)), status=status, url=url,
                       hint='Check that %s is the URL of the service and not of another server' % url_option)


def redirect_error(action, status, location, url):
    return K5MailError(
        action, 'the server at %s answered with a redirect to %s; redirects are never followed, so that the password '
        'and the token go nowhere else' % (url, safe_location(location) or 'nowhere (no Location header)'),
        status=status, hint='Give the URL the service really answers at in endpoint or auth.auth_url')


def safe_location(location):
    """A Location header fit for a message: no user info, query or fragment, no control characters, bounded."""
    if not location:
        return None
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname or ''
        port = ':%d' % parts.port if parts.port else ''
    except ValueError:
        return '(an unreadable URL)'
    if ':' in host:
        host = '[%s]' % host
    text = '%s://%s%s%s' % (parts.scheme, host, port, parts.path) if parts.netloc else parts.path
    text = re.sub(r'[\x00-\x20\x7f]', '', text)
    return text[:200] + ('...' if len(text) > 200 else '')


def tls_error(action, url, exc):
    return K5MailError(action, 'TLS handshake with %s failed: %s' % (without_userinfo(url), short_reason(exc, url)),
                       hint='Check ca_cert (a CA bundle that signs the server certificate) or validate_certs')


def network_error(action, url, exc, url_option='endpoint'):
    reason = short_reason(exc, url)
    url = without_userinfo(url)
    if name_not_resolved(exc):
        # Not retried: a name that does not resolve now will not resolve in a few seconds either,
        # and it is nearly always a typo in region_name or in the URL.
        return K5MailError(
            action, 'the host name of %s does not resolve (%s)' % (url, reason),
            hint='Check region_name and %s (the default %s is built from region_name); not retried'
                 % (url_option, DEFAULT_URLS.get(url_option, url_option)))
    if isinstance(exc, requests.exceptions.Timeout):
        return K5MailError(action, 'timed out: %s (%s)' % (url, reason),
                           failure=NOT_SENT if nothing_sent(exc) else LOST_REPLY, hint=_slow_hint())
    if nothing_sent(exc):
        # Refused (or unreachable) at once: repeated within a few seconds only.
        return K5MailError(action, 'cannot connect: %s (%s)' % (url, reason), failure=NOT_SENT,
                           retry_within=REFUSED_RETRY_SECONDS,
                           hint='Check %s and that the service is reachable from this host (proxy, firewall)' % url_option)
    return K5MailError(action, 'cannot connect: %s (%s)' % (url, reason), failure=LOST_REPLY,
                       hint=_path_hint())


def _slow_hint():
    return 'Raise api_timeout if the service is slow, or check the network path to it'


def _path_hint():
    return 'The connection broke during the reply: check the network path to the service (proxy, firewall)'


def _causes(exc):
    """``exc`` and the exceptions it wraps (reason, first argument, cause, context), at most 20."""
    seen, pending = [], [exc]
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is other for other in seen):
            continue
        seen.append(current)
        pending.extend((getattr(current, 'reason', None), current.args[0] if current.args else None,
                        current.__cause__, current.__context__))
    return seen


def name_not_resolved(exc):
    """True when the connection failed because the host name does not resolve."""
    resolution_error = getattr(urllib3_exceptions, 'NameResolutionError', None)  # urllib3 2.x
    return any(isinstance(cause, socket.gaierror) or (resolution_error and isinstance(cause, resolution_error))
               for cause in _causes(exc))


def nothing_sent(exc):
    """True when the connection failed before a request could be sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], 'reason', None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def short_reason(exc, url=None):
    """The innermost cause of a requests/urllib3 exception, without object reprs (nor the user info of ``url``)."""
    seen = 0
    while seen < 10:
        seen += 1
        inner = getattr(exc, 'reason', None)
        if not isinstance(inner, Exception) and exc.args and isinstance(exc.args[0], Exception):
            inner = exc.args[0]
        if not isinstance(inner, Exception):
            break
        exc = inner
    text = re.sub(r'<[^<>]*object at 0x[0-9a-f]+>:?\s*', '', str(exc)) or type(exc).__name__
    for secret in sorted(userinfo_secrets(url or ''), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return bounded_text(text)
