# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistent state of the mail service, kept in ``DIR/state.json``.

Schema::

    {"contracts": {"<project_id>": {
        "smtp_user": {"user": ..., "password": ..., "created_at": ...} or null,
        "identities": {"<identity>": {"type": "EmailAddress" | "Domain", "status": "Pending" | "Success" | ...,
                                      "token": "..." (domains), "created_at": ...}},
        "send_events": [{"time": ..., "delivery_attempts": 0, "rejects": 0, "bounces": 0, "complaints": 0}]}}}

(``identities``: see :mod:`k5emu.identities`; ``send_events``: added by tests, see
:mod:`k5emu.sending`.) Every contract entry is a dict; unknown keys are kept as they are. The file is
rewritten atomically (temporary file and ``os.replace``) after every change.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import logging
import os
import threading
import time

from .util import atomic_write_json

LOG = logging.getLogger('k5emu.state')


class ContractState:
    """One contract's (project's) persistent data, as handed to the mail API's action handlers.

    Handlers read and change ``data`` (or the helper properties) while the state
    lock is held; the state is saved when the handler returns. ``messages`` (the
    :class:`k5emu.messages.MessageStore`) and ``settings`` (the run-time
    :class:`k5emu.config.Settings`) are given by the mail API, else None.
    """

    def __init__(self, project_id, data, state, messages=None, settings=None):
        self.project_id = project_id
        self.data = data
        self._state = state
        self.messages = messages
        self.settings = settings

    @staticmethod
    def now():
        """Return the current time (epoch seconds)."""
        return time.time()

    @property
    def smtp_user(self):
        """The contract's SMTP user dict ``{"user", "password", "created_at"}`` or None."""
        return self.data.get('smtp_user')

    @smtp_user.setter
    def smtp_user(self, value):
        self.data['smtp_user'] = value

    def smtp_user_taken(self, user):
        """Tell whether another contract already has an SMTP user of this name."""
        for project_id, data in self._state.data['contracts'].items():
            other = data.get('smtp_user') if isinstance(data, dict) else None
            if project_id != self.project_id and other and other.get('user') == user:
                return True
        return False


class State:
    """Thread-safe holder of the persistent state, saved to a JSON file on every change."""

    def __init__(self, path, project_ids=()):
        self.path = path
        self.project_ids = tuple(project_ids)
        self.lock = threading.RLock()
        self.data = {'contracts': {}}
        if os.path.exists(path):
            with open(path, 'r', encoding='utf-8') as handle:
                loaded = json.load(handle)
            if not isinstance(loaded, dict) or not isinstance(loaded.get('contracts'), dict):
                raise ValueError('%s is not an emulator state file' % path)
            self.data = loaded
            LOG.info('loaded state of %d contract(s) from %s', len(loaded['contracts']), path)
        self._ensure_contracts()
        self.save()

    @staticmethod
    def _empty_contract():
        return {'smtp_user': None, 'identities': {}}

    def _ensure_contracts(self):
        contracts = self.data['contracts']
        for project_id in self.project_ids:
            entry = contracts.get(project_id)
            if not isinstance(entry, dict):
                contracts[project_id] = self._empty_contract()
            else:
                entry.setdefault('smtp_user', None)
                entry.setdefault('identities', {})

    def save(self):
        """Write the state file (atomically)."""
        with self.lock:
            atomic_write_json(self.path, self.data, mode=0o600)

    @contextlib.contextmanager
    def transaction(self, project_id, messages=None, settings=None):
        """Hold the lock and yield the :class:`ContractState` of ``project_id``; save if it changed."""
        with self.lock:
            contracts = self.data['contracts']
            if not isinstance(contracts.get(project_id), dict):
                contracts[project_id] = self._empty_contract()
            before = json.dumps(self.data, sort_keys=True)
            try:
                yield ContractState(project_id, contracts[project_id], self, messages, settings)
            finally:
                if json.dumps(self.data, sort_keys=True) != before:
                    self.save()

    def snapshot(self):
        """Return a deep copy of the whole state."""
        with self.lock:
            return copy.deepcopy(self.data)

    def reset(self):
        """Forget every contract's data (configured contracts start again empty)."""
        with self.lock:
            self.data = {'contracts': {}}
            self._ensure_contracts()
            self.save()

    def smtp_credentials(self):
        """Return ``{project_id: {"user": ..., "password": ...}}`` for every contract that has an SMTP user.

        Safe to call from any thread (e.g. an SMTP relay's authenticator): the
        answer reflects the state at the moment of the call.
        """
        with self.lock:
            result = {}
            for project_id, data in self.data['contracts'].items():
                smtp = data.get('smtp_user') if isinstance(data, dict) else None
                if smtp:
                    result[project_id] = {'user': smtp['user'], 'password': smtp['password']}
            return result

    def check_smtp_login(self, user, password):
        """Return the project id whose current SMTP user is ``user`` with ``password``, else None."""
        if isinstance(user, bytes):
            user = user.decode('utf-8', 'replace')
        if isinstance(password, bytes):
            password = password.decode('utf-8', 'replace')
        for project_id, creds in self.smtp_credentials().items():
            if creds['user'] == user and hmac.compare_digest(creds['password'].encode('utf-8'), password.encode('utf-8')):
                return project_id
        return None
