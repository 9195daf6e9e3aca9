# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The private per-user directory where modules on one host share state.

Pacing records and login-guard records live here. Anyone who can write to
them can slow, block or unguard every run, so the directory must belong to
the user and be closed to everyone else, and every file in it must be a
regular file of the user with a single link. The directory is the same for
every process of the user whatever TMPDIR or HOME say: it is under the home
directory of the passwd entry, unless FJCLOUD_MAIL_STATE_DIR names another.
Records that other processes read while they are written are replaced whole
(a temporary file, fsync, rename), never rewritten in place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import fcntl
import os
import pwd
import stat
import time
from urllib.parse import urlsplit

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError

STATE_DIR_ENV = 'FJCLOUD_MAIL_STATE_DIR'
DEFAULT_STATE_SUBDIR = os.path.join('.ansible', 'fjcloud.mail')
LOCK_POLL_INTERVAL = 0.05
DEFAULT_PORTS = {'https': 443, 'http': 80}


def default_state_dir(action='Finding the state directory'):
    """FJCLOUD_MAIL_STATE_DIR, or ~/.ansible/fjcloud.mail of the passwd home (not $HOME, not TMPDIR)."""
    return os.environ.get(STATE_DIR_ENV) or os.path.join(_home_dir(action), DEFAULT_STATE_SUBDIR)


def _home_dir(action):
    """The passwd home of the uid; without a passwd entry, $HOME if it is a directory of the uid.

    Containers often run an arbitrary uid that has no passwd entry. Their $HOME is
    the only stable home there is, and Ansible itself keeps its files under it; a
    $HOME of another owner (such as ``/``) could not keep the state private.
    """
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        pass
    home = os.environ.get('HOME', '')
    try:
        info = os.stat(home) if os.path.isabs(home) else None
    except OSError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
        return home
    raise K5MailError(
        action, 'uid %d has no passwd entry, and $HOME (%s) is not a directory of that uid, so there is no private '
        'state directory for pacing and login records' % (uid, home or 'not set'),
        hint='Set %s to a directory only you can access, on a local filesystem' % STATE_DIR_ENV)


def normalised_url(url, keep_path=False):
    """``scheme://host:port`` with the host in lower case and the default port explicit.

    User info, query and fragment never count; the path only with ``keep_path``
    (without trailing slashes). Different spellings of one service give one key.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:  # not a port number: the URL is refused elsewhere, keep the key stable
        port = None
    host = parts.hostname or ''
    if ':' in host:
        host = '[%s]' % host
    text = '%s://%s:%s' % (scheme, host, port or '')
    if keep_path:
        text += parts.path.rstrip('/')
    return text


class StateDir:
    """Opens checked files in the private state directory of the user.

    ``action`` names what the caller was doing, for the K5MailError it raises.
    """

    def __init__(self, action, path=None):
        self.action = action
        self.path = os.path.abspath(path or default_state_dir(action))

    def lock(self, fd, name, timeout, sleep=None, clock=None, stop_when=None):
        """lock_exclusive on the descriptor of ``name``; a filesystem without locks is a K5MailError."""
        try:
            return lock_exclusive(fd, timeout, sleep=sleep, clock=clock, stop_when=stop_when)
        except OSError as exc:
            path = os.path.join(self.path, name)
            if exc.errno == errno.ENOLCK:
                raise self._error(
                    'cannot lock %s: the filesystem of the state directory offers no locks (ENOLCK, such as NFS '
                    'without a lock daemon)' % path,
                    hint='Set %s to a directory on a local filesystem, only you can access' % STATE_DIR_ENV)
            raise self._error('cannot lock %s: %s' % (path, exc.strerror))

    def read_file(self, name, limit):
        """The bytes of ``name`` (at most ``limit``, else a K5MailError), or None when it does not exist."""
        path = os.path.join(self.path, name)
        dir_fd = self._open_dir()
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                raise self._unsafe(path, _kind(path, 'a regular file'))
            raise self._error('cannot read %s: %s' % (path, exc.strerror))
        finally:
            os.close(dir_fd)
        try:
            self._check_file(fd, path)
            data = os.read(fd, limit + 1)
        except OSError as exc:
            raise self._error('cannot read %s: %s' % (path, exc.strerror))
        finally:
            os.close(fd)
        if len(data) > limit:
            raise self._error('%s is larger than %d bytes, so it is not a record of fjcloud.mail' % (path, limit),
                              hint='Move it out of the state directory')
        return data

    def replace_file(self, name, data):
        """Replace ``name`` with ``data`` at once: readers see the old or the new content, never a part.

        A temporary file of the directory, written, flushed to disk and renamed;
        any failure (a full disk, a read-only filesystem) is a K5MailError and
        leaves the previous file as it was.
        """
        path = os.path.join(self.path, name)
        dir_fd = self._open_dir()
        temp = '.%s.%d.%s.tmp' % (name, os.getpid(), binascii.hexlify(os.urandom(4)).decode('ascii'))
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except OSError as exc:
            _remove(temp, dir_fd)
            raise self._error('cannot write %s: %s' % (path, exc.strerror),
                              hint='Make room on the filesystem of %s or make it writable, or set %s to a private '
                                   'directory on a local filesystem' % (self.path, STATE_DIR_ENV))
        finally:
            os.close(dir_fd)

    def open_file(self, name):
        """Return a read-write descriptor of ``name``, created 0600 if missing, after checking it and the directory."""
        dir_fd = self._open_dir()
        try:
            try:
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            except OSError as exc:
                path = os.path.join(self.path, name)
                if exc.errno in (errno.ELOOP, errno.EISDIR):
                    raise self._unsafe(path, _kind(path, 'a regular file'))
                raise self._error('cannot open %s: %s' % (path, exc.strerror))
        finally:
            os.close(dir_fd)
        try:
            self._check_file(fd, os.path.join(self.path, name))
        except Exception:
            os.close(fd)
            raise
        return fd

    def _open_dir(self):
        self._create()
        try:
            # The descriptor pins the checked directory: a rename after the check changes nothing.
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise self._unsafe(self.path, _kind(self.path, 'a directory'))
            raise self._error('cannot open the state directory %s: %s' % (self.path, exc.strerror))
        try:
            info = os.fstat(fd)
            if info.st_uid != os.getuid():
                raise self._unsafe(self.path, 'belongs to uid %d, not to uid %d who runs the module' % (info.st_uid, os.getuid()))
            if info.st_mode & 0o077:
                raise self._unsafe(self.path, 'is open to group or others (mode %04o, expected 0700)' % stat.S_IMODE(info.st_mode),
                                   fix='Run chmod 700 %s' % self.path)
        except Exception:
            os.close(fd)
            raise
        return fd

    def _create(self):
        parent = os.path.dirname(self.path)
        try:
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o700)
            os.mkdir(self.path, 0o700)
            os.chmod(self.path, 0o700)  # a umask like 0277 would leave it unwritable
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise self._error('cannot create the state directory %s: %s' % (self.path, exc.strerror))

    def _check_file(self, fd, path):
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise self._unsafe(path, 'is not a regular file')
        if info.st_uid != os.getuid():
            raise self._unsafe(path, 'belongs to uid %d, not to uid %d who runs the module' % (info.st_uid, os.getuid()))
        if info.st_nlink != 1:
            raise self._unsafe(path, 'has %d hard links' % info.st_nlink)
        if info.st_mode & 0o077:
            raise self._unsafe(path, 'is open to group or others (mode %04o, expected 0600)' % stat.S_IMODE(info.st_mode),
                               fix='Run chmod 600 %s' % path)

    def _unsafe(self, path, what, fix=None):
        return self._error(
            '%s %s, so it cannot hold the state fjcloud.mail shares between runs' % (path, what),
            hint='%s, or set %s to a directory only you can access' % (
                fix or 'Remove it (the collection recreates it private to you)', STATE_DIR_ENV))

    def _error(self, reason, hint=None):
        return K5MailError(self.action, reason, hint=hint or 'Set %s to a directory only you can access' % STATE_DIR_ENV)


def _kind(path, expected):
    """What stands at ``path`` instead of ``expected``."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISLNK(mode):
        return 'is a symbolic link, not %s' % expected
    if stat.S_ISDIR(mode):
        return 'is a directory, not %s' % expected
    return 'is not %s' % expected


def lock_exclusive(fd, timeout, sleep=None, clock=None, stop_when=None):
    """Take an exclusive flock on ``fd``; return False if ``timeout`` seconds ran out first.

    Polls with LOCK_NB, so the wait is bounded in attempts and in time. It also
    ends (returning False) as soon as ``stop_when()`` is true.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = clock() + timeout
    for _attempt in range(int(timeout / LOCK_POLL_INTERVAL) + 2):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
        if (stop_when is not None and stop_when()) or clock() >= deadline:
            break
        sleep(LOCK_POLL_INTERVAL)
    return False


def _write_all(fd, data):
    view = memoryview(data)
    for _attempt in range(len(data) + 1):  # each write moves on by one byte at least
        if not view:
            return
        view = view[os.write(fd, view):]
    raise OSError(errno.EIO, 'the write made no progress')


def _remove(name, dir_fd):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def read_record(fd):
    """The text of a small record file, or '' when it cannot be read."""
    try:
        return os.pread(fd, 4096, 0).decode('ascii', 'replace').strip()
    except OSError:
        return ''


def write_record(fd, text):
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode('ascii'), 0)
