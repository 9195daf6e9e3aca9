# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postfix_relay role on Postfix configuration directories of its own (not /etc/postfix).

Each test copies this machine's main.cf into a temp dir and runs the role there with
the service left alone, so these tests never touch the machine's running Postfix and
may run beside test_postfix_relay.py. Here is each role behaviour that needs no mail
delivery: every bad option stops the role before any change or API call, and what only
the host can tell before any change on the host, with one message naming each bad option
by its role variable; the first run, idempotence, check mode and
diff, never a secret in any output (also -vvv), files at 0600; the packages step only when
something is missing; failures and stale temporary files reported; the sender domain.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from harness import DEMO_AUTH, mail_actions, smtp_user_of
from test_postfix_relay import (
    CONFIG_TASK, REPORT_TASK, converge, postconf, read_text, recap, role_vars, sh, task_results,
)

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


BAD_INPUTS = [
    # (options, what the message must say). Each stops the role before any change and any API call.
    ({'postfix_relay_host': '[smtp.example.com]'}, "postfix_relay_host must be the relay's host name"),
    ({'postfix_relay_host': 'smtp.example.com:587'}, "postfix_relay_host must be the relay's host name"),
    ({'postfix_relay_port': 70000}, 'postfix_relay_port must be a TCP port number'),
    ({'postfix_relay_port': 465, 'postfix_relay_tls_wrappermode': False}, 'postfix_relay_tls_wrappermode must be true'),
    ({'postfix_relay_map_type': 'dbm'}, 'postfix_relay_map_type'),
    ({'postfix_relay_smtp_user': 'someone'}, 'Set both postfix_relay_smtp_user and postfix_relay_smtp_password'),
    ({'postfix_relay_smtp_password': 'SECRET-1'}, 'Set both postfix_relay_smtp_user and postfix_relay_smtp_password'),
    ({'postfix_relay_smtp_user': 'some one', 'postfix_relay_smtp_password': 'SECRET-2'}, 'postfix_relay_smtp_user must not be empty'),
    ({'postfix_relay_smtp_user': 'someone', 'postfix_relay_smtp_password': '#SECRET-3'}, 'postfix_relay_smtp_password must not be empty'),
    ({'postfix_relay_smtp_user': 'someone', 'postfix_relay_smtp_password': 'SECRET-4\nx'}, 'postfix_relay_smtp_password must not be empty'),
    ({'postfix_relay_smtp_user': 'someone', 'postfix_relay_smtp_password': 'SECRET 5'}, 'postfix_relay_smtp_password must not be empty'),
    ({'postfix_relay_sasl_security_options': 'noanonymous\nrelayhost = [evil.example.com]'},
     'postfix_relay_sasl_security_options must be one line'),
    ({'postfix_relay_sasl_tls_security_options': '#noanonymous'}, 'postfix_relay_sasl_tls_security_options must be one line'),
    ({'postfix_relay_config_dir': 'etc/postfix'}, 'postfix_relay_config_dir must be an absolute path'),
    ({'postfix_relay_main_cf_extra': {'relayhost': '[evil.example.com]'}}, 'postfix_relay_main_cf_extra must not hold relayhost'),
    ({'postfix_relay_main_cf_extra': {'smtp_host_lookup': 'native\nrelayhost = x'}},
     'postfix_relay_main_cf_extra: the value of smtp_host_lookup must be a one-line string'),
    ({'postfix_relay_main_cf_extra': {'smtp_host_lookup': 'native\x00dns'}},
     'postfix_relay_main_cf_extra: the value of smtp_host_lookup must be a one-line string'),
    # Every problem in one message, each by its role variable.
    ({'postfix_relay_host': 'a b', 'postfix_relay_port': 0, 'postfix_relay_smtp_user': 'x:y', 'postfix_relay_smtp_password': 'SECRET-6'},
     "3 problems: (1) postfix_relay_host must be the relay's host name or IP address alone, without brackets or port "
     "(e.g. smtp.example.com, 192.0.2.25 or 2001:db8::25); got 'a b'. (2) postfix_relay_port must be a TCP port number from "
     "1 to 65535; got 0. (3) postfix_relay_smtp_user must not be empty, contain whitespace, line breaks or ':', or start with '#'."),
    # Checked by fjcloud.mail.identity before its API call (and before packages are installed).
    ({'postfix_relay_sender_domain': 'not a domain'},
     "Verifying the sender domain not a domain (postfix_relay_sender_domain) with fjcloud.mail.identity (on localhost) failed: "
     "domain 'not a domain' is not valid"),
    # Not an option's shape, but also before any change: the wrong Keystone password stops at Keystone.
    ({'postfix_relay_api_auth': 'WRONG-SECRET-7'}, 'Getting the SMTP credentials with fjcloud.mail.smtp_user (on localhost) failed'),
]
SECRETS = ('SECRET-1', 'SECRET-2', 'SECRET-3', 'SECRET-4', 'SECRET 5', 'SECRET-6', 'WRONG-SECRET-7')
# What only the host can tell, checked by the configuring task before it changes anything on the host. The
# options are valid, so the API has given the credentials first (one module execution per host, issue 20).
HOST_BAD_INPUTS = [
    # An instance whose Postfix certainly lacks lmdb, whatever packages this machine has (see lmdb_less).
    ({'postfix_relay_map_type': 'lmdb', 'lmdb_less': True}, "The map type 'lmdb' (postfix_relay_map_type) cannot be used"),
    ({'postfix_relay_tls_ca_file': '/nonexistent/ca.pem'}, 'postfix_relay_tls_ca_file: /nonexistent/ca.pem is not a file on this host'),
    ({'postfix_relay_main_cf_extra': {'my_custom_thing': '1'}}, 'Postfix in CONFIG_DIR does not know the parameter(s) my_custom_thing'),
]


@pytest.mark.parametrize('overrides, message', BAD_INPUTS, ids=[str(index) for index in range(len(BAD_INPUTS))])
def test_bad_input_stops_before_any_change_or_api_call(ansible, emulator, config_dir, overrides, message):
    """One message naming every bad option by its role variable, before any file changes and any API call; no secret shown."""
    overrides = dict(overrides)
    if overrides.pop('lmdb_less', False):
        lmdb_less(config_dir)
    options = dir_vars(emulator, config_dir, **overrides)
    if 'postfix_relay_api_auth' in overrides:  # a Keystone login with a wrong password instead of the token
        del options['postfix_relay_api_token']
        options['postfix_relay_api_auth'] = dict(DEMO_AUTH, auth_url=emulator.auth_url, password=overrides['postfix_relay_api_auth'])
    emulator.clear_log()
    before = files_of(config_dir)
    run = converge(ansible, options, extra_args=['-vvv'])
    assert run.rc != 0, run.output
    assert message.replace('CONFIG_DIR', config_dir) in run.output, run.output
    for secret in SECRETS:
        assert secret not in run.output, 'a secret is in the output'
    assert files_of(config_dir) == before
    assert mail_actions(emulator) == []
    assert smtp_user_of(emulator) is None


@pytest.mark.parametrize('overrides, message', HOST_BAD_INPUTS, ids=[str(index) for index in range(len(HOST_BAD_INPUTS))])
def test_bad_host_input_stops_before_any_change_on_the_host(ansible, emulator, config_dir, overrides, message):
    """The host's checks, in the configuring task's one execution: one message, nothing written, no secret shown."""
    overrides = dict(overrides)
    if overrides.pop('lmdb_less', False):
        lmdb_less(config_dir)
    before = files_of(config_dir)
    run = converge(ansible, dir_vars(emulator, config_dir, **overrides), extra_args=['-vvv'])
    assert run.rc != 0, run.output
    [failure] = task_results(run, 'Stop with the reason of the failure')
    assert failure['msg'].startswith('fjcloud.mail.postfix_relay_config failed: '), failure['msg']
    assert message.replace('CONFIG_DIR', config_dir) in failure['msg'], failure['msg']
    assert files_of(config_dir) == before
    assert smtp_user_of(emulator)['password'] not in run.output


def test_first_run_configures_the_next_changes_nothing_and_no_output_shows_a_secret(ansible, emulator, config_dir):
    """Check mode before the contract has an SMTP user, a first run, a steady run, a rotation seen by --check --diff:
    files 0600, nothing written in check mode, and no password or token in any output, also with -vvv."""
    sasl_passwd = os.path.join(config_dir, 'sasl_passwd')
    run = converge(ansible, dir_vars(emulator, config_dir), extra_args=['--check', '--diff'])
    assert run.rc == 0, run.output
    assert mail_actions(emulator) == [('GetSMTPUserInfo', 404)]
    assert [r['changed'] for r in task_results(run, 'Report that the SMTP user would be created (check mode)')] == [True]
    [report] = task_results(run, REPORT_TASK)
    assert report['msg']['sasl_passwd_changed'] is False  # left unchecked without credentials
    assert smtp_user_of(emulator) is None and not os.path.exists(sasl_passwd)

    run = converge(ansible, dir_vars(emulator, config_dir), extra_args=['-vvv'])
    assert run.rc == 0, run.output
    assert recap(run)['changed'] > 0
    smtp = smtp_user_of(emulator)
    assert read_text(sasl_passwd) == '%s\n[localhost]:%d %s:%s\n' % (MARKER, emulator.smtp_port, smtp['user'], smtp['password'])
    for path in (sasl_passwd, sasl_passwd + '.db'):
        status = os.stat(path)
        assert (status.st_uid, status.st_mode & 0o7777) == (0, 0o600), path
    assert postconf('relayhost', config_dir) == '[localhost]:%d' % emulator.smtp_port
    assert postconf('smtp_tls_security_level', config_dir) == 'secure'
    assert postconf('smtp_tls_CAfile', config_dir) == emulator.ca_cert
    lookup = sh('postmap', '-c', config_dir, '-q', '[localhost]:%d' % emulator.smtp_port, 'hash:' + sasl_passwd)
    assert lookup.stdout.strip() == '%s:%s' % (smtp['user'], smtp['password'])
    assert task_results(run, 'Install the missing packages (apt)') == []  # no package was missing
    assert smtp['password'] not in run.output and DEMO_AUTH['password'] not in run.output

    before = files_of(config_dir)
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output
    assert files_of(config_dir) == before

    # A new password and a new port, seen by --check --diff -vvv with a token: reported, keys only, nothing written.
    rotated = ansible.module('smtp_user', dict(endpoint=emulator.url, ca_cert=emulator.ca_cert,
                                               auth=dict(DEMO_AUTH, auth_url=emulator.auth_url), rotate=True))
    assert rotated.rc == 0, rotated.output
    new = smtp_user_of(emulator)
    token = emulator.token()
    run = converge(ansible, dir_vars(emulator, config_dir, postfix_relay_port=2587, postfix_relay_api_token=token),
                   extra_args=['--check', '--diff', '-vvv'])
    assert run.rc == 0, run.output
    assert [r['changed'] for r in task_results(run, CONFIG_TASK)] == [True]
    [report] = task_results(run, REPORT_TASK)
    assert report['msg']['main_cf_set']['relayhost'] == '[localhost]:2587'
    [sasl_diff] = [d for d in report['msg']['diff'] if d['after_header'] == sasl_passwd]
    assert sasl_diff['after'] == '%s\n[localhost]:2587 ********\n' % MARKER
    assert files_of(config_dir) == before
    for secret in (smtp['password'], new['password'], new['user'], token, DEMO_AUTH['password']):
        assert secret not in run.output, 'a secret is in the output'


def test_missing_debian_main_cf_is_created_only_for_etc_postfix(ansible, emulator, config_dir):
    """Another instance without main.cf is refused by the host check, before any change on the host."""
    os.unlink(os.path.join(config_dir, 'main.cf'))
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc != 0
    assert '%s/main.cf does not exist' % config_dir in run.output, run.output
    assert os.listdir(config_dir) == []


@pytest.mark.skipif(not shutil.which('dpkg-query'), reason='the package check is exercised with dpkg here')
def test_installed_packages_are_not_installed_again(ansible, emulator, config_dir):
    """With postfix_relay_install_packages, the configuring task finds nothing missing: no install task runs."""
    installed = sh('dpkg-query', '-W', '-f', '${db:Status-Status}', 'postfix', 'libsasl2-modules', check=False)
    if installed.stdout != 'installedinstalled':
        pytest.skip('postfix and libsasl2-modules are not both installed on this machine')
    run = converge(ansible, dir_vars(emulator, config_dir, postfix_relay_install_packages=True))
    assert run.rc == 0, run.output
    assert os.path.exists(os.path.join(config_dir, 'sasl_passwd'))  # configured
    # The first run's change notifies the handlers: the one of the packages skips.
    assert [r['_status'] for r in task_results(run, 'Install the missing packages and configure again')] == ['skipped']
    assert task_results(run, 'Install the missing packages (apt)') == []
    run = converge(ansible, dir_vars(emulator, config_dir, postfix_relay_install_packages=True))
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output
    assert task_results(run, 'Install the missing packages and configure again') == []  # no handler runs


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
    [report] = task_results(run, REPORT_TASK)
    assert report['msg']['stale_files_removed'] == ['.sasl_passwd.k3j9x0qa']
    assert not os.path.exists(left)
    assert 'Left-Secret-7' not in run.output
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output


def test_sender_domain_is_verified_once_for_all_hosts(ansible, emulator, tmp_path):
    """The role ensures the sender domain's identity, shows the DNS record, and can wait for it."""
    lines = ['[fleet]']
    for name in ('relay-x', 'relay-y'):
        config_dir = tmp_path / name
        config_dir.mkdir()
        with open('/etc/postfix/main.cf', 'rb') as source:
            (config_dir / 'main.cf').write_bytes(source.read())
        lines.append('%s ansible_connection=local postfix_relay_config_dir=%s postfix_relay_manage_service=false '
                     'ansible_python_interpreter=%s' % (name, config_dir, sys.executable))
    inventory = tmp_path / 'fleet.ini'
    inventory.write_text('\n'.join(lines) + '\n')
    options = role_vars(emulator, postfix_relay_sender_domain='mail.example.com')

    run = converge(ansible, options, hosts='fleet', extra_args=['-i', str(inventory), '--forks', '2'])
    assert run.rc == 0, run.output
    identity = emulator.state()['contracts'][DEMO_AUTH['project_id']]['identities']['mail.example.com']
    assert identity['status'] == 'Pending'
    messages = ' '.join(str(result.get('msg')) for result in run.results)
    assert 'Publish the DNS record _niftycloudess.mail.example.com TXT "%s"' % identity['token'] in messages
    assert [action for action in mail_actions(emulator) if 'Identit' in action[0]] == [
        ('GetIdentityVerificationAttributes', 200), ('VerifyDomainIdentity', 200)]

    # Again: already being verified, nothing to change; then wait until the service says Success.
    emulator.clear_log()
    run = converge(ansible, options, hosts='fleet', extra_args=['-i', str(inventory), '--forks', '2'])
    assert run.rc == 0 and recap(run, 'relay-x')['changed'] == 0, run.output
    assert [action for action in mail_actions(emulator) if 'Identit' in action[0]] == [('GetIdentityVerificationAttributes', 200)]
    emulator.set_identity('mail.example.com', status='Success')
    run = converge(ansible, dict(options, postfix_relay_sender_domain_wait=True), hosts='fleet',
                   extra_args=['-i', str(inventory), '--forks', '2'])
    assert run.rc == 0, run.output
    assert 'Publish the DNS record' not in run.output

    # A verification that failed and does not come back within the timeout stops the role, naming the record.
    emulator.set_identity('other.example.com', status='Pending')
    run = converge(ansible, dict(options, postfix_relay_sender_domain='other.example.com', postfix_relay_sender_domain_wait=True,
                                 postfix_relay_sender_domain_wait_timeout=2), hosts='fleet',
                   extra_args=['-i', str(inventory), '--forks', '2'])
    assert run.rc != 0
    messages = ' '.join(str(result.get('msg')) for result in run.results)
    assert ('Verifying the sender domain other.example.com (postfix_relay_sender_domain) with fjcloud.mail.identity '
            '(on localhost) failed') in messages
    assert 'is still Pending after 2 seconds; publish the TXT record _niftycloudess.other.example.com' in messages
    assert 'demo-password' not in run.output
