# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Admin endpoints for tests under ``/_emulator/`` (not logged, not rate limited).

Every request needs the header ``X-K5emu-Admin-Secret`` with ``admin_secret`` of ``endpoint.json``
(random, new at every start, readable only by the user who runs the emulator): without it or with
another value the answer is 403, whatever the path, and nothing else happens.

=======  =========================  ==========================================================
GET      /_emulator/ping            ``{"ok": true, "pid": N}``
GET      /_emulator/log             request records (see :mod:`k5emu.reqlog`)
DELETE   /_emulator/log             clear the in-memory request log
GET      /_emulator/faults          pending faults
POST     /_emulator/faults          queue a fault (see :mod:`k5emu.faults`); 201 ``{"fault": {...}}``
DELETE   /_emulator/faults          drop all pending faults
POST     /_emulator/reset           clear state, tokens, lockouts, rate limit clocks, faults, log, messages
GET      /_emulator/state           the state (with SMTP passwords)
POST     /_emulator/expire-tokens   make every issued token expired
GET      /_emulator/config          run-time settings
POST     /_emulator/config          change settings, e.g. ``{"min_interval": 0}``
GET      /_emulator/messages        accepted mail, sorted by seq (see :mod:`k5emu.messages`)
DELETE   /_emulator/messages        delete the stored messages; ``{"deleted": N}``
POST     /_emulator/identities      set an identity's status, creating it if absent:
                                    ``{"identity": "a@example.com", "status": "Success", "project_id": optional}``
POST     /_emulator/identities/bulk the same for many: ``{"identities": [...], "status": ..., "project_id": ...}``
POST     /_emulator/send-statistics add a send event for GetSendStatistics: ``{"rejects": 1, "bounces": 0,
                                    "complaints": 0, "delivery_attempts": 0, "time": epoch (default now), "project_id": ...}``
=======  =========================  ==========================================================
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time

from . import ADMIN_SECRET_HEADER, DEFAULT_PROJECT_ID
from .identities import STATUSES, IdentityError, parse_identity, set_status
from .replies import json_reply
from .sending import EVENT_COUNTERS, add_send_event

LOG = logging.getLogger('k5emu.admin')


class Admin:
    """Dispatches admin requests to the application."""

    def __init__(self, app, secret):
        self.app = app
        self._secret = secret.encode('ascii')
        self.routes = {
            ('GET', 'ping'): self.ping,
            ('GET', 'log'): self.get_log,
            ('DELETE', 'log'): self.clear_log,
            ('GET', 'faults'): self.get_faults,
            ('POST', 'faults'): self.add_fault,
            ('DELETE', 'faults'): self.clear_faults,
            ('POST', 'reset'): self.reset,
            ('GET', 'state'): self.get_state,
            ('POST', 'expire-tokens'): self.expire_tokens,
            ('GET', 'config'): self.get_config,
            ('POST', 'config'): self.set_config,
            ('GET', 'messages'): self.get_messages,
            ('DELETE', 'messages'): self.clear_messages,
            ('POST', 'identities'): self.set_identity,
            ('POST', 'identities/bulk'): self.set_identities,
            ('POST', 'send-statistics'): self.add_send_event,
        }

    def authorised(self, headers):
        """Whether the request carries the admin secret (compared in constant time)."""
        given = headers.get(ADMIN_SECRET_HEADER) or ''
        return hmac.compare_digest(given.strip().encode('utf-8', 'replace'), self._secret)

    @staticmethod
    def forbidden():
        """The answer to a request without the admin secret."""
        return json_reply(403, {'error': 'the admin endpoints need the header %s with admin_secret of endpoint.json '
                                         'in the state directory of the emulator' % ADMIN_SECRET_HEADER})

    def handle(self, method, path, body):
        """Handle one admin request whose secret was checked (:meth:`authorised`); return a reply."""
        name = path[len('/_emulator/'):].strip('/') if path.startswith('/_emulator/') else ''
        method = 'GET' if method == 'HEAD' else method
        route = self.routes.get((method, name))
        if route is None:
            if any(key[1] == name for key in self.routes):
                return json_reply(405, {'error': 'method %s not allowed on %s' % (method, path)})
            return json_reply(404, {'error': 'no admin endpoint %s' % path,
                                    'endpoints': sorted('%s /_emulator/%s' % key for key in self.routes)})
        if body.strip():
            try:
                data = json.loads(body.decode('utf-8'))
            except (UnicodeDecodeError, ValueError):
                return json_reply(400, {'error': 'the body must be JSON'})
        else:
            data = {}
        try:
            return route(data)
        except ValueError as exc:
            return json_reply(400, {'error': str(exc)})

    def ping(self, _data):
        """Liveness check."""
        return json_reply(200, {'ok': True, 'pid': os.getpid()})

    def get_log(self, _data):
        """Return the request log."""
        return json_reply(200, self.app.log.records())

    def clear_log(self, _data):
        """Clear the request log."""
        self.app.log.clear()
        return json_reply(200, {'ok': True})

    def get_faults(self, _data):
        """Return the pending faults."""
        return json_reply(200, self.app.faults.pending())

    def add_fault(self, data):
        """Queue a fault."""
        fault = self.app.faults.add(data)
        LOG.info('queued fault %s', json.dumps(fault, sort_keys=True))
        return json_reply(201, {'fault': fault})

    def clear_faults(self, _data):
        """Drop the pending faults."""
        self.app.faults.clear()
        return json_reply(200, {'ok': True})

    def reset(self, _data):
        """Reset everything."""
        self.app.reset()
        return json_reply(200, {'ok': True})

    def get_state(self, _data):
        """Return the state."""
        return json_reply(200, self.app.state.snapshot())

    def expire_tokens(self, _data):
        """Expire every issued token."""
        return json_reply(200, {'expired': self.app.identity.expire_all()})

    def get_config(self, _data):
        """Return the run-time settings."""
        return json_reply(200, self.app.settings.as_dict())

    def set_config(self, data):
        """Change run-time settings."""
        settings = self.app.settings.update(data)
        LOG.info('settings changed: %s', json.dumps(data, sort_keys=True))
        return json_reply(200, settings)

    def get_messages(self, _data):
        """Return the stored messages."""
        return json_reply(200, self.app.messages.list())

    def clear_messages(self, _data):
        """Delete the stored messages."""
        deleted = self.app.messages.clear()
        LOG.info('deleted %d stored message(s)', deleted)
        return json_reply(200, {'deleted': deleted})

    def _project_id(self, data):
        """The ``project_id`` of a request, default the demo project (else the first configured one)."""
        projects = self.app.directory.projects
        project_id = data.get('project_id')
        if project_id is None:
            return DEFAULT_PROJECT_ID if DEFAULT_PROJECT_ID in projects else next(iter(projects))
        if project_id not in projects:
            raise ValueError('unknown project_id %r (known: %s)' % (project_id, ', '.join(sorted(projects))))
        return project_id

    @staticmethod
    def _object(data, allowed):
        if not isinstance(data, dict):
            raise ValueError('expected a JSON object')
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError('unknown key(s) %s (known: %s)' % (', '.join(unknown), ', '.join(allowed)))
        status = data.get('status', 'Success')
        if status not in STATUSES:
            raise ValueError('status must be one of %s' % ', '.join(STATUSES))
        return status

    def set_identity(self, data):
        """Set the status of one identity (created if absent)."""
        status = self._object(data, ('identity', 'status', 'project_id'))
        project_id = self._project_id(data)
        with self.app.state.transaction(project_id) as contract:
            try:
                name, entry = set_status(contract, data.get('identity'), status)
            except IdentityError as exc:
                raise ValueError(str(exc)) from exc
            entry = dict(entry)
        LOG.info('identity %s of project %s set to %s', name, project_id, status)
        return json_reply(200, dict(entry, identity=name, project_id=project_id))

    def set_identities(self, data):
        """Set the status of many identities (all or none)."""
        status = self._object(data, ('identities', 'status', 'project_id'))
        project_id = self._project_id(data)
        identities = data.get('identities')
        if not isinstance(identities, list):
            raise ValueError('identities must be a list of strings')
        for identity in identities:
            try:
                parse_identity(identity)
            except IdentityError as exc:
                raise ValueError('%s: %s' % (identity, exc)) from exc
        with self.app.state.transaction(project_id) as contract:
            names = [set_status(contract, identity, status)[0] for identity in identities]
        LOG.info('%d identities of project %s set to %s', len(names), project_id, status)
        return json_reply(200, {'count': len(names), 'identities': names, 'status': status, 'project_id': project_id})

    def add_send_event(self, data):
        """Add a send event (rejects, bounces, complaints, extra delivery attempts) for GetSendStatistics."""
        if not isinstance(data, dict):
            raise ValueError('expected a JSON object')
        unknown = sorted(set(data) - set(EVENT_COUNTERS + ('time', 'project_id')))
        if unknown:
            raise ValueError('unknown key(s) %s' % ', '.join(unknown))
        when = data.get('time', time.time())
        if isinstance(when, bool) or not isinstance(when, (int, float)):
            raise ValueError('time must be epoch seconds')
        project_id = self._project_id(data)
        with self.app.state.transaction(project_id) as contract:
            event = add_send_event(contract, when, data)
        return json_reply(201, {'event': event, 'project_id': project_id})
