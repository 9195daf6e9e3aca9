# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Keystone v3 subset: password authentication with project scope, tokens, lockout."""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import secrets
import threading
import time

from .replies import Reply, json_reply
from .util import iso_utc, new_request_id

LOG = logging.getLogger('k5emu.keystone')

_TITLES = {400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
           500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout'}
AUTH_REQUIRED = 'The request you have made requires authentication.'


@dataclasses.dataclass
class TokenInfo:
    """An issued token: ``issued_at``/``expires_at`` (epoch) are shown, ``valid_until`` (monotonic) decides."""

    token: str = dataclasses.field(repr=False)
    user: object
    project: object
    issued_at: float
    expires_at: float
    audit_id: str
    valid_until: float = 0.0


def keystone_request_id():
    """Return a Keystone-style request id."""
    return 'req-' + new_request_id()


def keystone_error(status, message, request_id=None, title=None):
    """Return a Keystone-style JSON error reply."""
    request_id = request_id or keystone_request_id()
    body = {'error': {'code': status, 'title': title or _TITLES.get(status, 'Error'), 'message': message}}
    reply = json_reply(status, body, headers=[('x-openstack-request-id', request_id)], request_id=request_id)
    if status == 401:
        reply.headers.append(('WWW-Authenticate', 'Keystone uri="%s"' % 'v3'))
    return reply


def _get(doc, *path):
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


class Identity:
    """Users, tokens and lockouts. Thread-safe.

    Token lifetimes, failure windows and lockouts are timed with the monotonic clock, so that a
    step of the wall clock (NTP) neither expires tokens nor ends or stretches a lockout; the wall
    clock only gives the times that are shown (``issued_at``, ``expires_at``).
    """

    def __init__(self, directory, settings):
        self.directory = directory
        self.settings = settings
        self.public_url = 'https://127.0.0.1'
        self._lock = threading.Lock()
        self._tokens = {}
        self._failures = {}
        self._locked_until = {}

    # ----------------------------------------------------------------- tokens
    def validate(self, token):
        """Return the :class:`TokenInfo` of a valid, unexpired token, else None."""
        if not token:
            return None
        with self._lock:
            info = self._tokens.get(token)
        if info is None or time.monotonic() >= info.valid_until:
            return None
        return info

    def revoke(self, token):
        """Forget a token; return whether it was known."""
        with self._lock:
            return self._tokens.pop(token, None) is not None

    def expire_all(self):
        """Make every issued token expired; return how many there were."""
        now, wall = time.monotonic(), time.time()
        with self._lock:
            for info in self._tokens.values():
                info.valid_until = min(info.valid_until, now - 0.001)
                info.expires_at = min(info.expires_at, wall - 0.001)
            return len(self._tokens)

    def reset(self):
        """Forget every token, failure count and lockout."""
        with self._lock:
            self._tokens.clear()
            self._failures.clear()
            self._locked_until.clear()

    def _issue(self, user, project):
        now, wall = time.monotonic(), time.time()
        ttl = float(self.settings.token_ttl)
        info = TokenInfo(
            token='gAAAAA' + secrets.token_urlsafe(96),
            user=user,
            project=project,
            issued_at=wall,
            expires_at=wall + ttl,
            audit_id=secrets.token_urlsafe(16),
            valid_until=now + ttl,
        )
        with self._lock:
            if len(self._tokens) > 2000:
                for key in [k for k, v in self._tokens.items() if v.valid_until < now - 3600]:
                    del self._tokens[key]
            self._tokens[info.token] = info
        return info

    def token_body(self, info):
        """Return the JSON body describing a token."""
        user, project = info.user, info.project
        region = self.directory.region
        domain = {'id': user.domain_id, 'name': user.contract}
        return {'token': {
            'methods': ['password'],
            'audit_ids': [info.audit_id],
            'issued_at': iso_utc(info.issued_at),
            'expires_at': iso_utc(info.expires_at),
            'is_domain': False,
            'user': {'id': user.id, 'name': user.name, 'domain': domain, 'password_expires_at': None},
            'project': {'id': project.id, 'name': project.name, 'domain': {'id': project.domain_id, 'name': project.contract}},
            'roles': [{'id': '9fe2ff9ee4384b1894a90878d3e92bab', 'name': '_member_'}],
            'catalog': [
                {'type': 'mail', 'name': 'mail', 'id': 'b2f6d0c1e4a94a6f9d0c5e3a7f1b2c3d', 'endpoints': [
                    {'id': '0f3b1c2d4e5f40718293a4b5c6d7e8f9', 'interface': 'public', 'region': region, 'region_id': region,
                     'url': self.public_url},
                ]},
                {'type': 'identity', 'name': 'keystone', 'id': '5a0c6d0e3b1f4e2a9c8d7b6a5f4e3d2c', 'endpoints': [
                    {'id': '1e2d3c4b5a6978877665544332211000', 'interface': 'public', 'region': region, 'region_id': region,
                     'url': self.public_url + '/v3'},
                ]},
            ],
        }}

    def _token_reply(self, status, info, request_id):
        header = 'x-subject-token' if self.settings.token_header_case == 'lower' else 'X-Subject-Token'
        return json_reply(status, self.token_body(info), request_id=request_id,
                          headers=[(header, info.token), ('x-openstack-request-id', request_id)])

    # ---------------------------------------------------------------- lockout
    def _is_locked(self, key, now):
        with self._lock:
            until = self._locked_until.get(key)
            if until is None:
                return False
            if now < until:
                return True
            del self._locked_until[key]
            return False

    def _record_failure(self, key, now):
        settings = self.settings
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < settings.lockout_window]
            recent.append(now)
            if settings.lockout_attempts and len(recent) >= settings.lockout_attempts:
                self._locked_until[key] = now + settings.lockout_duration
                self._failures.pop(key, None)
                return True
            self._failures[key] = recent
            return False

    def _clear_failures(self, key):
        with self._lock:
            self._failures.pop(key, None)

    # --------------------------------------------------------------- handlers
    def authenticate(self, body):
        """Handle ``POST /v3/auth/tokens``; return a :class:`Reply`."""
        request_id = keystone_request_id()
        info = {'action': 'authenticate', 'user': None, 'project_id': None}
        try:
            doc = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            reply = keystone_error(400, 'Malformed request body: not JSON.', request_id)
            reply.info = info
            return reply
        if not isinstance(doc, dict):
            reply = keystone_error(400, 'Malformed request body: expected a JSON object.', request_id)
            reply.info = info
            return reply
        reply = self._authenticate(doc, request_id, info)
        reply.info = info
        return reply

    def _authenticate(self, doc, request_id, info):
        methods = _get(doc, 'auth', 'identity', 'methods')
        pw_user = _get(doc, 'auth', 'identity', 'password', 'user')
        if not isinstance(methods, list) or 'password' not in methods or not isinstance(pw_user, dict):
            LOG.info('authentication refused: no password method in the request')
            return keystone_error(401, AUTH_REQUIRED, request_id)
        name, password = pw_user.get('name'), pw_user.get('password')
        user_id = pw_user.get('id')
        domain_name, domain_id = _get(pw_user, 'domain', 'name'), _get(pw_user, 'domain', 'id')
        info['user'] = name if isinstance(name, str) else None
        if not isinstance(password, str) or not (isinstance(user_id, str) or (isinstance(name, str) and (domain_name or domain_id))):
            LOG.info('authentication refused: user name, domain or password missing')
            return keystone_error(401, AUTH_REQUIRED, request_id)
        user = self.directory.find_user(domain_name=domain_name, domain_id=domain_id, name=name, user_id=user_id)
        if user is None:
            LOG.info('authentication refused: unknown user %r in domain %r', name or user_id, domain_name or domain_id)
            return keystone_error(401, AUTH_REQUIRED, request_id)
        info['user'] = user.name
        key = (user.contract, user.name)
        now = time.monotonic()
        if self._is_locked(key, now):
            LOG.info('authentication refused: user %s of %s is locked out', user.name, user.contract)
            return keystone_error(401, 'The account is locked for user: %s.' % user.id, request_id)
        if not hmac.compare_digest(password.encode('utf-8'), user.password.encode('utf-8')):
            locked = self._record_failure(key, now)
            LOG.info('authentication refused: wrong password for user %s of %s%s', user.name, user.contract,
                     ' (now locked out)' if locked else '')
            return keystone_error(401, AUTH_REQUIRED, request_id)
        self._clear_failures(key)
        scope = _get(doc, 'auth', 'scope', 'project')
        if not isinstance(scope, dict):
            LOG.info('authentication refused: the emulator requires a project scope')
            return keystone_error(401, AUTH_REQUIRED, request_id)
        if isinstance(scope.get('id'), str):
            project = self.directory.find_project(project_id=scope['id'])
        elif isinstance(scope.get('name'), str):
            project = self.directory.find_project(name=scope['name'], domain_name=_get(scope, 'domain', 'name'),
                                                  domain_id=_get(scope, 'domain', 'id'))
        else:
            project = None
        if project is None or project.id not in user.project_ids:
            LOG.info('authentication refused: user %s has no role on the requested project', user.name)
            return keystone_error(401, AUTH_REQUIRED, request_id)
        info['project_id'] = project.id
        token = self._issue(user, project)
        LOG.info('issued a token to %s of %s for project %s', user.name, user.contract, project.id)
        return self._token_reply(201, token, request_id)

    def handle_token_request(self, method, headers):
        """Handle ``GET``/``HEAD``/``DELETE /v3/auth/tokens`` (validate or revoke ``X-Subject-Token``)."""
        request_id = keystone_request_id()
        caller = self.validate((headers.get('X-Auth-Token') or '').strip())
        action = 'revoke_token' if method == 'DELETE' else 'validate_token'
        if caller is None:
            reply = keystone_error(401, AUTH_REQUIRED, request_id)
        else:
            subject_token = (headers.get('X-Subject-Token') or '').strip()
            subject = self.validate(subject_token)
            if subject is None:
                reply = keystone_error(404, 'Could not find token.', request_id)
            elif method == 'DELETE':
                self.revoke(subject_token)
                reply = Reply(204, headers=[('x-openstack-request-id', request_id)], request_id=request_id)
            else:
                reply = self._token_reply(200, subject, request_id)
        reply.info = {'action': action, 'user': caller.user.name if caller else None,
                      'project_id': caller.project.id if caller else None}
        return reply


def versions_reply(public_url):
    """Return the ``GET /v3`` version document."""
    reply = json_reply(200, {'version': {
        'id': 'v3.8', 'status': 'stable', 'updated': '2017-02-22T00:00:00Z',
        'links': [{'rel': 'self', 'href': public_url + '/v3/'}],
        'media-types': [{'base': 'application/json', 'type': 'application/vnd.openstack.identity-v3+json'}],
    }})
    reply.info = {'action': 'versions'}
    return reply
