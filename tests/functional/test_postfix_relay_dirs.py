# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postfix_relay role on Postfix configuration directories of its own (not /etc/postfix).

Each test copies this machine's main.cf into a temp dir and runs the role there with
the service left alone, so these tests never touch the machine's running Postfix and
may run beside test_postfix_relay.py. They check what the lean task list keeps:
validation before any change or API call, the host check before the API call, the
packages step only when something is missing, idempotence, check mode and diff
without secrets, and files at 0600.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from harness import mail_actions, smtp_user_of
from test_postfix_relay import converge, postconf, read_text, recap, sh, task_results

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/postmap'),
                                reason='needs root and the Postfix tools (postconf, postmap)')

MARKER = '# managed by fjcloud.mail.postfix_relay'


@pytest.fixture(name='config_dir')
def fixture_config_dir(tmp_path):
    config_dir = tmp_path / 'postfix'
    config_dir.mkdir()
    shutil.copyfile('/etc/postfix/main.cf', str(config_dir / 'main.cf'))
    return str(config_dir)


def dir_vars(emulator, config_dir, **overrides):
    options = dict(
        postfix_relay_host='localhost',
        postfix_relay_port=emulator.smtp_port,
        postfix_relay_tls_ca_file=emulator.ca_cert,
        postfix_relay_config_dir=config_dir,
        postfix_relay_install_packages=False,
        postfix_relay_manage_service=False,
        postfix_relay_api_endpoint=emulator.url,
        postfix_relay_api_ca_cert=emulator.ca_cert,
        postfix_relay_api_token=emulator.token(),
    )
    options.update(overrides)
    return options


def files_of(config_dir):
    return {name: read_text(os.path.join(config_dir, name)) for name in sorted(os.listdir(config_dir))
            if os.path.isfile(os.path.join(config_dir, name)) and not name.endswith('.db')}


def lmdb_less(config_dir):
    """Hide the dynamically loaded map types (lmdb, cdb) from this instance, whatever is installed."""
    with open(os.path.join(config_dir, 'dynamicmaps.cf'), 'w', encoding='utf-8'):
        pass
    sh('postconf', '-c', config_dir, '-e', 'meta_directory=%s' % config_dir)
    return config_dir


@pytest.mark.parametrize('overrides, message', [
    ({'postfix_relay_port': 0}, 'postfix_relay_port must be a TCP port number'),
    ({'postfix_relay_host': '[smtp.example.com]:587'}, 'postfix_relay_host must be'),
    ({'postfix_relay_smtp_user': 'u'}, 'Set both postfix_relay_smtp_user and postfix_relay_smtp_password'),
    ({'postfix_relay_smtp_user': 'a b', 'postfix_relay_smtp_password': 'SECRET-5'}, 'postfix_relay_smtp_user must not be empty'),
    ({'postfix_relay_sasl_tls_security_options': 'x\ny'}, 'postfix_relay_sasl_tls_security_options must be'),
    ({'postfix_relay_main_cf_extra': {'smtp_tls_CAfile': '/x'}}, 'postfix_relay_main_cf_extra must'),
    # Found by the host check, which runs before the API call.
    ({'postfix_relay_tls_ca_file': '/nonexistent/ca.pem'}, 'is not a file on this host'),
    ({'postfix_relay_map_type': 'lmdb', 'lmdb_less': True}, "The map type 'lmdb'"),
])
def test_bad_input_stops_before_any_change_or_api_call(ansible, emulator, config_dir, overrides, message):
    if overrides.pop('lmdb_less', False):
        lmdb_less(config_dir)
    emulator.clear_log()
    before = files_of(config_dir)
    run = converge(ansible, dir_vars(emulator, config_dir, **overrides))
    assert run.rc != 0, run.output
    assert message in run.output, run.output
    assert 'SECRET-5' not in run.output
    assert files_of(config_dir) == before
    assert mail_actions(emulator) == []
    assert smtp_user_of(emulator) is None


def test_converge_idempotent_check_and_diff(ansible, emulator, config_dir):
    """First run configures, the second changes nothing, --check --diff reports a new port without changing or showing secrets."""
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc == 0, run.output
    assert recap(run)['changed'] > 0
    smtp = smtp_user_of(emulator)
    sasl_passwd = os.path.join(config_dir, 'sasl_passwd')
    assert read_text(sasl_passwd) == '%s\n[localhost]:%d %s:%s\n' % (MARKER, emulator.smtp_port, smtp['user'], smtp['password'])
    for path in (sasl_passwd, sasl_passwd + '.db'):
        status = os.stat(path)
        assert (status.st_uid, status.st_mode & 0o7777) == (0, 0o600), path
    assert postconf('relayhost', config_dir) == '[localhost]:%d' % emulator.smtp_port
    assert postconf('smtp_tls_security_level', config_dir) == 'secure'
    assert postconf('smtp_tls_CAfile', config_dir) == emulator.ca_cert
    lookup = sh('postmap', '-c', config_dir, '-q', '[localhost]:%d' % emulator.smtp_port, 'hash:' + sasl_passwd)
    assert lookup.stdout.strip() == '%s:%s' % (smtp['user'], smtp['password'])
    # Nothing was installed: no package was missing.
    assert task_results(run, 'Install the missing packages (apt)') == []

    before = files_of(config_dir)
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output
    assert files_of(config_dir) == before

    run = converge(ansible, dir_vars(emulator, config_dir, postfix_relay_port=2587), extra_args=['--check', '--diff'])
    assert run.rc == 0, run.output
    assert recap(run)['changed'] > 0
    [report] = task_results(run, "Report what changed in Postfix's configuration (passwords masked)")
    assert report['msg']['main_cf_set']['relayhost'] == '[localhost]:2587'
    assert files_of(config_dir) == before
    assert smtp['password'] not in run.output


def test_missing_debian_main_cf_is_created_only_for_etc_postfix(ansible, emulator, config_dir):
    """Another instance without main.cf is refused by the host check, before the API call."""
    os.unlink(os.path.join(config_dir, 'main.cf'))
    emulator.clear_log()
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc != 0
    assert '%s/main.cf does not exist' % config_dir in run.output, run.output
    assert os.listdir(config_dir) == []
    assert mail_actions(emulator) == []


@pytest.mark.skipif(not shutil.which('dpkg-query'), reason='the package check is exercised with dpkg here')
def test_installed_packages_are_not_installed_again(ansible, emulator, config_dir):
    """With postfix_relay_install_packages, the host check finds nothing missing: no install task runs."""
    installed = sh('dpkg-query', '-W', '-f', '${db:Status-Status}', 'postfix', 'libsasl2-modules', check=False)
    if installed.stdout != 'installedinstalled':
        pytest.skip('postfix and libsasl2-modules are not both installed on this machine')
    run = converge(ansible, dir_vars(emulator, config_dir, postfix_relay_install_packages=True))
    assert run.rc == 0, run.output
    [check] = task_results(run, "Check this host's Postfix")
    assert check['missing_packages'] == [] and check['package_manager'] == 'apt'
    [install] = task_results(run, 'Install the missing packages, verify the sender domain')
    assert install['_status'] == 'skipped'


def test_failed_configuration_is_reported_without_secrets(ansible, emulator, config_dir):
    """The configuration task is no_log; the block's rescue still says why it failed, and shows no secret."""
    os.mkdir(os.path.join(config_dir, 'sasl_passwd'))  # cannot be replaced by a file
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc != 0
    [failure] = [r for r in run.results if r['_status'] == 'failed' and 'msg' in r]
    assert failure['msg'].startswith('fjcloud.mail.postfix_relay_config failed: '), failure['msg']
    assert 'Is a directory' in failure['msg'], failure['msg']
    smtp = smtp_user_of(emulator)
    assert smtp and smtp['password'] not in run.output
    assert os.path.isdir(os.path.join(config_dir, 'sasl_passwd'))


def test_stale_temporary_file_is_removed_and_reported(ansible, emulator, config_dir):
    """Issue 16: a temporary sasl_passwd that a killed run left (with a password) goes with the role's next run, reported."""
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc == 0, run.output
    left = os.path.join(config_dir, '.sasl_passwd.k3j9x0qa')
    descriptor = os.open(left, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, 'w') as handle:
        handle.write('[localhost]:25 someone:Left-Secret-7\n')
    past = time.time() - 3600
    os.utime(left, (past, past))

    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc == 0, run.output
    [report] = task_results(run, "Report what changed in Postfix's configuration (passwords masked)")
    assert report['msg']['stale_files_removed'] == ['.sasl_passwd.k3j9x0qa']
    assert not os.path.exists(left)
    assert 'Left-Secret-7' not in run.output
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output
