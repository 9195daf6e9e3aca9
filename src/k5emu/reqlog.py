# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The request log: records of the Keystone and mail API requests (not of admin requests).

A record::

    {"seq": 1, "time": 1700000000.123, "service": "keystone" | "mail", "method": "POST",
     "action": "CreateSMTPUser" | null, "status": 200 | null (null: connection dropped),
     "request_id": "..." | null, "user": "demo-user" | null, "project_id": "..." | null,
     "fault": false, "error_code": "Throttling" | null (the ErrorResponse code)}

Records are kept in memory (``GET``/``DELETE /_emulator/log``) and appended as
JSON lines to ``DIR/requests.jsonl`` (mode 0600, never cleared by the emulator).
"""

from __future__ import annotations

import json
import logging
import threading

from .statedir import open_private_append

LOG = logging.getLogger('k5emu.log')


class RequestLog:
    """Thread-safe request log."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._records = []
        self._seq = 0

    def append(self, record):
        """Number the record, keep it, write it to the JSON lines file; return it."""
        with self._lock:
            self._seq += 1
            record = dict(record, seq=self._seq)
            self._records.append(record)
            try:
                with open_private_append(self.path) as handle:
                    handle.write(json.dumps(record, sort_keys=True) + '\n')
            except OSError as exc:
                LOG.warning('cannot append to %s: %s', self.path, exc)
        return record

    def records(self):
        """Return a copy of the in-memory records."""
        with self._lock:
            return [dict(r) for r in self._records]

    def clear(self):
        """Clear the in-memory records (the numbering goes on)."""
        with self._lock:
            self._records.clear()
