# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection for tests (``POST /_emulator/faults``).

A fault spec (JSON object, every key optional)::

    {"service": "mail",      # or "keystone"
     "action": null,         # only requests of this action (mail: the Action parameter;
                             # keystone: authenticate, validate_token, revoke_token, versions)
     "count": 1,             # how many matching requests get the fault
     "status": 500,          # HTTP status of the faulty reply (default 500 when "body" is given)
     "body": "error",        # error | html | garbage | empty | truncated | oversized
     "size": null,           # body "oversized": bytes streamed (chunked), default 8 MiB, at most 1 GiB
     "location": null,       # a redirect: the Location header (status defaults to 307)
     "delay": 0,             # seconds to sleep before replying
     "drop": false,          # close the connection without any reply
     "after": false,         # process the request normally first (state changes happen), then fault the reply
     "code": null, "message": null, "type": null}   # override the ErrorResponse of body "error"

With only ``delay``, the request is handled normally after the delay.
``body: "error"`` is the service's proper error for that status: an ErrorResponse
(``Receiver``/``InternalFailure`` for 5xx), an empty body for 401 and
``AccessDeniedException`` for 403 on the mail API; a Keystone JSON error on Keystone.
``truncated`` announces the full Content-Length, sends half the body and closes
the connection; with ``after`` and no ``status`` it truncates the real reply.
``oversized`` streams ``size`` bytes of an XML reply in chunks (status default 200),
for clients that must stop reading. ``location`` makes the reply a redirect
(empty body, ``Location`` header; status default 307, it must be a 3xx).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading

from .keystone import keystone_error
from .mailapi import status_reply
from .replies import Reply

BODY_KINDS = ('error', 'html', 'garbage', 'empty', 'truncated', 'oversized')
DEFAULT_OVERSIZED = 8 * 1024 * 1024
MAX_OVERSIZED = 1024 * 1024 * 1024
SERVICES = ('mail', 'keystone')

_HTML = ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>{status} Error</title>\n'
         '</head><body>\n<h1>{status} Error</h1>\n<p>The proxy server could not handle the request.</p>\n'
         '</body></html>\n')
_GARBAGE = {
    'mail': b'<?xml version="1.0" encoding="UTF-8"?>\n<Respo\x00\xff\xfense><<&&& not <well> formed',
    'keystone': b'{"token": {"expires_at": \x00\xff\xfe garbage',
}


@dataclasses.dataclass
class Fault:
    """One queued fault."""

    id: int
    service: str = 'mail'
    action: str = None
    count: int = 1
    status: int = None
    body: str = None
    delay: float = 0.0
    drop: bool = False
    after: bool = False
    code: str = None
    message: str = None
    type: str = None
    size: int = None
    location: str = None

    @property
    def replaces_reply(self):
        """Whether the fault changes the reply (else it is only a delay)."""
        return self.drop or self.status is not None or self.body is not None or self.location is not None

    def as_dict(self):
        """Return the fault as a JSON-ready dict."""
        return dataclasses.asdict(self)


def parse_fault(spec, fault_id):
    """Validate a fault spec; return a :class:`Fault` or raise ValueError."""
    if not isinstance(spec, dict):
        raise ValueError('a fault must be a JSON object')
    known = {f.name for f in dataclasses.fields(Fault)} - {'id'}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError('unknown fault key(s): %s' % ', '.join(unknown))
    fault = Fault(id=fault_id, **{k: v for k, v in spec.items() if v is not None})
    if fault.service not in SERVICES:
        raise ValueError('service must be one of %s' % ', '.join(SERVICES))
    if fault.action is not None and not isinstance(fault.action, str):
        raise ValueError('action must be a string')
    if isinstance(fault.count, bool) or not isinstance(fault.count, int) or fault.count < 1:
        raise ValueError('count must be an integer >= 1')
    if fault.status is not None and (isinstance(fault.status, bool) or not isinstance(fault.status, int) or not 100 <= fault.status <= 599):
        raise ValueError('status must be an HTTP status code')
    if fault.body is not None and fault.body not in BODY_KINDS:
        raise ValueError('body must be one of %s' % ', '.join(BODY_KINDS))
    if isinstance(fault.delay, bool) or not isinstance(fault.delay, (int, float)) or not 0 <= fault.delay <= 300:
        raise ValueError('delay must be a number of seconds between 0 and 300')
    for name in ('drop', 'after'):
        if not isinstance(getattr(fault, name), bool):
            raise ValueError('%s must be true or false' % name)
    for name in ('code', 'message', 'type', 'location'):
        if getattr(fault, name) is not None and not isinstance(getattr(fault, name), str):
            raise ValueError('%s must be a string' % name)
    if fault.size is not None and (fault.body != 'oversized' or isinstance(fault.size, bool)
                                   or not isinstance(fault.size, int) or not 1 <= fault.size <= MAX_OVERSIZED):
        raise ValueError('size goes with body "oversized" and is a number of bytes from 1 to %d' % MAX_OVERSIZED)
    if fault.location is not None:
        if fault.body is not None:
            raise ValueError('location (a redirect) has no body')
        fault.status = 307 if fault.status is None else fault.status
        if not 300 <= fault.status <= 399:
            raise ValueError('a redirect (location) has a 3xx status')
    if fault.body == 'oversized':
        fault.status = 200 if fault.status is None else fault.status
        fault.size = fault.size or DEFAULT_OVERSIZED
    if fault.body is not None and fault.status is None and not (fault.body == 'truncated' and fault.after):
        fault.status = 500
    if fault.body is None and fault.status is not None:
        fault.body = 'error'
    return fault


class FaultQueue:
    """Thread-safe FIFO of faults."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self._ids = itertools.count(1)

    def add(self, spec):
        """Queue a fault from its spec; return it as a dict (raise ValueError if invalid)."""
        fault = parse_fault(spec, next(self._ids))
        with self._lock:
            self._faults.append(fault)
        return fault.as_dict()

    def take(self, service, action):
        """Return (and count down) the first fault matching this request, or None."""
        with self._lock:
            for fault in self._faults:
                if fault.service == service and (fault.action is None or fault.action == action):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return dataclasses.replace(fault)
        return None

    def pending(self):
        """Return the queued faults as dicts."""
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def clear(self):
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()


def fault_reply(fault, service, request_id, namespace, real=None):
    """Build the faulty reply; ``real`` is the normally computed reply (for ``after``)."""
    if fault.drop:
        reply = Reply(0, request_id=None)
        reply.drop = True
        return reply
    if fault.body == 'truncated' and fault.status is None and real is not None:
        real.truncate = True
        return real
    if fault.location is not None:
        return Reply(fault.status, b'', headers=[('Location', fault.location)])
    if fault.body == 'oversized':
        reply = Reply(fault.status, b'', 'application/xml', request_id=None)
        reply.stream_size = fault.size
        return reply
    status = fault.status or 500
    kind = fault.body or 'error'
    if kind in ('error', 'truncated'):
        if service == 'keystone':
            reply = keystone_error(status, fault.message or 'An unexpected error prevented the server from fulfilling your request.')
        else:
            reply = status_reply(status, request_id, namespace, fault.code, fault.message, fault.type)
        reply.truncate = kind == 'truncated'
        return reply
    if kind == 'html':
        return Reply(status, _HTML.format(status=status), 'text/html; charset=iso-8859-1')
    # garbage and empty come from the service itself, so they carry its request id;
    # the html page stands for a proxy in front of it, which knows none.
    headers = [] if service == 'keystone' else [('x-fj-request-id', request_id)]
    rid = None if service == 'keystone' else request_id
    if kind == 'garbage':
        return Reply(status, _GARBAGE[service], 'application/json' if service == 'keystone' else 'application/xml',
                     headers=headers, request_id=rid)
    return Reply(status, b'', headers=headers, request_id=rid)
