# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Admin endpoints for tests under ``/_emulator/`` (no auth, not logged, not rate limited).

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
=======  =========================  ==========================================================
"""

from __future__ import annotations

import json
import logging
import os

from .replies import json_reply

LOG = logging.getLogger('k5emu.admin')


class Admin:
    """Dispatches admin requests to the application."""

    def __init__(self, app):
        self.app = app
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
        }

    def handle(self, method, path, body):
        """Handle one admin request; return a reply."""
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
