# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small helpers shared by the emulator's modules."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import uuid


def atomic_write_bytes(path, data, mode=0o600):
    """Write ``data`` to ``path`` through a temporary file (0600 from creation) and ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path, data, mode=0o600):
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + '\n').encode('utf-8'), mode=mode)


def iso_utc(epoch, micro=True):
    """Format an epoch time as ``YYYY-MM-DDThh:mm:ss.ffffffZ`` (or without fraction)."""
    when = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    if micro:
        return when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    return when.strftime('%Y-%m-%dT%H:%M:%SZ')


def new_request_id():
    """Return a new request id (a UUID string)."""
    return str(uuid.uuid4())
