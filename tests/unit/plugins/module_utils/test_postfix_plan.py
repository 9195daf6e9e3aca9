# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postfix_plan: preflight, plan and apply on a temporary configuration directory with a fake postconf/postmap.

The plan writes nothing and says exactly what apply does; a second plan after apply changes
nothing. The real Postfix is the judge in tests/functional/test_postfix_*.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

import pytest
import trustme

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import OptionNames, PostfixRelayError
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_plan import (
    Preflight, apply_plan, plan_relay, preflight, remember_reload, service_state,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_tables import MARKER
from postfix_fake import FakePostfix

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='sasl_passwd and its index are made root-owned (chown 0)')

NEXTHOP = '[smtp.example.com]:587'
NAME = OptionNames()


@pytest.fixture(name='ca_file', scope='module')
def fixture_ca_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('ca') / 'ca.pem'
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(name='postfix')
def fixture_postfix(tmp_path):
    (tmp_path / 'main.cf').write_text('# the vendor main.cf\nmyhostname = client.example.com\n')
    return FakePostfix(tmp_path)


@pytest.fixture(name='host')
def fixture_host(postfix):
    return postfix.host()


def params(host, ca_file, **overrides):
    values = dict(config_dir=host.config_dir, relay_host='smtp.example.com', relay_port=587, smtp_user='relay-user',
                  smtp_password='Pw-New-1', map_type=None, tls_wrappermode=None, tls_verify=True, tls_ca_file=ca_file,
                  sasl_security_options='noanonymous', sasl_tls_security_options='noanonymous', main_cf_extra={},
                  probe=False, check_packages=False, packages=None)
    values.update(overrides)
    return values


def plan(host, options):
    found = Preflight('apt', [])
    preflight(host, options, NAME, found)
    return plan_relay(host, options, found)


def snapshot(directory):
    files = {}
    for name in sorted(os.listdir(directory)):
        status = os.stat(os.path.join(directory, name))
        with open(os.path.join(directory, name), 'rb') as handle:
            files[name] = (handle.read(), status.st_mode, status.st_mtime)
    return files


def test_first_plan_writes_nothing_and_apply_does_what_it_says(host, ca_file, tmp_path):
    options = params(host, ca_file)
    before = snapshot(str(tmp_path))
    first = plan(host, options)
    assert snapshot(str(tmp_path)) == before  # planning wrote nothing
    result = first.result(diff=True)
    assert result['changed'] and result['reload_needed'] and result['sasl_passwd_changed'] and result['index_rebuilt']
    assert result['nexthop'] == NEXTHOP and result['map_type'] == 'hash'
    assert result['main_cf_set'] == {
        'relayhost': NEXTHOP, 'smtp_sasl_auth_enable': 'yes', 'smtp_sasl_password_maps': 'hash:%s' % host.sasl_passwd,
        'smtp_sasl_security_options': 'noanonymous', 'smtp_sasl_tls_security_options': 'noanonymous',
        'smtp_tls_security_level': 'secure', 'smtp_tls_CAfile': ca_file}  # smtp_tls_wrappermode: no already
    assert result['main_cf_removed'] == [] and result['sasl_passwd_removed'] == [] and result['stale_files_removed'] == []
    [sasl_diff, main_cf_diff] = result['diff']
    assert sasl_diff == dict(before_header=host.sasl_passwd, after_header=host.sasl_passwd, before='',
                             after='%s\n%s ********\n' % (MARKER, NEXTHOP))
    assert 'relayhost = %s\n' % NEXTHOP in main_cf_diff['after'] and 'relayhost = \n' in main_cf_diff['before']
    assert 'Pw-New-1' not in repr(result)

    apply_plan(host, first)
    with open(host.sasl_passwd, encoding='utf-8') as handle:
        assert handle.read() == '%s\n%s relay-user:Pw-New-1\n' % (MARKER, NEXTHOP)
    with open(host.main_cf, encoding='utf-8') as handle:
        main_cf = handle.read()
    assert main_cf.startswith('# the vendor main.cf\nmyhostname = client.example.com\n')
    assert 'relayhost = %s\n' % NEXTHOP in main_cf

    second = plan(host, options)
    assert second.result(diff=True) == dict(
        changed=False, nexthop=NEXTHOP, map_type='hash', main_cf_set={}, main_cf_removed=[], sasl_passwd_changed=False,
        sasl_passwd_removed=[], index_rebuilt=False, reload_needed=False, stale_files_removed=[],
        missing_packages=[], package_manager='apt')


def test_password_change_rewrites_the_line_in_place_and_keeps_other_lines(host, postfix, ca_file):
    options = params(host, ca_file)
    apply_plan(host, plan(host, options))
    with open(host.sasl_passwd, 'a', encoding='utf-8') as handle:
        handle.write('# a comment of mine\n[other.example.com]:25 u:Pw-Other-2\n')
    changed = plan(host, dict(options, smtp_password='Pw-Newer-3'))
    result = changed.result(diff=True)
    assert result['sasl_passwd_changed'] and result['index_rebuilt'] and result['main_cf_set'] == {}
    [sasl_diff] = result['diff']
    assert sasl_diff['before'] + '# (the credentials change)\n' == sasl_diff['after']
    assert 'Pw-' not in repr(result)
    apply_plan(host, changed)
    with open(host.sasl_passwd, encoding='utf-8') as handle:
        assert handle.read() == '%s\n%s relay-user:Pw-Newer-3\n# a comment of mine\n[other.example.com]:25 u:Pw-Other-2\n' % (
            MARKER, NEXTHOP)
    assert host.map_lookup('hash', host.sasl_passwd, '[other.example.com]:25') == 'u:Pw-Other-2'


def test_case_variant_of_the_relay_line_is_removed_and_reported(host, ca_file, tmp_path):
    (tmp_path / 'sasl_passwd').write_text('[SMTP.Example.COM]:587 u:Pw-Old-1\n')
    result = plan(host, params(host, ca_file)).result()
    assert result['sasl_passwd_removed'] == ['[SMTP.Example.COM]:587']


@pytest.mark.parametrize('damage', ['missing', 'older than sasl_passwd', 'outdated value', 'not root-only'])
def test_damaged_index_is_rebuilt(host, ca_file, damage):
    options = params(host, ca_file)
    apply_plan(host, plan(host, options))
    index = host.sasl_passwd + '.db'
    if damage == 'missing':
        os.unlink(index)
    elif damage == 'older than sasl_passwd':
        past = time.time() - 60
        os.utime(index, (past, past))
    elif damage == 'outdated value':
        with open(index, 'w', encoding='utf-8') as handle:
            handle.write('{"%s": "relay-user:Pw-Old-0"}' % NEXTHOP)
    else:
        os.chmod(index, 0o644)
    fixed = plan(host, options)
    result = fixed.result()
    assert result['changed'] and not result['sasl_passwd_changed']
    assert result['index_rebuilt'] is (damage != 'not root-only')
    apply_plan(host, fixed)
    assert host.map_lookup('hash', host.sasl_passwd, NEXTHOP) == 'relay-user:Pw-New-1'
    assert os.stat(index).st_mode & 0o7777 == 0o600
    assert plan(host, options).changed is False


def test_stale_temporary_files_are_planned_then_removed(host, ca_file, tmp_path):
    options = params(host, ca_file)
    apply_plan(host, plan(host, options))
    left = tmp_path / '.sasl_passwd.k3j9x0qa'
    left.write_text('[x]:25 u:Pw-Left-1\n')
    past = time.time() - 3600
    os.utime(str(left), (past, past))
    cleanup = plan(host, options)
    assert cleanup.result()['stale_files_removed'] == ['.sasl_passwd.k3j9x0qa'] and cleanup.changed
    assert left.exists()
    apply_plan(host, cleanup)
    assert not left.exists()


def test_extra_key_null_removes_it_and_no_ca_file_removes_smtp_tls_cafile(host, postfix, ca_file):
    options = params(host, ca_file, main_cf_extra={'smtp_tls_loglevel': '1'})
    apply_plan(host, plan(host, options))
    result = plan(host, dict(options, tls_verify=False, tls_ca_file=None, main_cf_extra={'smtp_tls_loglevel': None})).result()
    assert result['main_cf_removed'] == ['smtp_tls_CAfile', 'smtp_tls_loglevel']
    assert result['main_cf_set'] == {'smtp_tls_security_level': 'encrypt'}


def test_without_credentials_sasl_passwd_is_left_unchecked(host, ca_file, tmp_path):
    result = plan(host, params(host, ca_file, smtp_user=None, smtp_password=None)).result(diff=True)
    assert result['sasl_passwd_changed'] is False and result['index_rebuilt'] is False
    assert [item['after_header'] for item in result['diff']] == [host.main_cf]


def test_preflight_reports_every_host_problem_at_once(host, postfix, tmp_path):
    postfix.services['smtp/unix/smtp_tls_security_level'] = 'may'
    (tmp_path / 'master.cf').write_text('smtp unix - - y - - smtp\n  -o smtp_tls_security_level=may\n')
    bad_ca = tmp_path / 'bad.pem'
    bad_ca.write_text('not a certificate\n')
    options = params(host, str(bad_ca), map_type='lmdb', main_cf_extra={'my_custom_thing': '1', 'smtp_host_lookup': 'native'})
    with pytest.raises(PostfixRelayError) as failure:
        preflight(host, options, OptionNames({'tls_ca_file': 'postfix_relay_tls_ca_file'}), Preflight('apt', []))
    message = str(failure.value)
    assert message.startswith("4 problems: (1) The map type 'lmdb' (map_type) cannot be used"), message
    assert '(2) postfix_relay_tls_ca_file: %s holds no PEM certificate' % bad_ca in message
    assert '(3) main_cf_extra: Postfix in %s does not know the parameter(s) my_custom_thing ' % host.config_dir in message
    assert "(4) The TLS security level for the relay %s is lowered to 'may' by master.cf" % NEXTHOP in message
    assert 'smtp_host_lookup' not in message and 'Pw-New-1' not in message


def test_preflight_stops_when_postfix_lmdb_is_missing(host, ca_file):
    for probe in (True, False):
        found = Preflight('apt', [])
        preflight(host, params(host, ca_file, map_type='lmdb', probe=probe, check_packages=True), NAME, found)
        assert found.result() == dict(changed=False, missing_packages=['postfix-lmdb'], package_manager='apt',
                                      nexthop=NEXTHOP, map_type='lmdb')


def test_reload_is_remembered_until_the_caller_forgets_it(tmp_path):
    postfix = FakePostfix(tmp_path)
    marker = str(tmp_path / '.pending')
    assert service_state(postfix.host(), marker, reload_needed=False) == dict(reload_pending=False, running=True)
    remember_reload(marker)
    status = os.stat(marker)
    assert (status.st_uid, status.st_mode & 0o7777, status.st_size) == (0, 0o600, 0)
    postfix.running = False
    assert service_state(postfix.host(), marker, reload_needed=False) == dict(reload_pending=True, running=False)
    os.unlink(marker)
    assert service_state(postfix.host(), marker, reload_needed=True) == dict(reload_pending=True, running=False)


def test_postconf_is_asked_only_for_what_it_must_expand(host, postfix, ca_file, tmp_path):
    """A steady run: no main_cf_extra, no $name in the TLS route keys, no TLS key in master.cf: one postconf."""
    (tmp_path / 'master.cf').write_text('smtp unix - - y - - smtp\n')
    preflight(host, params(host, ca_file), NAME, Preflight('apt', []))
    assert [call[3:4] for call in postfix.calls if call[0] == 'postconf'] == [['relayhost'], ['-m']]
    postfix.calls[:] = []
    (tmp_path / 'master.cf').write_text('smtp unix - - y - - smtp\n  -o smtp_tls_security_level=encrypt\n')
    preflight(host, params(host, ca_file, main_cf_extra={'smtp_host_lookup': 'native'}), NAME, Preflight('apt', []))
    assert [call[3:4] for call in postfix.calls if call[0] == 'postconf'] == [['relayhost'], ['-m'], ['-x'], ['-P']]


def test_preflight_needs_a_main_cf(tmp_path, ca_file):
    host = FakePostfix(tmp_path / 'none').host()
    with pytest.raises(PostfixRelayError, match='none/main.cf does not exist: config_dir must be the directory'):
        preflight(host, params(host, ca_file), NAME, Preflight('', []))
