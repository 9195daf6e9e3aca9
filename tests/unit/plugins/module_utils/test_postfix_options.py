# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postfix_options: the one check of postfix_relay_config's options returns every problem at once."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import (
    OWNED_KEYS, OptionNames, nexthop_of, problems_text, validate, wrapper_mode,
)

PASSWORD = 'Pw-Never-Shown-1'
ROLE_NAMES = OptionNames({'relay_host': 'postfix_relay_host', 'relay_port': 'postfix_relay_port',
                          'smtp_user': 'postfix_relay_smtp_user', 'smtp_password': 'postfix_relay_smtp_password',
                          'main_cf_extra': 'postfix_relay_main_cf_extra', 'tls_wrappermode': 'postfix_relay_tls_wrappermode'})


def params(**overrides):
    """The options as AnsibleModule gives them, with the argument spec's defaults."""
    values = dict(config_dir='/etc/postfix', relay_host='smtp.example.com', relay_port=587, smtp_user='relay-user',
                  smtp_password=PASSWORD, map_type=None, tls_wrappermode=None, tls_verify=True, tls_ca_file=None,
                  sasl_security_options='noanonymous', sasl_tls_security_options='noanonymous', main_cf_extra={})
    values.update(overrides)
    return values


def test_good_options_have_no_problem():
    assert validate(params(relay_host='2001:db8::25', main_cf_extra={'smtp_host_lookup': 'native', 'x': None})) == []
    assert validate(params(smtp_user=None, smtp_password=None, tls_ca_file='/etc/ssl/ca.pem')) == []


def test_every_problem_is_reported_at_once_by_the_callers_names():
    problems = validate(params(relay_host='[smtp.example.com]:587', relay_port=70000, smtp_password='has space',
                               sasl_security_options='noanonymous\nrelayhost = x', config_dir='etc/postfix',
                               main_cf_extra={'relayhost': '[evil]', 'smtp_host_lookup': 'native\x00dns'}), ROLE_NAMES)
    assert [problem.split(' ', 1)[0] for problem in problems] == [
        'postfix_relay_host', 'postfix_relay_port', 'postfix_relay_smtp_password', 'sasl_security_options',
        'config_dir', 'postfix_relay_main_cf_extra', 'postfix_relay_main_cf_extra:']
    text = problems_text(problems)
    assert text.startswith('7 problems: (1) postfix_relay_host must be') and '(7) postfix_relay_main_cf_extra:' in text
    assert '\n' not in text and PASSWORD not in text and 'has space' not in text


@pytest.mark.parametrize('overrides, expected', [
    ({'relay_host': 'smtp.example.com:587'}, "relay_host must be the relay's host name"),
    ({'relay_host': '[smtp.example.com]'}, "relay_host must be the relay's host name"),
    ({'relay_host': 'a b'}, "relay_host must be"),
    ({'relay_port': 0}, 'relay_port must be a TCP port number from 1 to 65535; got 0.'),
    ({'relay_port': 465, 'tls_wrappermode': False}, 'relay_port 465 speaks TLS from the first byte (SMTPS): tls_wrappermode must be true'),
    ({'smtp_password': None}, 'Set both smtp_user and smtp_password, or neither of them.'),
    ({'smtp_user': None}, 'Set both smtp_user and smtp_password, or neither of them.'),
    ({'smtp_user': 'a:b'}, "smtp_user must not be empty, contain whitespace, line breaks or ':', or start with '#'."),
    ({'smtp_user': ''}, 'smtp_user must not be empty'),
    ({'smtp_password': '#' + PASSWORD}, 'smtp_password must not be empty, contain whitespace or line breaks'),
    ({'smtp_password': PASSWORD + '\n'}, 'smtp_password must not be empty'),
    ({'sasl_tls_security_options': '#noanonymous'}, 'sasl_tls_security_options must be one line of SASL security option names'),
    ({'sasl_security_options': 'noanonymous; rm'}, 'sasl_security_options must be one line'),
    ({'tls_ca_file': 'ca.pem'}, "tls_ca_file must be an absolute path without whitespace; got 'ca.pem'."),
    ({'config_dir': '/etc/post fix'}, 'config_dir must be an absolute path without whitespace'),
    ({'main_cf_extra': {'smtp_tls_CAfile': '/x'}}, 'main_cf_extra must not hold smtp_tls_CAfile: it is set from the relay options'),
    ({'main_cf_extra': {'bad-key': 'x'}}, "main_cf_extra: 'bad-key' is not a main.cf parameter name."),
    ({'main_cf_extra': {1: 'x'}}, 'main_cf_extra: 1 is not a main.cf parameter name.'),
    ({'main_cf_extra': {'smtp_host_lookup': 'native\rdns'}}, 'main_cf_extra: the value of smtp_host_lookup must be a one-line string'),
    ({'main_cf_extra': {'smtp_host_lookup': 'native\ndns'}}, 'main_cf_extra: the value of smtp_host_lookup must be'),
    ({'main_cf_extra': {'smtp_host_lookup': 'native\x00dns'}}, 'main_cf_extra: the value of smtp_host_lookup must be'),
    ({'main_cf_extra': {'smtp_tls_note_starttls_offer': True}}, 'main_cf_extra: the value of smtp_tls_note_starttls_offer must be'),
])
def test_each_bad_option_is_named(overrides, expected):
    [problem] = validate(params(**overrides))
    assert problem.startswith(expected), problem
    assert PASSWORD not in problem


def test_every_owned_key_is_refused_in_main_cf_extra():
    problems = validate(params(main_cf_extra=dict((key, 'x') for key in OWNED_KEYS)))
    assert sorted(problem.split()[4].rstrip(':') for problem in problems) == sorted(OWNED_KEYS)


def test_a_port_out_of_range_is_not_also_a_wrapper_mode_problem():
    assert len(validate(params(relay_port=70000, tls_wrappermode=False))) == 1


@pytest.mark.parametrize('host, port, nexthop', [
    ('smtp.example.com', 587, '[smtp.example.com]:587'),
    ('192.0.2.25', 25, '[192.0.2.25]:25'),
    ('2001:db8::25', 465, '[ipv6:2001:db8::25]:465'),
])
def test_nexthop(host, port, nexthop):
    assert nexthop_of(host, port) == nexthop


@pytest.mark.parametrize('port, option, expected', [(465, None, True), (587, None, False), (2465, True, True), (587, False, False)])
def test_wrapper_mode_follows_port_465_unless_set(port, option, expected):
    assert wrapper_mode(params(relay_port=port, tls_wrappermode=option)) is expected


def test_one_problem_is_its_own_text():
    assert problems_text(['a.']) == 'a.'
