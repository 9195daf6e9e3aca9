# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postfix_relay_config's action plugin: the options checked on the controller, the TLS opt-out warning.

The host is a mock here: a test fails if the plugin reaches it when it must not. The role's
runs over SSH are in tests/functional/test_postfix_*.py and tests/fleet.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from unittest.mock import MagicMock

import pytest

from ansible_collections.fjcloud.mail.plugins.action import postfix_relay_config

PASSWORD = 'Pw-Action-1'
NEXTHOP = '[smtp.example.com]:587'


class Plugin:
    """The action plugin of one task with args; records the module executions and warnings."""

    def __init__(self, monkeypatch):
        self.executed = []
        self.warnings = []
        monkeypatch.setattr(postfix_relay_config.display, 'warning', self.warnings.append)

    def run(self, **args):
        task = MagicMock(async_val=0, check_mode=False,
                         args=dict(dict(relay_host='smtp.example.com', smtp_user='relay-user', smtp_password=PASSWORD), **args))
        connection = MagicMock()
        connection._shell.tmpdir = None
        plugin = postfix_relay_config.ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())
        plugin._execute_module = self.execute
        result = plugin.run(task_vars={})
        assert PASSWORD not in json.dumps([result, self.warnings]), 'the password is in the result or a warning'
        return result

    def execute(self, module_name, module_args, task_vars):
        self.executed.append((module_name, module_args))
        return dict(changed=True, nexthop=NEXTHOP)


@pytest.fixture(name='plugin')
def fixture_plugin(monkeypatch):
    return Plugin(monkeypatch)


def test_valid_options_run_the_module_with_the_task_args(plugin):
    result = plugin.run(relay_port='587')
    assert result['changed'] and result['nexthop'] == NEXTHOP
    [(module, args)] = plugin.executed
    assert module == 'fjcloud.mail.postfix_relay_config' and args['relay_port'] == '587'  # the module converts on the host


def test_validate_only_never_reaches_the_host(plugin):
    assert plugin.run(validate_only=True) == dict(changed=False, msg='The options are valid.')
    assert plugin.executed == []


def test_bad_options_fail_on_the_controller_named_as_the_caller_names_them(plugin):
    result = plugin.run(relay_port=0, smtp_password='two words', option_names={'relay_port': 'postfix_relay_port'})
    assert result['failed']
    assert result['msg'].startswith('2 problems: (1) postfix_relay_port must be a TCP port number'), result['msg']
    assert 'two words' not in result['msg'] and plugin.executed == []


def test_wrong_types_and_unknown_options_fail_on_the_controller(plugin):
    result = plugin.run(relay_port='many', colour='blue')
    assert result['failed'] and plugin.executed == []
    assert 'relay_port' in result['msg'] and 'colour' in result['msg'], result['msg']


def test_tls_opt_out_is_warned_on_the_controller(plugin):
    for validate_only in (True, False):
        plugin.run(validate_only=validate_only, tls_verify=False, option_names={'tls_verify': 'postfix_relay_tls_verify'})
    assert plugin.warnings == [
        'postfix_relay_tls_verify is false: Postfix does not verify the certificate of %s, so anyone who intercepts the '
        'connection can present any certificate and receives the SMTP password. Set it to true (the default).' % NEXTHOP] * 2
    plugin.warnings[:] = []
    plugin.run(validate_only=True)
    assert plugin.warnings == []
