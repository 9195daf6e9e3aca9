# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sasl_passwd and its index, by real runs of postfix_relay_config on private Postfix configuration directories.

Issue 16, findings 4 to 6: a postmap killed at its first write (RLIMIT_FSIZE, the real
postmap) or failing on a "full disk" leaves the previous index, and a broken, missing,
older or outdated index is rebuilt by the next run; temporary files of a killed run are
removed by the next one (the role reports them: test_postfix_relay_dirs.py);
diffs show keys only; a relay line in other letter case is replaced, not left to shadow
the relay's line; lines are split at newlines only. Postfix's own postmap -q is the judge.
The machine's /etc/postfix is never touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/postmap'),
                                reason='needs root and the Postfix tools (postconf, postmap)')

POSTMAP = '/usr/sbin/postmap'
MARKER = '# managed by fjcloud.mail.postfix_relay'
NEXTHOP = '[smtp.example.com]:587'
USER = 'relay-user'
SUFFIXES = {'hash': '.db', 'lmdb': '.lmdb'}
# A postmap first on PATH that builds with no room to write (RLIMIT_FSIZE 0): the real postmap fails at its
# first write as on a full disk (hash: Postfix ignores SIGXFSZ and gets EFBIG) or is killed by SIGXFSZ (lmdb).
# Lookups pass. Python ignores SIGXFSZ and its children inherit that: the wrapper restores the default.
POSTMAP_NO_ROOM = '''#!%s
import os, resource, signal, sys
if '-q' not in sys.argv:
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
os.execv(%r, [%r] + sys.argv[1:])
''' % (sys.executable, POSTMAP, POSTMAP)
# A postmap first on PATH that kills the module that runs it (SIGKILL), before anything is built.
POSTMAP_KILLS_MODULE = '''#!/bin/sh
for arg in "$@"; do [ "$arg" = -q ] && exec %s "$@"; done
kill -KILL "$PPID"
exit 1
''' % POSTMAP


def map_types():
    supported = subprocess.run(['postconf', '-m'], capture_output=True, text=True, check=False).stdout.split()
    return [pytest.param(name, marks=pytest.mark.skipif(name not in supported, reason='Postfix here lacks %s' % name))
            for name in SUFFIXES]


@pytest.fixture(name='config_dir')
def fixture_config_dir(tmp_path):
    config_dir = tmp_path / 'postfix'
    config_dir.mkdir()
    for name in ('main.cf', 'master.cf'):
        shutil.copyfile('/etc/postfix/' + name, str(config_dir / name))
    return str(config_dir)


def relay_args(config_dir, password, map_type='hash'):
    return dict(config_dir=config_dir, relay_host='smtp.example.com', relay_port=587, smtp_user=USER,
                smtp_password=password, map_type=map_type, tls_ca_file='/etc/ssl/certs/ca-certificates.crt')


def configure(ansible, config_dir, password, map_type='hash', path_first=None, **kwargs):
    env = {'PATH': path_first + os.pathsep + ansible.env['PATH']} if path_first else None
    return ansible.module('postfix_relay_config', relay_args(config_dir, password, map_type), env=env, **kwargs)


def lookup(config_dir, key=NEXTHOP, map_type='hash'):
    """Postfix's answer for key: (exit code, value)."""
    done = subprocess.run([POSTMAP, '-c', config_dir, '-q', key, '%s:%s/sasl_passwd' % (map_type, config_dir)],
                          capture_output=True, text=True, timeout=30, check=False)
    return done.returncode, done.stdout.rstrip('\n')


def no_room_to_write():
    """In the child: RLIMIT_FSIZE 0, with SIGXFSZ's default action (Python ignores it, and children inherit that)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def fake_postmap(tmp_path, script):
    directory = tmp_path / 'fake-bin'
    directory.mkdir(exist_ok=True)
    path = directory / 'postmap'
    path.write_text(script)
    path.chmod(0o755)
    return str(directory)


def temp_files(config_dir):
    return sorted(name for name in os.listdir(config_dir) if name.startswith('.sasl_passwd.'))


def read(path):
    with open(path, 'rb') as handle:
        return handle.read().decode('utf-8', 'surrogateescape')


def write_secret_file(path, text, age=0):
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, 'wb') as handle:
        handle.write(text.encode('utf-8', 'surrogateescape'))
    if age:
        past = time.time() - age
        os.utime(path, (past, past))


def assert_secrets_hidden(run, *secrets):
    everything = run.output + json.dumps(run.results)
    for secret in secrets:
        assert secret not in everything, 'a secret is in the output'


# --------------------------------------------------------------------------- finding 4

@pytest.mark.parametrize('map_type', map_types())
def test_index_broken_by_a_killed_postmap_is_rebuilt(ansible, config_dir, map_type):
    """An index broken by a postmap at its first write, newer than sasl_passwd: the next run rebuilds it.

    hash: the real postmap without room to write (a full disk) leaves an empty sasl_passwd.db.
    lmdb writes in transactions, so a killed postmap leaves the previous data; an index cut
    to nothing (a disk that failed) is what breaks it.
    """
    run = configure(ansible, config_dir, 'Pw-One-1', map_type)
    assert run.rc == 0 and run.result['changed'], run.output
    assert lookup(config_dir, map_type=map_type) == (0, '%s:Pw-One-1' % USER)

    sasl_passwd = os.path.join(config_dir, 'sasl_passwd')
    index = sasl_passwd + SUFFIXES[map_type]
    time.sleep(0.05)
    if map_type == 'hash':
        failed = subprocess.run([POSTMAP, '-c', config_dir, 'hash:' + sasl_passwd], preexec_fn=no_room_to_write,
                                capture_output=True, text=True, timeout=30, check=False)
        assert failed.returncode != 0 and 'File too large' in failed.stderr, failed
    else:
        os.truncate(index, 0)
    assert os.path.getsize(index) == 0 and os.stat(index).st_mtime >= os.stat(sasl_passwd).st_mtime
    assert lookup(config_dir, map_type=map_type)[0] != 0  # Postfix cannot read it: every mail would be deferred

    # Check mode sees it and writes nothing.
    broken = os.stat(index)
    run = configure(ansible, config_dir, 'Pw-One-1', map_type, check=True)
    assert run.rc == 0, run.output
    assert run.result['changed'] and run.result['index_rebuilt'] and run.result['reload_needed'], run.result
    assert (os.stat(index).st_size, os.stat(index).st_mtime) == (broken.st_size, broken.st_mtime)

    run = configure(ansible, config_dir, 'Pw-One-1', map_type)
    assert run.rc == 0, run.output
    assert run.result['changed'] and run.result['index_rebuilt'] and run.result['reload_needed'], run.result
    assert run.result['sasl_passwd_changed'] is False
    assert lookup(config_dir, map_type=map_type) == (0, '%s:Pw-One-1' % USER)
    status = os.stat(index)
    assert (status.st_uid, status.st_mode & 0o7777) == (0, 0o600)
    assert temp_files(config_dir) == []

    run = configure(ansible, config_dir, 'Pw-One-1', map_type)
    assert run.rc == 0 and not run.result['changed'], run.result


@pytest.mark.parametrize('map_type', map_types())
def test_killed_or_failing_postmap_leaves_the_previous_index(ansible, config_dir, tmp_path, map_type):
    """The module's own postmap, killed at its first write or out of space: Postfix keeps answering with the previous index."""
    run = configure(ansible, config_dir, 'Pw-Old-1', map_type)
    assert run.rc == 0, run.output

    no_room = fake_postmap(tmp_path, POSTMAP_NO_ROOM)
    run = configure(ansible, config_dir, 'Pw-New-2', map_type, path_first=no_room)
    assert run.rc != 0, run.output
    assert lookup(config_dir, map_type=map_type) == (0, '%s:Pw-Old-1' % USER)
    assert temp_files(config_dir) == []
    message = run.result['msg']
    assert message.startswith('postmap could not build the index of %s/sasl_passwd' % config_dir), message
    assert message.endswith('The previous index is left in place.'), message
    assert_secrets_hidden(run, 'Pw-Old-1', 'Pw-New-2')

    run = configure(ansible, config_dir, 'Pw-New-2', map_type)
    assert run.rc == 0 and run.result['changed'] and run.result['index_rebuilt'], run.output
    assert lookup(config_dir, map_type=map_type) == (0, '%s:Pw-New-2' % USER)
    run = configure(ansible, config_dir, 'Pw-New-2', map_type)
    assert run.rc == 0 and not run.result['changed'], run.result


def test_index_with_an_outdated_value_is_rebuilt(ansible, config_dir):
    """An index newer than sasl_passwd that answers another password (edited and postmapped by hand, then reverted) is rebuilt."""
    run = configure(ansible, config_dir, 'Pw-Right-1')
    assert run.rc == 0, run.output
    other = os.path.join(config_dir, 'other')
    write_secret_file(other, '%s %s:Pw-Wrong-2\n' % (NEXTHOP, USER))
    subprocess.run([POSTMAP, '-c', config_dir, 'hash:' + other], check=True)
    os.replace(other + '.db', os.path.join(config_dir, 'sasl_passwd.db'))
    assert lookup(config_dir) == (0, '%s:Pw-Wrong-2' % USER)

    run = configure(ansible, config_dir, 'Pw-Right-1')
    assert run.rc == 0 and run.result['changed'] and run.result['index_rebuilt'], run.result
    assert lookup(config_dir) == (0, '%s:Pw-Right-1' % USER)


@pytest.mark.parametrize('damage', ['missing', 'older than sasl_passwd'])
def test_missing_or_older_index_is_rebuilt(ansible, config_dir, damage):
    """A deleted index, or one older than sasl_passwd (edited by hand, postmap forgotten): check mode sees it, a run rebuilds it."""
    run = configure(ansible, config_dir, 'Pw-One-1')
    assert run.rc == 0, run.output
    index = os.path.join(config_dir, 'sasl_passwd.db')
    if damage == 'missing':
        os.unlink(index)
    else:
        past = time.time() - 3600
        os.utime(index, (past, past))
    run = configure(ansible, config_dir, 'Pw-One-1', check=True)
    assert run.rc == 0 and run.result['index_rebuilt'] and not run.result['sasl_passwd_changed'], run.result
    run = configure(ansible, config_dir, 'Pw-One-1')
    assert run.rc == 0 and run.result['index_rebuilt'] and not run.result['sasl_passwd_changed'], run.result
    assert lookup(config_dir) == (0, '%s:Pw-One-1' % USER)
    assert os.stat(index).st_mtime >= os.stat(os.path.join(config_dir, 'sasl_passwd')).st_mtime
    assert os.stat(index).st_mode & 0o7777 == 0o600
    run = configure(ansible, config_dir, 'Pw-One-1')
    assert run.rc == 0 and not run.result['changed'], run.result


# --------------------------------------------------------------------------- finding 5

def test_temporary_files_of_a_killed_run_are_removed(ansible, config_dir, tmp_path):
    """The module killed between creating its temporary sasl_passwd and the rename: the next run removes what it left."""
    run = configure(ansible, config_dir, 'Pw-First-1')
    assert run.rc == 0, run.output

    run = configure(ansible, config_dir, 'Pw-Killed-2', path_first=fake_postmap(tmp_path, POSTMAP_KILLS_MODULE))
    assert run.rc != 0, run.output
    [left] = temp_files(config_dir)
    status = os.stat(os.path.join(config_dir, left))
    assert (status.st_uid, status.st_mode & 0o7777) == (0, 0o600)
    assert 'Pw-Killed-2' in read(os.path.join(config_dir, left))
    assert lookup(config_dir) == (0, '%s:Pw-First-1' % USER)  # the live files were not touched

    # Not a stale file: one that a running module holds locked, one of another owner, one too young to tell.
    live = os.path.join(config_dir, '.sasl_passwd.live0000')
    write_secret_file(live, 'x\n', age=60)
    foreign = os.path.join(config_dir, '.sasl_passwd.foreign0')
    write_secret_file(foreign, 'x\n', age=60)
    os.chown(foreign, 65534, 65534)
    young = os.path.join(config_dir, '.sasl_passwd.young000')
    write_secret_file(young, 'x\n')
    past = time.time() - 60
    os.utime(os.path.join(config_dir, left), (past, past))
    with open(live, 'rb') as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        run = configure(ansible, config_dir, 'Pw-Killed-2', check=True)
        assert run.rc == 0 and run.result['changed'], run.output
        assert run.result['stale_files_removed'] == [left]
        assert left in temp_files(config_dir)
        run = configure(ansible, config_dir, 'Pw-Killed-2')
        assert run.rc == 0 and run.result['changed'], run.output
        assert run.result['stale_files_removed'] == [left]
    assert temp_files(config_dir) == ['.sasl_passwd.foreign0', '.sasl_passwd.live0000', '.sasl_passwd.young000']
    assert lookup(config_dir) == (0, '%s:Pw-Killed-2' % USER)
    assert_secrets_hidden(run, 'Pw-First-1', 'Pw-Killed-2')


def test_check_diff_shows_keys_only(ansible, config_dir):
    """--check --diff of a real run: comments, continuation lines and values without 'user:' are masked, keys shown."""
    sasl_passwd = os.path.join(config_dir, 'sasl_passwd')
    write_secret_file(sasl_passwd, '\n'.join([
        '# [old-relay.example.com]:587 olduser:Comment-Secret-1',
        '#Bare-Comment-Secret-2',
        '[other.example.com]:25',
        '    contuser:Continuation-Secret-3',
        '[third.example.com]:2525 No-Colon-Secret-4',
        '[fourth.example.com]:25 user4:Plain-Secret-5',
        '']))
    run = configure(ansible, config_dir, 'Pw-Managed-6', check=True, diff=True)
    assert run.rc == 0 and run.result['changed'], run.output
    [sasl_diff] = [d for d in run.result['diff'] if d['after_header'] == sasl_passwd]
    assert sasl_diff['before'] == '# ********\n# ********\n[other.example.com]:25\n    ********\n' \
        '[third.example.com]:2525 ********\n[fourth.example.com]:25 ********\n'
    assert sasl_diff['after'].endswith('%s\n%s ********\n' % (MARKER, NEXTHOP))
    assert '[third.example.com]:2525 ********' in run.output  # the diff was shown
    assert_secrets_hidden(run, 'Comment-Secret-1', 'Bare-Comment-Secret-2', 'Continuation-Secret-3', 'contuser',
                          'No-Colon-Secret-4', 'Plain-Secret-5', 'user4', 'Pw-Managed-6')


# --------------------------------------------------------------------------- finding 6

def test_relay_line_in_other_letter_case_is_replaced(ansible, config_dir):
    """[SMTP.Example.COM]:587 would win over the managed line in Postfix's lookup: it is removed and reported."""
    sasl_passwd = os.path.join(config_dir, 'sasl_passwd')
    write_secret_file(sasl_passwd, '[SMTP.Example.COM]:587 %s:Pw-Old-1\n[other.example.com]:25 u:p\n' % USER)
    run = configure(ansible, config_dir, 'Pw-New-2', diff=True)
    assert run.rc == 0 and run.result['changed'], run.output
    assert run.result['sasl_passwd_removed'] == ['[SMTP.Example.COM]:587']
    assert read(sasl_passwd) == '%s\n%s %s:Pw-New-2\n[other.example.com]:25 u:p\n' % (MARKER, NEXTHOP, USER)
    for key in (NEXTHOP, '[SMTP.EXAMPLE.COM]:587'):
        assert lookup(config_dir, key) == (0, '%s:Pw-New-2' % USER)
    assert_secrets_hidden(run, 'Pw-Old-1', 'Pw-New-2')
    run = configure(ansible, config_dir, 'Pw-New-2')
    assert run.rc == 0 and not run.result['changed'] and run.result['sasl_passwd_removed'] == [], run.result


def test_lines_are_split_at_newlines_only(ansible, config_dir):
    """A form feed or \\x1c inside an unmanaged line keeps it one line; a missing final newline is added."""
    sasl_passwd = os.path.join(config_dir, 'sasl_passwd')
    odd = '[other.example.com]:25 u:p\x0cq\x1cr\x85s'
    write_secret_file(sasl_passwd, '%s\n# a comment' % odd)
    run = configure(ansible, config_dir, 'Pw-1')
    assert run.rc == 0 and run.result['changed'], run.output
    assert read(sasl_passwd) == '%s\n# a comment\n%s\n%s %s:Pw-1\n' % (odd, MARKER, NEXTHOP, USER)
    assert lookup(config_dir) == (0, '%s:Pw-1' % USER)
    run = configure(ansible, config_dir, 'Pw-1')
    assert run.rc == 0 and not run.result['changed'], run.result
