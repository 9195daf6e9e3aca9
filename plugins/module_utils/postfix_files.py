# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The files of postfix_relay_config that hold a secret: sasl_passwd and its index, written
so that nobody but root can ever read them and a killed run never leaves a broken index,
and the temporary files a killed run left behind. Standard library only (managed hosts).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import stat
import tempfile

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import INDEX_SUFFIXES, PostfixRelayError

# Temporary files in config_dir: .sasl_passwd.XXXXXXXX and its index (.sasl_passwd.XXXXXXXX.db).
TEMP_PREFIX = '.sasl_passwd.'
# A temporary file younger than this may belong to a run that has not locked it yet.
STALE_AFTER = 10
SECRET_MODE = 0o600


def read_text(path):
    """A file's text ('' when missing); bytes that are not UTF-8 kept as they are."""
    if not os.path.exists(path):
        return ''
    with open(path, 'rb') as handle:
        return handle.read().decode('utf-8', 'surrogateescape')


def write_secret_file(path, content):
    """Write a file that is root's and 0600 from its creation."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_MODE)
    with os.fdopen(descriptor, 'wb') as handle:
        handle.write(content)
        os.fchown(handle.fileno(), 0, 0)
        os.fchmod(handle.fileno(), SECRET_MODE)


def install_sasl_passwd(host, map_type, content, key, value, replace_source):
    """Build the index of sasl_passwd under a temporary name, check it, then move it (and the file) into place.

    postmap rewrites an index in place: killed, or out of disk space, it leaves a broken index
    that Postfix reads. Built from a temporary copy, the live index is always the previous one or
    the new, checked one. The temporary files are root's, 0600 from creation, and locked while
    this run uses them, so that a later run can tell those of a killed run (stale_temp_files).
    """
    path = host.sasl_passwd
    directory = os.path.dirname(path)
    suffix = INDEX_SUFFIXES[map_type]
    descriptor, temp_path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)  # created 0600
    try:
        with os.fdopen(descriptor, 'wb') as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            handle.write(content.encode('utf-8', 'surrogateescape'))
            handle.flush()
            os.fchown(handle.fileno(), 0, 0)
            os.fchmod(handle.fileno(), SECRET_MODE)
            os.fsync(handle.fileno())
            build_index(host, map_type, temp_path)
            if host.map_lookup(map_type, temp_path, key) != value:
                raise PostfixRelayError("postmap built an index of %s that does not answer %s with the relay's "
                                        "credentials; the previous index is left in place." % (path, key))
            restrict(temp_path + suffix)
            sync_path(temp_path + suffix)
            os.replace(temp_path + suffix, path + suffix)  # the index first: Postfix reads only the index
            if replace_source:
                os.replace(temp_path, path)
        sync_path(directory)
    finally:
        prefix = os.path.basename(temp_path)
        remove_files(directory, [name for name in os.listdir(directory) if name == prefix or name.startswith(prefix + '.')])


def build_index(host, map_type, source):
    """postmap of source, under umask 077 so that the index is never readable by others, even while it is written."""
    previous_umask = os.umask(0o077)
    try:
        rc, out, err = host.run_command(['postmap', '-c', host.config_dir, '%s:%s' % (map_type, source)])
    finally:
        os.umask(previous_umask)
    if rc != 0:
        outcome = 'killed by signal %d' % -rc if rc < 0 else 'exit code %d' % rc
        raise PostfixRelayError('postmap could not build the index of %s (%s): %s The previous index is left in place.'
                                % (host.sasl_passwd, outcome, (err or out).strip() or 'no message.'))


def sync_path(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def root_only(path):
    """True when path is root's, mode 0600 (a missing file is nobody's business)."""
    if not os.path.exists(path):
        return True
    status = os.stat(path)
    return status.st_uid == 0 and status.st_gid == 0 and status.st_mode & 0o7777 == SECRET_MODE


def restrict(path):
    """Make path root's, mode 0600."""
    os.chown(path, 0, 0)
    os.chmod(path, SECRET_MODE)


def stale_temp_files(directory, now):
    """The names of the temporary files in directory that a killed run left behind.

    Those are root's regular files named TEMP_PREFIX..., older than STALE_AFTER seconds, whose
    temporary sasl_passwd no live run holds locked (a run locks it right after creating it,
    and holds the lock until its files are renamed or removed).
    """
    stale = []
    for name in sorted(os.listdir(directory)):
        if not name.startswith(TEMP_PREFIX):
            continue
        try:
            status = os.lstat(os.path.join(directory, name))
        except OSError:
            continue
        if not stat.S_ISREG(status.st_mode) or status.st_uid != 0 or now - status.st_mtime < STALE_AFTER:
            continue
        source = TEMP_PREFIX + name[len(TEMP_PREFIX):].split('.', 1)[0]  # .sasl_passwd.XXXX of .sasl_passwd.XXXX.db
        if not locked(os.path.join(directory, source)):
            stale.append(name)
    return stale


def locked(path):
    """True when another process holds a lock on path (a regular file)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return False
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # EWOULDBLOCK: held by a live run; ENOLCK (NFS): cannot tell, so leave the file be
        return True
    finally:
        os.close(descriptor)
    return False


def remove_files(directory, names):
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # removed meanwhile, by another run
