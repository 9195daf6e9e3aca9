# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state directory: private to the user who runs the emulator.

It holds the CA key, the SMTP passwords (``state.json``), the accepted mail and the admin
secret (``endpoint.json``), so it must be owned by that user and closed to group and others
(mode 0700): anything else is refused with a one-line :class:`StateDirError`. Whatever the
emulator writes there is 0600 (directories 0700), also files left by an older version.

``endpoint.json`` (:data:`ENDPOINT_FILE`) is removed at start, before anything else, and
written again (atomically, 0600) only once the services listen, so that a reader never
takes the file of an emulator that was killed for this one's.
"""

from __future__ import annotations

import os
import stat

ENDPOINT_FILE = 'endpoint.json'
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class StateDirError(ValueError):
    """The state directory cannot be used safely."""


def prepare_state_dir(path):
    """Create ``path`` (0700) unless it exists, check that it is private; return its absolute path."""
    path = os.path.abspath(path)
    try:
        os.makedirs(path, mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StateDirError('cannot create the state directory %s: %s' % (path, exc.strerror or exc)) from exc
    check_state_dir(path)
    return path


def check_state_dir(path):
    """Raise :class:`StateDirError` unless ``path`` is a directory of this user with mode 0700 (or stricter)."""
    uid = os.geteuid()
    try:
        link = os.lstat(path)
        info = os.stat(path)
    except OSError as exc:
        raise StateDirError('cannot use the state directory %s: %s' % (path, exc.strerror or exc)) from exc
    if stat.S_ISLNK(link.st_mode) and link.st_uid != uid:
        raise StateDirError('refusing the state directory %s: it is a symbolic link of uid %d, not of uid %d who runs '
                            'the emulator; use a directory of your own' % (path, link.st_uid, uid))
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError('refusing the state directory %s: it is not a directory' % path)
    if info.st_uid != uid:
        raise StateDirError('refusing the state directory %s: it belongs to uid %d, not to uid %d who runs the '
                            'emulator; use a directory of your own' % (path, info.st_uid, uid))
    if info.st_mode & 0o077:
        raise StateDirError('refusing the state directory %s: its mode %04o lets other users in (it holds keys, '
                            'passwords and the admin secret); run chmod 700 %s, or use a new directory'
                            % (path, stat.S_IMODE(info.st_mode), path))


def tighten_modes(path):
    """Make this user's files in ``path`` 0600 and its directories 0700, one level down (older versions made
    ``messages/`` 0755 and their files 0644); symbolic links and other users' entries are left alone."""
    for entry in _entries(path):
        _tighten(entry)
        if entry.is_dir(follow_symlinks=False):
            for inner in _entries(entry.path):
                _tighten(inner)


def _entries(path):
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except OSError:
        return []


def _tighten(entry):
    try:
        info = entry.stat(follow_symlinks=False)
        if info.st_uid != os.geteuid():
            return
        if stat.S_ISDIR(info.st_mode):
            wanted = PRIVATE_DIR_MODE
        elif stat.S_ISREG(info.st_mode):
            wanted = PRIVATE_FILE_MODE
        else:
            return
        if stat.S_IMODE(info.st_mode) != wanted:
            os.chmod(entry.path, wanted)
    except OSError:
        pass  # gone meanwhile, or not ours to change: the directory's own mode already keeps others out


def make_private_dir(path):
    """Create the directory ``path`` (0700) unless it exists, and make it 0700 if it does."""
    os.makedirs(path, mode=PRIVATE_DIR_MODE, exist_ok=True)
    if stat.S_IMODE(os.stat(path).st_mode) != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE)


def open_private_append(path):
    """Open ``path`` for appending text, created 0600 (and made 0600 if it was not)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0),
                 PRIVATE_FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE_MODE:
            os.fchmod(fd, PRIVATE_FILE_MODE)
        return os.fdopen(fd, 'a', encoding='utf-8')
    except BaseException:
        os.close(fd)
        raise


def remove_endpoint_file(state_dir):
    """Remove ``endpoint.json`` of an earlier (possibly killed) emulator; return whether there was one."""
    try:
        os.unlink(os.path.join(state_dir, ENDPOINT_FILE))
        return True
    except FileNotFoundError:
        return False
