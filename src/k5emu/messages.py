# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The message store: every mail the emulator accepted, one JSON file each in ``DIR/messages/``.

A file ``<seq>-<id>.json`` (seq zero-padded to 6 digits) holds one record::

    {"seq": 1, "id": "<uuid>", "time": 1700000000.123, "source": "smtp" | "api",
     "port_kind": "submission" | "smtps" (smtp only), "auth_user": "...", "project_id": "...",
     "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"} (smtp only),
     "helo": "...", "peer": "127.0.0.1", "mail_from": "a@example.com", "rcpt_tos": ["b@example.com"],
     "data": "<message text, utf-8 with replacement>", "message_id": "<...>" | null, "subject": "..." | null}

Whoever accepts mail (the SMTP relay; the mail API's SendEmail/SendRawEmail, which add
``"action"``, set ``auth_user`` to null and ``message_id`` to the returned MessageId)
builds the record with its own keys and calls :meth:`MessageStore.add`, which adds
``seq``, ``id`` and ``time``. Files are written atomically; the files are the store,
so messages are still listed after a restart (files 0600, the directory 0700) (the numbering goes on after the highest
seq on disk). ``clear()`` deletes them (``POST /_emulator/reset``, ``DELETE /_emulator/messages``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid

from .statedir import make_private_dir
from .util import atomic_write_json

LOG = logging.getLogger('k5emu.messages')

FILE_RE = re.compile(r'^(\d+)-[0-9a-f-]+\.json$')


class MessageStore:
    """Thread-safe store of accepted messages."""

    def __init__(self, directory):
        self.directory = directory
        self._lock = threading.Lock()
        make_private_dir(directory)
        self._seq = max((seq for seq, _name in self._files()), default=0)

    def _files(self):
        """Return ``[(seq, file name)]`` of the stored messages (temporary files excluded)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            match = FILE_RE.match(name)
            if match:
                found.append((int(match.group(1)), name))
        return sorted(found)

    def add(self, record):
        """Number and store a copy of ``record`` (``time`` defaults to now); return the stored record."""
        with self._lock:
            self._seq += 1
            stored = dict(record)
            stored['seq'] = self._seq
            stored.setdefault('id', str(uuid.uuid4()))
            stored.setdefault('time', round(time.time(), 6))
            make_private_dir(self.directory)
            path = os.path.join(self.directory, '%06d-%s.json' % (stored['seq'], stored['id']))
            atomic_write_json(path, stored)
        return stored

    def list(self):
        """Return the stored records, sorted by seq."""
        records = []
        for _seq, name in self._files():
            try:
                with open(os.path.join(self.directory, name), 'r', encoding='utf-8') as handle:
                    records.append(json.load(handle))
            except FileNotFoundError:
                continue  # cleared meanwhile
            except (OSError, ValueError) as exc:
                LOG.warning('cannot read the stored message %s: %s', name, exc)
        return sorted(records, key=lambda record: record.get('seq', 0))

    def clear(self):
        """Delete every stored message (the numbering goes on); return how many were deleted."""
        removed = 0
        with self._lock:
            for _seq, name in self._files():
                try:
                    os.unlink(os.path.join(self.directory, name))
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def reset(self):
        """Same as :meth:`clear` (the emulator's reset)."""
        self.clear()
