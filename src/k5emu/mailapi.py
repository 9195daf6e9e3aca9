# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail API core: ``POST /`` with a form body, authentication, rate limit, dispatch.

Order of the checks of a request:

1. ``X-Auth-Token`` names a valid, unexpired, project-scoped token, else 401 (empty body);
2. the token's user, project and contract have mail access, else 403 ``AccessDeniedException``;
3. rate limit per contract (``min_interval``), else 400 ``Throttling`` (the clock is not reset);
   from here on the request counts as accepted;
4. ``Content-Type``, ``User-Agent``, ``Action``, ``Version``, else 400;
5. the action's handler from :data:`k5emu.actions.ACTIONS`.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from urllib.parse import parse_qsl

from . import DEFAULT_NAMESPACE, USER_AGENT
from .actions import ACTIONS, KNOWN_ACTIONS, ApiError
from .replies import Reply, xml_document
from .util import new_request_id

LOG = logging.getLogger('k5emu.mail')

FORM_TYPE = 'application/x-www-form-urlencoded'
XML_TYPE = 'application/xml'
REQUEST_ID_HEADER = 'x-fj-request-id'


def error_reply(status, code, message, request_id, namespace=None, error_type=None):
    """Return an ``ErrorResponse`` reply; it always has a namespace (the default one if none is given)."""
    error_type = error_type or ('Receiver' if status >= 500 else 'Sender')
    body = xml_document('ErrorResponse', [
        ('Error', [('Type', error_type), ('Code', code), ('Message', message)]),
        ('RequestId', request_id),
    ], namespace or DEFAULT_NAMESPACE)
    reply = Reply(status, body, XML_TYPE, headers=[(REQUEST_ID_HEADER, request_id)], request_id=request_id)
    reply.error_code = code
    return reply


def unauthorized_reply(request_id):
    """Return the 401 reply (no body)."""
    return Reply(401, b'', headers=[(REQUEST_ID_HEADER, request_id)], request_id=request_id)


def access_denied_reply(request_id):
    """Return the 403 ``AccessDeniedException`` reply."""
    body = b'<AccessDeniedException><Message>Access Denied</Message></AccessDeniedException>'
    return Reply(403, body, XML_TYPE, headers=[(REQUEST_ID_HEADER, request_id)], request_id=request_id)


def status_reply(status, request_id, namespace=None, code=None, message=None, error_type=None):
    """Return the proper reply for an error status: empty for 401, AccessDenied for 403, else ErrorResponse."""
    if status == 401 and code is None:
        return unauthorized_reply(request_id)
    if status == 403 and code is None:
        return access_denied_reply(request_id)
    defaults = {400: 'InvalidParameterValue', 404: 'NotFound', 409: 'AlreadyExists', 503: 'ServiceUnavailable'}
    if code is None:
        code = defaults.get(status, 'InternalFailure' if status >= 500 else 'InvalidParameterValue')
    if message is None:
        message = 'An internal error occurred.' if status >= 500 else 'The request was rejected.'
    return error_reply(status, code, message, request_id, namespace, error_type)


def success_reply(action, result, request_id, namespace):
    """Return the ``{Action}Response`` document."""
    body = xml_document(action + 'Response', [
        (action + 'Result', result or None),
        ('ResponseMetadata', [('RequestId', request_id)]),
    ], namespace)
    return Reply(200, body, XML_TYPE, headers=[(REQUEST_ID_HEADER, request_id)], request_id=request_id)


def _split_content_type(value):
    parts = [p.strip() for p in (value or '').split(';')]
    params = {}
    for part in parts[1:]:
        key, dummy, val = part.partition('=')
        params[key.strip().lower()] = val.strip().strip('"')
    return parts[0].lower(), params


def peek_action(body):
    """Return the ``Action`` of a form body, or None (for logs and fault filters)."""
    try:
        for key, value in parse_qsl(body.decode('utf-8', 'replace'), keep_blank_values=True):
            if key == 'Action':
                return value
    except ValueError:
        return None
    return None


class Throttle:
    """Per-contract minimum interval between accepted requests."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = {}

    def try_accept(self, key, interval):
        """Accept the request (and restart the clock) or refuse it (clock unchanged)."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if interval > 0 and last is not None and now - last < interval:
                return False
            self._last[key] = now
            return True

    def reset(self):
        """Forget every clock."""
        with self._lock:
            self._last.clear()


class MailApi:
    """Handles ``POST /`` of the mail service."""

    def __init__(self, identity, state, settings, messages=None):
        self.identity = identity
        self.state = state
        self.settings = settings
        self.messages = messages
        self.throttle = Throttle()

    def reset(self):
        """Forget the rate limit clocks."""
        self.throttle.reset()

    def handle(self, method, headers, body, request_id=None):
        """Handle one request; return a :class:`Reply` whose ``info`` names action, user and project."""
        request_id = request_id or new_request_id()
        info = {'action': peek_action(body), 'user': None, 'project_id': None}
        reply = self._handle(method, headers, body, request_id, info)
        reply.info = info
        return reply

    def _handle(self, method, headers, body, request_id, info):
        settings = self.settings
        token = self.identity.validate((headers.get('X-Auth-Token') or '').strip())
        if token is None or token.project is None:
            return unauthorized_reply(request_id)
        info['user'], info['project_id'] = token.user.name, token.project.id
        if not (token.user.mail_access and token.project.mail_access):
            return access_denied_reply(request_id)
        if not self.throttle.try_accept(token.project.id, float(settings.min_interval)):
            return error_reply(400, 'Throttling', 'Service use limit exceeded.', request_id, settings.xml_namespace, 'Sender')
        try:
            action, params = self._parse(method, headers, body)
            handler = ACTIONS.get(action)
            if handler is None:
                detail = ' (not implemented by the emulator)' if action in KNOWN_ACTIONS else ''
                raise ApiError(400, 'InvalidAction', 'The action %s is not valid for this web service%s.' % (action, detail))
            with self.state.transaction(token.project.id, self.messages, settings) as contract:
                result = handler(contract, params)
        except ApiError as exc:
            return error_reply(exc.status, exc.code, exc.message, request_id, settings.xml_namespace, exc.error_type)
        return success_reply(action, result, request_id, settings.xml_namespace)

    def _parse(self, method, headers, body):
        if method != 'POST':
            raise ApiError(400, 'InvalidHttpRequest', 'Only POST is supported.')
        media_type, ct_params = _split_content_type(headers.get('Content-Type'))
        if media_type != FORM_TYPE:
            raise ApiError(400, 'InvalidParameterValue', 'Content-Type must be %s.' % FORM_TYPE)
        if self.settings.user_agent_check and (headers.get('User-Agent') or '').strip() != USER_AGENT:
            raise ApiError(400, 'InvalidParameterValue', 'User-Agent must be %s.' % USER_AGENT)
        charset = ct_params.get('charset') or 'utf-8'
        try:
            codecs.lookup(charset)
            text = body.decode(charset)
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors='strict')
        except (LookupError, UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, 'MalformedQueryString', 'The request body is not a valid form: %s' % exc) from exc
        params = {}
        for key, value in pairs:
            if key in params:
                raise ApiError(400, 'InvalidParameterValue', 'The parameter %s is given more than once.' % key)
            params[key] = value
        action = params.pop('Action', None)
        if not action:
            raise ApiError(400, 'MissingAction', 'The request must contain the parameter Action.')
        version = params.pop('Version', None)
        if version is not None and version != 'v1.0':
            raise ApiError(400, 'InvalidParameterValue', 'Version must be v1.0.')
        return action, params
