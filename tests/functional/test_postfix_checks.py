# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of the host before any change, by real runs of postfix_relay_config (issue 16, findings 7, 10, 11).

Real runs of the module (and of the role, whose configuring task checks the host before it changes anything)
on private Postfix configuration directories; the real postconf and postmap are the judges.
- An unknown main_cf_extra key is an error, never a change on every run; null removes it.
- A CA file that is not PEM is an error; port 465 gets wrapper mode by the module's rule (also in the role).
- A TLS policy table entry or a master.cf override that lowers the relay's TLS level is an error.
The machine's /etc/postfix is never touched.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import uuid

import pytest
import trustme

from harness import mail_actions, smtp_user_of
from test_postfix_relay import converge, task_results
from test_postfix_relay_dirs import dir_vars

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/postmap'),
                                reason='needs root and the Postfix tools (postconf, postmap)')

HOST = 'relay.example.com'
NEXTHOP = '[relay.example.com]:587'
PASSWORD = 'Never-Shown-%s' % uuid.uuid4().hex
MASTER_CF = '/usr/share/postfix/master.cf.dist' if os.path.exists('/usr/share/postfix/master.cf.dist') else '/etc/postfix/master.cf'


def sh(*argv):
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, (argv, completed.stdout, completed.stderr)
    return completed.stdout


@pytest.fixture(name='config_dir')
def fixture_config_dir(tmp_path):
    """A Postfix configuration directory of its own: this machine's main.cf and a stock master.cf."""
    config_dir = tmp_path / 'postfix'
    config_dir.mkdir()
    shutil.copyfile('/etc/postfix/main.cf', str(config_dir / 'main.cf'))
    shutil.copyfile(MASTER_CF, str(config_dir / 'master.cf'))
    return str(config_dir)


@pytest.fixture(name='ca_file', scope='module')
def fixture_ca_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('ca') / 'ca.pem'
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def postconf(config_dir, *argv):
    return sh('postconf', '-c', config_dir, *argv)


def main_cf(config_dir):
    with open(os.path.join(config_dir, 'main.cf'), encoding='utf-8') as handle:
        return handle.read()


def files_of(config_dir):
    files = {}
    for name in sorted(os.listdir(config_dir)):
        with open(os.path.join(config_dir, name), 'rb') as handle:
            files[name] = handle.read()
    return files


def relay_args(config_dir, ca_file, **overrides):
    args = dict(config_dir=config_dir, relay_host=HOST, smtp_user='relay-user', smtp_password=PASSWORD, tls_ca_file=ca_file)
    args.update(overrides)
    return args


def refused(ansible, args, *fragments):
    """Run the module with and without probe: both fail naming every fragment, change nothing, show no secret."""
    config_dir = args['config_dir']
    before = files_of(config_dir)
    for probe in (True, False):
        run = ansible.module('postfix_relay_config', dict(args, probe=probe))
        assert run.rc != 0, run.output
        run.assert_no_traceback()
        message = run.result['msg']
        for fragment in fragments:
            assert fragment in message, message
        assert '\n' not in message
        assert PASSWORD not in run.output
        assert files_of(config_dir) == before
    return message


def converged(ansible, args):
    """Two runs: the first succeeds, the second changes nothing."""
    first = ansible.module('postfix_relay_config', args)
    assert first.rc == 0, first.output
    second = ansible.module('postfix_relay_config', args)
    assert second.rc == 0, second.output
    assert second.result['changed'] is False, second.result
    return first.result


# --------------------------------------------------------------------------- finding 7: main_cf_extra keys

def test_unknown_extra_key_fails_before_any_change(ansible, config_dir, ca_file):
    """{"my_custom_thing": "1"}: postconf does not know it, so it would be set (and reloaded) on every run."""
    args = relay_args(config_dir, ca_file, main_cf_extra={'smtp_host_lookup': 'native', 'my_custom_thing': '1'})
    message = refused(ansible, args, 'main_cf_extra', 'my_custom_thing', 'postconf -d')
    assert 'smtp_host_lookup' not in message
    assert 'my_custom_thing' not in main_cf(config_dir)


def test_known_and_own_parameters_converge(ansible, config_dir, ca_file):
    """Built-in keys, a master.cf service's key and a parameter of one's own that another uses: set once, then no change."""
    extra = {'smtp_host_lookup': 'native', 'relay_destination_concurrency_limit': '5',
             'fjcloud_test_helo': 'client.example.com', 'smtp_helo_name': '$fjcloud_test_helo'}
    converged(ansible, relay_args(config_dir, ca_file, main_cf_extra=extra))
    for key, value in extra.items():
        assert postconf(config_dir, '-h', key).strip() == value, key


def test_unknown_key_of_an_earlier_run_is_removed_by_null(ansible, config_dir, ca_file):
    """A key that postconf -n hides (unknown) is still removed when set to null; then nothing changes."""
    postconf(config_dir, '-e', 'my_custom_thing=1')
    result = converged(ansible, relay_args(config_dir, ca_file, main_cf_extra={'my_custom_thing': None}))
    assert result['main_cf_removed'] == ['my_custom_thing']
    assert 'my_custom_thing' not in main_cf(config_dir)


# --------------------------------------------------------------------------- finding 10: CA file, port 465

def not_pem_ca_files(ca_file):
    with open(ca_file, encoding='ascii') as handle:
        der = ssl.PEM_cert_to_DER_cert(handle.read())
    return {
        'text': b'this is not a certificate\n',
        'der': der,
        'bad-base64': b'-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n',
        'not-a-certificate': b'-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n',
        'empty': b'',
    }


@pytest.mark.parametrize('kind', ['text', 'der', 'bad-base64', 'not-a-certificate', 'empty'])
def test_ca_file_that_is_not_pem_fails_before_any_change(ansible, config_dir, ca_file, tmp_path, kind):
    bad = tmp_path / ('bad-%s.pem' % kind)
    bad.write_bytes(not_pem_ca_files(ca_file)[kind])
    refused(ansible, relay_args(config_dir, str(bad)), 'tls_ca_file', str(bad))


def test_port_465_without_wrapper_mode_is_refused(ansible, config_dir, ca_file):
    """STARTTLS on 465 never starts (the role's refusal is in test_postfix_relay_dirs.py's bad inputs)."""
    refused(ansible, relay_args(config_dir, ca_file, relay_port=465, tls_wrappermode=False),
            'relay_port 465', 'tls_wrappermode must be true')


# --------------------------------------------------------------------------- finding 11: the effective TLS level

def policy_table(config_dir, level, key=NEXTHOP):
    path = os.path.join(config_dir, 'tls_policy')
    with open(path, 'w', encoding='ascii') as handle:
        handle.write('%s %s\n' % (key, level))
    sh('postmap', '-c', config_dir, 'hash:' + path)
    return 'hash:' + path


@pytest.mark.parametrize('tls_verify, level', [
    (True, 'may'), (True, 'none'), (True, 'encrypt'), (True, 'dane'), (False, 'may'), (False, 'none'),
])
def test_policy_entry_lowering_tls_fails_before_any_change(ansible, config_dir, ca_file, tls_verify, level):
    """A smtp_tls_policy_maps entry for the relay, below secure (or encrypt): Postfix would use it, so it is refused."""
    table = policy_table(config_dir, level)
    postconf(config_dir, '-e', 'smtp_tls_policy_maps=' + table)
    refused(ansible, relay_args(config_dir, ca_file, tls_verify=tls_verify),
            'smtp_tls_policy_maps', table, '%s %s' % (NEXTHOP, level), "'%s'" % level)


@pytest.mark.parametrize('tls_verify, level', [(True, 'secure'), (True, 'verify'), (False, 'encrypt'), (False, 'secure')])
def test_policy_entry_at_the_level_or_stronger_is_accepted(ansible, config_dir, ca_file, tls_verify, level):
    postconf(config_dir, '-e', 'smtp_tls_policy_maps=' + policy_table(config_dir, level))
    converged(ansible, relay_args(config_dir, ca_file, tls_verify=tls_verify))


def test_policy_entry_in_other_letter_case_is_found(ansible, config_dir, ca_file):
    """hash tables fold case, as Postfix looks the next hop up."""
    postconf(config_dir, '-e', 'smtp_tls_policy_maps=' + policy_table(config_dir, 'may', key=NEXTHOP.upper()))
    refused(ansible, relay_args(config_dir, ca_file), 'smtp_tls_policy_maps', "'may'")


def test_policy_table_set_in_main_cf_extra_is_checked(ansible, config_dir, ca_file):
    """The check reads main.cf as the run would leave it."""
    table = policy_table(config_dir, 'may')
    refused(ansible, relay_args(config_dir, ca_file, main_cf_extra={'smtp_tls_policy_maps': table}), table)


@pytest.mark.parametrize('service', ['smtp', 'relay'])
def test_master_cf_override_lowering_tls_fails_before_any_change(ansible, config_dir, ca_file, service):
    postconf(config_dir, '-P', '%s/unix/smtp_tls_security_level=may' % service)
    refused(ansible, relay_args(config_dir, ca_file), 'master.cf', '%s/unix' % service, 'smtp_tls_security_level=may')


def test_policy_entry_wins_over_a_master_cf_override(ansible, config_dir, ca_file):
    """As in Postfix, a policy table entry for the next hop overrides the service's level: secure there is accepted."""
    postconf(config_dir, '-P', 'smtp/unix/smtp_tls_security_level=may')
    postconf(config_dir, '-e', 'smtp_tls_policy_maps=' + policy_table(config_dir, 'secure'))
    converged(ansible, relay_args(config_dir, ca_file))


def test_role_stops_before_any_change_when_a_policy_lowers_tls(ansible, emulator, config_dir):
    """The role's configuring task finds the entry before it changes anything on the host.

    Only the host can tell: the options were valid, so the API gave the credentials first (issue 20).
    """
    nexthop = '[localhost]:%d' % emulator.smtp_port
    table = policy_table(config_dir, 'may', key=nexthop)
    postconf(config_dir, '-e', 'smtp_tls_policy_maps=' + table)
    emulator.clear_log()
    before = files_of(config_dir)
    run = converge(ansible, dir_vars(emulator, config_dir))
    assert run.rc != 0, run.output
    [failure] = task_results(run, 'Stop with the reason of the failure')
    assert failure['msg'].startswith('fjcloud.mail.postfix_relay_config failed: '), failure['msg']
    assert '%s: %s may' % (table, nexthop) in failure['msg'], failure['msg']
    assert files_of(config_dir) == before
    assert mail_actions(emulator) == [('CreateSMTPUser', 200)] and smtp_user_of(emulator)['password'] not in run.output


# --------------------------------------------------------------------------- the role agrees with the module

def given(emulator, config_dir, **overrides):
    """Role options with the credentials given: no API call."""
    return dir_vars(emulator, config_dir, postfix_relay_smtp_user='relay-user', postfix_relay_smtp_password=PASSWORD,
                    **overrides)


def test_role_port_465_gets_wrapper_mode_by_the_module_rule(ansible, emulator, config_dir):
    run = converge(ansible, given(emulator, config_dir, postfix_relay_port=465))
    assert run.rc == 0, run.output
    assert postconf(config_dir, '-h', 'smtp_tls_wrappermode').strip() == 'yes'
    run = converge(ansible, given(emulator, config_dir, postfix_relay_port=2465))
    assert run.rc == 0, run.output
    assert postconf(config_dir, '-h', 'smtp_tls_wrappermode').strip() == 'no'


def test_nul_in_an_extra_value_is_refused(ansible, config_dir, ca_file):
    """postconf would cut the value at the NUL (the role's refusal is in test_postfix_relay_dirs.py's bad inputs)."""
    refused(ansible, relay_args(config_dir, ca_file, main_cf_extra={'smtp_host_lookup': 'native\x00dns'}),
            'main_cf_extra', 'smtp_host_lookup')


def test_tls_opt_out_is_warned_by_the_module(ansible, config_dir, ca_file):
    """One warning, given on the controller by the module's action plugin: in a probe, a plain run, validate_only.

    That the role shows it on every run is in test_postfix_secure.py (test_opt_out_warns_and_removes_the_ca_file).
    """
    for mode in ('probe', 'validate_only', None):
        args = relay_args(config_dir, ca_file, tls_verify=False)
        if mode:
            args[mode] = True
        run = ansible.module('postfix_relay_config', args)
        assert run.rc == 0, run.output
        warning = '[WARNING]: tls_verify is false: Postfix does not verify the certificate of %s' % NEXTHOP
        assert ' '.join(run.output.split()).count(warning) == 1, run.output


def test_tls_opt_out_is_warned_with_given_credentials(ansible, emulator, config_dir):
    """Every task of the role that gets the TLS options receives the password (no_log), which hid a module's
    warnings before ansible-core 2.19: the warning is the controller's, shown once per run on every version."""
    run = converge(ansible, given(emulator, config_dir, postfix_relay_tls_verify=False, postfix_relay_tls_ca_file=''))
    assert run.rc == 0, run.output
    output = ' '.join(run.output.split())  # warnings are wrapped to the terminal's width
    assert output.count('[WARNING]: postfix_relay_tls_verify is false: Postfix does not verify the certificate') == 1, run.output
    received = task_results(run, 'Check the options') + task_results(run, 'Configure sasl_passwd, its index and main.cf')
    assert len(received) == 2 and all('censored' in result for result in received), received
    assert PASSWORD not in run.output
