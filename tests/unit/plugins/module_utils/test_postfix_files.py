# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postfix_files: the secret files' writer and the temporary files a killed run leaves, on temporary directories.

postmap is the fake of postfix_fake.py (it records the mode of its source and the umask it
runs under, and writes the index under that umask as postmap does). The real postmap, a
killed one and one without room to write are in tests/functional/test_postfix_index.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import time

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_files import (
    STALE_AFTER, install_sasl_passwd, read_text, root_only, stale_temp_files,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import PostfixRelayError
from postfix_fake import FakePostfix

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the files are made root-owned (chown 0)')

NEXTHOP = '[smtp.example.com]:587'
CONTENT = '# managed by fjcloud.mail.postfix_relay\n%s user:Pw-New-1\n' % NEXTHOP


@pytest.fixture(name='postfix')
def fixture_postfix(tmp_path):
    (tmp_path / 'main.cf').write_text('')
    return FakePostfix(tmp_path)


@pytest.fixture(name='host')
def fixture_host(postfix):
    return postfix.host()


def mode(path):
    return os.stat(str(path)).st_mode & 0o7777


def write(path, text, file_mode=0o600, age=0):
    path.write_text(text)
    os.chmod(str(path), file_mode)
    if age:
        past = time.time() - age
        os.utime(str(path), (past, past))


def entries(directory):
    return sorted(os.listdir(str(directory)))


def test_new_files_are_root_only_from_the_start(host, postfix, tmp_path):
    os.umask(0o022)
    install_sasl_passwd(host, 'hash', CONTENT, NEXTHOP, 'user:Pw-New-1', replace_source=True)
    # postmap saw its source 0600 and ran under umask 077: the index was never readable by others.
    assert postfix.builds == [(0o600, 0o077)]
    assert os.umask(0o022) == 0o022  # the module's umask is back
    assert read_text(host.sasl_passwd) == CONTENT
    assert mode(host.sasl_passwd) == mode(host.sasl_passwd + '.db') == 0o600
    assert root_only(host.sasl_passwd) and root_only(host.sasl_passwd + '.db')
    assert host.map_lookup('hash', host.sasl_passwd, NEXTHOP) == 'user:Pw-New-1'
    assert entries(tmp_path) == ['main.cf', 'sasl_passwd', 'sasl_passwd.db']


def test_index_only_rebuild_leaves_the_source(host, tmp_path):
    write(tmp_path / 'sasl_passwd', CONTENT)
    before = os.stat(host.sasl_passwd)
    install_sasl_passwd(host, 'btree', CONTENT, NEXTHOP, 'user:Pw-New-1', replace_source=False)
    after = os.stat(host.sasl_passwd)
    assert (after.st_ino, after.st_mtime) == (before.st_ino, before.st_mtime)
    assert host.map_lookup('btree', host.sasl_passwd, NEXTHOP) == 'user:Pw-New-1'
    assert entries(tmp_path) == ['main.cf', 'sasl_passwd', 'sasl_passwd.db']


def test_failed_postmap_leaves_the_previous_files(host, postfix, tmp_path):
    install_sasl_passwd(host, 'hash', CONTENT.replace('Pw-New-1', 'Pw-Old-2'), NEXTHOP, 'user:Pw-Old-2', replace_source=True)
    postfix.postmap_exit, postfix.postmap_error = -25, 'postmap: fatal: hash:... File too large'
    with pytest.raises(PostfixRelayError) as failure:
        install_sasl_passwd(host, 'hash', CONTENT, NEXTHOP, 'user:Pw-New-1', replace_source=True)
    message = str(failure.value)
    assert message == ('postmap could not build the index of %s (killed by signal 25): postmap: fatal: hash:... File too '
                       'large The previous index is left in place.' % host.sasl_passwd)
    assert 'Pw-' not in message
    assert host.map_lookup('hash', host.sasl_passwd, NEXTHOP) == 'user:Pw-Old-2'
    assert 'Pw-Old-2' in read_text(host.sasl_passwd)
    assert entries(tmp_path) == ['main.cf', 'sasl_passwd', 'sasl_passwd.db']  # no temporary file left


def test_index_that_does_not_answer_is_not_installed(host, tmp_path):
    """A source whose first line for the key is another one's: the index answers something else, so it is refused."""
    shadowed = '%s user:Pw-Other-3\n%s' % (NEXTHOP.upper(), CONTENT)
    with pytest.raises(PostfixRelayError, match="does not answer .* with the relay's credentials; the previous index"):
        install_sasl_passwd(host, 'hash', shadowed, NEXTHOP, 'user:Pw-New-1', replace_source=True)
    assert entries(tmp_path) == ['main.cf']


def test_stale_temporary_files_are_those_of_killed_runs(tmp_path):
    now = time.time()
    write(tmp_path / '.sasl_passwd.killed01', 'x', age=STALE_AFTER + 1)
    write(tmp_path / '.sasl_passwd.killed01.db', 'x', age=STALE_AFTER + 1)
    write(tmp_path / '.sasl_passwd.young002', 'x')  # may be a run that has not locked it yet
    write(tmp_path / '.sasl_passwd.foreign3', 'x', age=60)
    os.chown(str(tmp_path / '.sasl_passwd.foreign3'), 65534, 65534)  # not root's: not this module's
    (tmp_path / '.sasl_passwd.adir0004').mkdir()
    os.symlink('/etc/passwd', str(tmp_path / '.sasl_passwd.link0005'))
    write(tmp_path / 'sasl_passwd', 'x', age=60)
    write(tmp_path / '.sasl_passwd.live0006', 'x', age=60)
    write(tmp_path / '.sasl_passwd.live0006.db', 'x', age=60)
    with open(str(tmp_path / '.sasl_passwd.live0006'), 'rb') as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a live run holds its temporary sasl_passwd locked
        assert stale_temp_files(str(tmp_path), now) == ['.sasl_passwd.killed01', '.sasl_passwd.killed01.db']
    assert stale_temp_files(str(tmp_path), now) == [
        '.sasl_passwd.killed01', '.sasl_passwd.killed01.db', '.sasl_passwd.live0006', '.sasl_passwd.live0006.db']


def test_root_only(tmp_path):
    path = tmp_path / 'secret'
    assert root_only(str(path))  # missing
    write(path, 'x', file_mode=0o640)
    assert not root_only(str(path))
    os.chmod(str(path), 0o600)
    assert root_only(str(path))
    os.chown(str(path), 0, 65534)
    assert not root_only(str(path))
