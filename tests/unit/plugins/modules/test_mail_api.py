# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks the module runner makes after every run fail when they should."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.module_utils.basic import AnsibleModule

from .mail_api import TOKEN, ok


def leaky_main():
    module = AnsibleModule(argument_spec=dict(auth_token=dict(type='str', no_log=True), endpoint=dict(type='str')))
    module.fail_json(msg='rejected token %s' % module.params['auth_token'])


def silent_main():
    AnsibleModule(argument_spec=dict(auth_token=dict(type='str', no_log=True), endpoint=dict(type='str')))


def test_a_token_in_a_message_fails_the_run(api):
    with pytest.raises(AssertionError, match='a password or token given to the module is in its result') as caught:
        api.run(leaky_main)
    assert TOKEN not in str(caught.value)


def test_an_expected_call_that_never_happens_fails_the_run(api):
    api.expect('GetSendQuota', ok('GetSendQuota'))
    with pytest.raises(AssertionError, match='1 expected calls never happened'):
        api.run(leaky_main)
    api.session.expected = []


def test_a_module_that_never_exits_fails_the_run(api):
    with pytest.raises(AssertionError, match='the module returned without exit_json or fail_json'):
        api.run(silent_main)
