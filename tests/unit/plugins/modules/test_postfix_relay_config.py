# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postfix_relay_config's main(): results, check mode, diff, probe, warnings and failures.

Run in-process on a temporary configuration directory, with postconf and postmap faked
(postfix_fake.py). The parts are tested in tests/unit/plugins/module_utils/test_postfix_*.py;
the real Postfix in tests/functional/test_postfix_*.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest
import trustme
from ansible.module_utils import basic

from ansible_collections.fjcloud.mail.plugins.modules import postfix_relay_config
from postfix_fake import FakePostfix

from .mail_api import AnsibleExitJson, AnsibleFailJson, module_args

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='sasl_passwd and its index are made root-owned (chown 0)')

PASSWORD = 'Pw-Unit-%d' % os.getpid()
NEXTHOP = '[smtp.example.com]:587'


class Runner:
    """Runs main() with options; returns the result of exit_json or fail_json and the warnings."""

    def __init__(self, tmp_path, monkeypatch):
        self.config_dir = str(tmp_path / 'postfix')
        os.mkdir(self.config_dir)
        with open(os.path.join(self.config_dir, 'main.cf'), 'w', encoding='utf-8') as handle:
            handle.write('myhostname = client.example.com\n')
        self.ca_file = str(tmp_path / 'ca.pem')
        trustme.CA().cert_pem.write_to_path(self.ca_file)
        self.postfix = FakePostfix(self.config_dir)
        self.packages = 'postfix libsasl2-modules'
        self.warnings = []
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda module, argv, **kwargs: self.command(argv))
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda module, name, *args, **kwargs: (
            '/usr/bin/dpkg-query' if name == 'dpkg-query' else None))
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda module, warning: self.warnings.append(warning))
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', _raise(AnsibleExitJson))
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', _raise(AnsibleFailJson, failed=True))

    def command(self, argv):
        if argv[0] == 'dpkg-query':
            return 0, ''.join('%s installed\n' % name for name in self.packages.split()), ''
        return self.postfix(argv)

    def run(self, check_mode=False, diff=False, **options):
        args = dict(config_dir=self.config_dir, relay_host='smtp.example.com', smtp_user='relay-user',
                    smtp_password=PASSWORD, tls_ca_file=self.ca_file)
        args.update(options)
        args = dict((key, value) for key, value in args.items() if value is not None)
        args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
        with module_args(args):
            with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as outcome:
                postfix_relay_config.main()
        result = outcome.value.args[0]
        assert PASSWORD not in json.dumps([result, self.warnings]), 'the password is in the result or a warning'
        return result

    def files(self):
        names = sorted(os.listdir(self.config_dir))
        return dict((name, open(os.path.join(self.config_dir, name), 'rb').read()) for name in names)


def _raise(exception, **extra):
    def method(module, **kwargs):
        kwargs.update(extra)
        raise exception(kwargs)
    return method


@pytest.fixture(name='runner')
def fixture_runner(tmp_path, monkeypatch):
    return Runner(tmp_path, monkeypatch)


def test_check_mode_reports_the_change_with_a_masked_diff_and_writes_nothing(runner):
    before = runner.files()
    result = runner.run(check_mode=True, diff=True)
    assert result['changed'] and result['reload_needed'] and result['sasl_passwd_changed'] and result['index_rebuilt']
    assert result['main_cf_set']['relayhost'] == NEXTHOP
    assert [item['after_header'] for item in result['diff']] == [runner.config_dir + '/sasl_passwd', runner.config_dir + '/main.cf']
    assert result['diff'][0]['after'].endswith('%s ********\n' % NEXTHOP)
    assert runner.files() == before


def test_run_then_second_run_changes_nothing(runner):
    first = runner.run()
    assert first['changed'] and first['nexthop'] == NEXTHOP and 'diff' not in first
    assert sorted(runner.files()) == ['main.cf', 'sasl_passwd', 'sasl_passwd.db']
    second = runner.run(diff=True)
    assert second == dict(changed=False, nexthop=NEXTHOP, map_type='hash', main_cf_set={}, main_cf_removed=[],
                          sasl_passwd_changed=False, sasl_passwd_removed=[], index_rebuilt=False, reload_needed=False,
                          stale_files_removed=[], missing_packages=[], package_manager='apt')


def test_probe_checks_and_reports_without_credentials_or_changes(runner):
    before = runner.files()
    result = runner.run(probe=True, smtp_user=None, smtp_password=None, check_packages=True)
    assert result == dict(changed=False, nexthop=NEXTHOP, map_type='hash', missing_packages=[], package_manager='apt')
    assert runner.files() == before


def test_missing_packages_stop_the_module_before_anything_else(runner):
    runner.packages = 'postfix'
    result = runner.run(probe=True, check_packages=True, relay_host='bad host')  # the options are checked first
    assert result['failed'] and result['msg'].startswith('relay_host must be')
    before = runner.files()
    for probe in (True, False):
        result = runner.run(probe=probe, check_packages=True)
        assert result == dict(changed=False, missing_packages=['libsasl2-modules'], package_manager='apt')
    assert [call[0] for call in runner.postfix.calls] == []  # Postfix may not be installed yet
    assert runner.files() == before


def test_validate_only_checks_the_options_and_nothing_else(runner):
    before = runner.files()
    assert runner.run(validate_only=True) == dict(changed=False, msg='The options are valid.')
    assert runner.run(validate_only=True, relay_port=0)['msg'].startswith('relay_port must be a TCP port number')
    assert runner.postfix.calls == [] and runner.files() == before


def test_pending_marker_is_written_before_the_changes_and_reported(runner, monkeypatch):
    marker = os.path.join(runner.config_dir, '.pending')
    applied = []
    monkeypatch.setattr(postfix_relay_config, 'apply_plan', lambda host, plan: applied.append(os.path.exists(marker)))
    result = runner.run(check_mode=True, pending_marker=marker)
    assert (result['reload_pending'], result['running']) == (True, True) and not os.path.exists(marker)
    runner.postfix.running = False
    result = runner.run(pending_marker=marker)
    assert (result['reload_pending'], result['running']) == (True, False)
    assert applied == [True]  # the marker was there before the first change
    assert oct(os.stat(marker).st_mode & 0o7777) == '0o600'
    assert 'running' not in runner.run()


def test_every_bad_option_in_one_message_named_as_the_caller_names_them(runner):
    before = runner.files()
    result = runner.run(probe=True, relay_port=0, smtp_password='two words', main_cf_extra={'relayhost': 'x'},
                        option_names={'relay_port': 'postfix_relay_port', 'smtp_password': 'postfix_relay_smtp_password'})
    assert result['failed']
    assert result['msg'].startswith('3 problems: (1) postfix_relay_port must be a TCP port number'), result['msg']
    assert '(2) postfix_relay_smtp_password must not be empty' in result['msg']
    assert '(3) main_cf_extra must not hold relayhost' in result['msg']
    assert 'two words' not in result['msg'] and runner.postfix.calls == [] and runner.files() == before


def test_user_without_password_is_refused(runner):
    result = runner.run(smtp_password=None)
    assert result['failed'] and result['msg'] == 'Set both smtp_user and smtp_password, or neither of them.'


def test_tls_opt_out_is_left_to_the_action_plugin(runner):
    result = runner.run(tls_verify=False, tls_ca_file=None)
    assert not result.get('failed') and runner.warnings == [], result  # warned on the controller (action plugin)


def test_host_that_cannot_be_written_fails_with_the_reason(runner):
    os.mkdir(os.path.join(runner.config_dir, 'sasl_passwd'))
    result = runner.run()
    assert result['failed']
    assert result['msg'].startswith('Postfix in %s cannot be configured: [Errno 21] Is a directory' % runner.config_dir)


def test_postconf_failure_is_reported_with_its_message(runner, monkeypatch):
    monkeypatch.setattr(runner, 'command', lambda argv: (1, '', 'postconf: fatal: bad main.cf\n'))
    result = runner.run()
    assert result == dict(failed=True, msg='postconf -c %s failed (exit code 1): postconf: fatal: bad main.cf' % runner.config_dir)
