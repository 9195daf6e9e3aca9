# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client of the K5 / FJcloud-O Email Delivery Service query API.

Every module of the collection talks to the service through ``K5MailClient``:
it authenticates with Keystone (or uses a given token), posts form-encoded
actions to the mail endpoint, paces calls to the service's one request per
second, retries what is safe to retry, parses the XML replies by local name
and turns every failure into one ``K5MailError``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import hashlib
import json
import math
import os
import random
import re
import tempfile
import time
import traceback

try:
    import requests
    from requests.structures import CaseInsensitiveDict
    from urllib3.exceptions import NewConnectionError
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

try:
    from lxml import etree
    HAS_LXML = True
    LXML_IMPORT_ERROR = None
except ImportError:
    HAS_LXML = False
    LXML_IMPORT_ERROR = traceback.format_exc()


USER_AGENT = 'FGCP-OS-API-CLIENT'
API_VERSION = 'v1.0'
# The service accepts one request per second per contract, for every action.
MIN_REQUEST_INTERVAL = 1.0
BACKOFF_BASE = 1.0
BACKOFF_MAX = 20.0

# No throttling reply is published; the error page only lists "service use
# limit exceeded" among the causes of a 400. Recognise the usual wordings.
_THROTTLING_PATTERN = re.compile(
    r'throttl|limit\s*(?:is\s+|was\s+|has\s+been\s+)?exceed|exceed\w*\s+(?:the\s+)?(?:\w+\s+){0,3}limit'
    r'|too\s*many\s*requests|rate\s*exceed|request\s*limit|slow\s*down',
    re.IGNORECASE)


_DAILY_QUOTA_PATTERN = re.compile(r'daily\s+(?:message\s+|sending\s+)?quota|24[\s-]*hours?\s+(?:send\w*\s+)?quota', re.IGNORECASE)


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


# ---------------------------------------------------------------------------
# XML
# ---------------------------------------------------------------------------

def _parser():
    # No DTD, no entity expansion, no network: the reply is data, never a program.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True,
                           remove_pis=True)


def parse_xml(body):
    """Parse a reply body; raise ValueError with a short reason when it is not XML."""
    if isinstance(body, str):
        body = body.encode('utf-8')
    body = body.lstrip()
    if not body:
        raise ValueError('empty body')
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 may report several errors on several lines: keep one line.
        raise ValueError('not well-formed XML (%s)' % ' '.join(str(exc).split()))
    if root is None:
        raise ValueError('no XML document')
    return root


def local_name(element):
    tag = element.tag
    if not isinstance(tag, str):
        return None
    return etree.QName(tag).localname


def find(root, *path):
    """First element reached by walking ``path`` down from ``root``, matching local names at any depth."""
    node = root
    for name in path:
        if node is None:
            return None
        found = None
        for element in node.iter():
            if element is not node and local_name(element) == name:
                found = element
                break
        node = found
    return node


def find_all(root, *path):
    """Every element named ``path[-1]`` under the element reached by ``path[:-1]``."""
    parent = find(root, *path[:-1]) if len(path) > 1 else root
    if parent is None:
        return []
    return [element for element in parent.iter() if element is not parent and local_name(element) == path[-1]]


def text_of(element):
    if element is None or element.text is None:
        return None
    return element.text.strip()


def find_text(root, *path):
    if root is None:
        return None
    return text_of(find(root, *path))


def _html_title(body):
    match = re.search(br'<title[^>]*>([^<]{1,120})', body or b'', re.IGNORECASE)
    if match:
        return ' '.join(match.group(1).decode('utf-8', 'replace').split())
    return None


def _not_xml(headers, body, exc):
    """Describe a body that is not XML without echoing it: it may hold part of a secret."""
    title = _html_title(body)
    return 'the reply is not XML (%s, %d bytes%s): %s' % (
        headers.get('content-type') or 'no Content-Type', len(body), ', title "%s"' % title if title else '', exc)


class Response:
    """A reply the caller accepted: a 200, or one of the statuses it asked to receive."""

    def __init__(self, action, status, root, request_id):
        self.action = action
        self.status = status
        self.root = root
        self.request_id = request_id

    def text(self, *path):
        return find_text(self.root, *path)

    def require_text(self, *path):
        value = self.text(*path)
        if not value:
            raise K5MailError(self.action, 'the reply lacks %s' % '/'.join(path),
                              status=self.status, request_id=self.request_id)
        return value


def throttling_reply(status, code, message):
    """True for a reply that a later repeat may get past (not the daily quota, which lasts hours)."""
    if _DAILY_QUOTA_PATTERN.search(message or ''):
        return False
    if status == 429:
        return True
    if status not in (400, 503):
        return False
    return bool(_THROTTLING_PATTERN.search('%s %s' % (code or '', message or '')))


def error_from_reply(action, status, headers, body):
    """Build the K5MailError for a non-accepted reply."""
    headers = CaseInsensitiveDict(headers)
    request_id = (headers.get('x-fj-request-id') or '').strip() or None
    code = error_type = message = None
    root = None
    try:
        root = parse_xml(body) if body and body.strip() else None
    except ValueError as exc:
        message = _not_xml(headers, body, exc)
    if root is not None:
        name = local_name(root)
        if name == 'ErrorResponse' or find(root, 'Error') is not None:
            code = find_text(root, 'Error', 'Code')
            error_type = find_text(root, 'Error', 'Type')
            message = find_text(root, 'Error', 'Message')
        else:
            error_type = name
            message = find_text(root, 'Message')
        request_id = request_id or find_text(root, 'RequestId')
    if message is None:
        message = {
            401: 'authentication rejected: the token is missing, invalid or expired',
            403: 'access denied',
            404: 'not found',
        }.get(status, 'no error details in the reply')
    retryable = status >= 500 or throttling_reply(status, code, message)
    return K5MailError(action, message, status=status, code=code, error_type=error_type,
                       request_id=request_id, retryable=retryable)


# ---------------------------------------------------------------------------
# Pacing and retries
# ---------------------------------------------------------------------------

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


def _retry_after(headers):
    value = headers.get('retry-after')
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Keystone
# ---------------------------------------------------------------------------

class Token:
    """A Keystone token and what came with it."""

    def __init__(self, value, expires_at=None, catalog=None):
        self.value = value
        self.expires_at = expires_at
        self.catalog = catalog or []

    def endpoint(self, service_type, region=None):
        """The public URL of ``service_type`` in ``region`` from the catalog, or None."""
        for service in self.catalog:
            if not isinstance(service, dict) or service.get('type') != service_type:
                continue
            for endpoint in service.get('endpoints') or []:
                if endpoint.get('interface', 'public') != 'public':
                    continue
                if region and endpoint.get('region') not in (None, region) and endpoint.get('region_id') != region:
                    continue
                if endpoint.get('url'):
                    return endpoint['url']
        return None


class KeystonePassword:
    """Keystone v3 password authentication, scoped to a project.

    A rejected password is never retried: five failures within 15 minutes
    lock the K5 account for 15 minutes.
    """

    ACTION = 'Keystone authentication'

    def __init__(self, auth_url, username, password, user_domain_name,
                 project_id=None, project_name=None, project_domain_name=None):
        self.auth_url = auth_url.rstrip('/')
        if not self.auth_url.endswith('/v3'):
            self.auth_url += '/v3'
        self.username = username
        self.password = password
        self.user_domain_name = user_domain_name
        self.project_id = project_id
        self.project_name = project_name
        self.project_domain_name = project_domain_name or user_domain_name

    def request_body(self):
        if self.project_id:
            project = {'id': self.project_id}
        else:
            project = {'name': self.project_name, 'domain': {'name': self.project_domain_name}}
        return {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'domain': {'name': self.user_domain_name},
                'name': self.username,
                'password': self.password,
            }}},
            'scope': {'project': project},
        }}

    def describe(self):
        return 'user %s of contract %s' % (self.username, self.user_domain_name)

    def authenticate(self, transport, backoff):
        """Return a Token. Retries only failures that cannot be a password check."""
        url = self.auth_url + '/auth/tokens'
        attempt = 0
        while True:
            retry_after = None
            try:
                reply = transport.post(url, data=json.dumps(self.request_body()),
                                       headers={'Content-Type': 'application/json', 'Accept': 'application/json'})
            except requests.exceptions.SSLError as exc:
                raise _tls_error(self.ACTION, url, exc)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                # Retry only when the request never reached Keystone: a repeated
                # password check could count twice towards the lockout.
                error = _network_error(self.ACTION, url, exc, retryable=_nothing_sent(exc))
            else:
                if reply.status_code == 201:
                    return self._token_from(reply, url)
                error = self._error_from(reply)
                retry_after = _retry_after(reply.headers)
            if not error.retryable or attempt >= backoff.retries:
                error.attempts = attempt + 1
                raise error
            transport.sleep(backoff.delay(attempt, retry_after))
            attempt += 1

    def _token_from(self, reply, url):
        token = _clean_token(reply.headers.get('X-Subject-Token'))  # requests matches header names in any case
        if not token:
            raise K5MailError(self.ACTION, 'Keystone at %s answered 201 without an X-Subject-Token header' % url,
                              status=201)
        try:
            body = reply.json().get('token') or {}
        except (ValueError, AttributeError):
            body = {}
        return Token(token, body.get('expires_at'), body.get('catalog') or [])

    def _error_from(self, reply):
        status = reply.status_code
        detail = None
        try:
            detail = reply.json().get('error', {}).get('message')
        except (ValueError, AttributeError):
            detail = _html_title(reply.content)
        if status == 401:
            return K5MailError(
                self.ACTION, 'Keystone rejected the credentials of %s%s' % (self.describe(), ': %s' % detail if detail else ''),
                status=status, hint='Not retried: five failed logins within 15 minutes lock the account for 15 minutes')
        retryable = status >= 500 or status == 429
        return K5MailError(self.ACTION, 'Keystone answered %s%s' % (
            reply.reason or 'an error', ': %s' % detail if detail else ''), status=status, retryable=retryable)


def _tls_error(action, url, exc):
    return K5MailError(action, 'TLS handshake with %s failed: %s' % (url, _short(exc)),
                       hint='Check ca_cert (a CA bundle that signs the server certificate) or validate_certs')


def _network_error(action, url, exc, retryable):
    kind = 'timed out' if isinstance(exc, requests.exceptions.Timeout) else 'cannot connect'
    return K5MailError(action, '%s: %s (%s)' % (kind, url, _short(exc)), retryable=retryable)


def _nothing_sent(exc):
    """True when the connection failed before a request could be sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], 'reason', None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _short(exc):
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


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------

class K5MailClient:
    """One client per module run: one HTTP session, one pacer, one token."""

    def __init__(self, endpoint, token=None, keystone=None, validate_certs=True, ca_cert=None,
                 timeout=30, retries=5, session=None, pacer=None, backoff=None, sleep=None):
        if not token and keystone is None:
            raise ValueError('a token or Keystone credentials are required')
        self.endpoint = endpoint.rstrip('/') + '/'
        self.token = _clean_token(token)
        self.keystone = keystone
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()
        self.session.headers['User-Agent'] = USER_AGENT
        # Passed with every request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self.verify = (ca_cert or True) if validate_certs else False
        self.sleep = sleep or time.sleep
        self.pacer = pacer or SharedPacer(self.endpoint, sleep=self.sleep)
        self.backoff = backoff or Backoff(retries)
        self.token_expires_at = None

    # The transport interface KeystonePassword uses.
    def post(self, url, data, headers):
        return self.session.post(url, data=data, headers=headers, timeout=self.timeout, verify=self.verify)

    def authenticate(self):
        """Get a token with the Keystone password; return the Token."""
        token = self.keystone.authenticate(self, self.backoff)
        self.token, self.token_expires_at = token.value, token.expires_at
        return token

    def call(self, action, params=None, accept=(), idempotent=True):
        """Run ``action``; return a Response for 200 and the statuses in ``accept``, raise K5MailError otherwise.

        A call that is not ``idempotent`` (sending a mail) is repeated only when the service cannot
        have acted on it: a throttling reply, or a connection that failed before anything was sent.
        """
        if not self.token:
            self.authenticate()
        form = [('Action', action), ('Version', API_VERSION)] + sorted((params or {}).items())
        reauthenticated = False
        attempt = 0
        while True:
            retry_after = None
            error = None
            with self.pacer.slot():
                try:
                    reply = self.session.post(self.endpoint, data=form, timeout=self.timeout, verify=self.verify, headers={
                        'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
                        'X-Auth-Token': self.token,
                    })
                except requests.exceptions.SSLError as exc:
                    raise _tls_error(action, self.endpoint, exc)
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                    # Safe to repeat an idempotent call: creating twice answers 409, which means present.
                    error = _network_error(action, self.endpoint, exc, retryable=idempotent or _nothing_sent(exc))
            if error is None:
                status = reply.status_code
                if status == 200 or status in accept:
                    return self._accepted(action, reply)
                if status == 401 and self.keystone is not None and not reauthenticated:
                    # The token expired: get a new one once and repeat the call once.
                    reauthenticated = True
                    self.authenticate()
                    continue
                error = error_from_reply(action, status, reply.headers, reply.content)
                if not idempotent and not throttling_reply(status, error.code, error.reason):
                    # A 5xx may come after the service acted: never repeat a send on it.
                    error.retryable = False
                if status == 401 and self.keystone is None:
                    error.hint = 'Give a fresh auth_token, or auth (Keystone password) so the module can get one'
                retry_after = _retry_after(reply.headers)
            if not error.retryable or attempt >= self.backoff.retries:
                error.attempts = attempt + 1
                raise error
            self.sleep(self.backoff.delay(attempt, retry_after))
            attempt += 1

    @staticmethod
    def _accepted(action, reply):
        request_id = (reply.headers.get('x-fj-request-id') or '').strip() or None
        root = None
        if reply.content and reply.content.strip():
            try:
                root = parse_xml(reply.content)
            except ValueError as exc:
                raise K5MailError(action, _not_xml(reply.headers, reply.content, exc), status=reply.status_code,
                                  request_id=request_id)
        if root is not None:
            request_id = request_id or find_text(root, 'RequestId')
        return Response(action, reply.status_code, root, request_id)


def _clean_token(token):
    if not token:
        return None
    return token.replace('\r', '').replace('\n', '').strip() or None
