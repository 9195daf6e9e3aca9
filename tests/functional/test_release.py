# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release tarball, built as a user builds it and installed the way the README says.

The tarball is built from a copy of the checkout in which every kind of leftover
that the test suite, ansible-lint, ansible-builder, nox or a Python build leaves
has been planted; it must hold exactly the collection's files. Installed from
that tarball, ansible-doc documents every module and the role, and a playbook
runs every module against the emulator started with the ``k5emu`` command of the
pip distribution (installed in a venv of its own, as a user's CI does).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tarfile

import pytest
import yaml

from collection_build import REPO_ROOT, build, copy_checkout, galaxy_env, install, run
from harness import BIN_DIR, DEMO_AUTH, mail_actions
from k5emu.control import Emulator
from packaging_harness import clean_env

# The k5emu venv is shared with test_packaging.py: one worker builds it once.
pytestmark = pytest.mark.xdist_group('packaging')

VERSION = '1.0.0'
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, 'plugins', 'modules'))
                 if name.endswith('.py') and not name.startswith('_'))

# Files that the suite and the tools around it leave behind, at the depths seen.
PLANTED = [
    '.pytest_cache/v/cache/lastfailed',
    'tests/unit/.pytest_cache/README.md',
    '.ansible/collections/ansible_collections/fjcloud/mail/galaxy.yml',
    'tests/unit/.ansible/tmp/ansible-local-1/cache',
    'roles/postfix_relay/.ansible/tmp/cache',
    'extensions/molecule/default/.ansible/tmp/cache',
    'plugins/module_utils/__pycache__/client.cpython-311.pyc',
    'tests/functional/__pycache__/harness.cpython-311.pyc',
    'tests/output/junit/python3.11-units.xml',
    'tests/output/.tmp/sanity/import/minimal.py',
    '.nox/units-2-16/bin/python',
    '.tox/py311/pyvenv.cfg',
    '.venv/bin/python',
    '.venv-3.12.1/bin/python',
    'tests/.venv/pyvenv.cfg',
    '.build/ansible_collections/fjcloud/mail/galaxy.yml',
    'dist/k5emu-1.0.0-py3-none-any.whl',
    'dist/k5emu-1.0.0.tar.gz',
    'build/lib/k5emu/__init__.py',
    'k5emu.egg-info/PKG-INFO',
    'src/k5emu.egg-info/PKG-INFO',
    'context/Containerfile',
    'context/_build/requirements.yml',
    'fjcloud-mail-0.1.0.tar.gz',
    '.mypy_cache/3.11/cache.json',
    '.ruff_cache/content',
    '.coverage',
    '.coverage.host.1234',
    'htmlcov/index.html',
    'changelogs/.plugin-cache.yaml',
    'examples/demo.retry',
    'tests/functional/emulator.log',
]

# The content of the collection: nothing under these may be left out of the tarball (src/: the emulator, which
# the tests in tests/ start, fjcloud-mail-external and the Terraform provider).
CONTENT_DIRS = ('plugins/', 'roles/', 'meta/', 'tests/', 'extensions/', 'examples/', 'changelogs/', 'src/', 'docs/')


def build_ignored(rel_path, patterns):
    """Whether galaxy.yml's build_ignore leaves a file out: the way ansible-galaxy matches it or a parent directory."""
    parts = rel_path.split('/')
    candidates = ['/'.join(parts[:index]) for index in range(1, len(parts) + 1)]
    return rel_path == 'galaxy.yml' or any(fnmatch.fnmatch(candidate, pattern)
                                           for candidate in candidates for pattern in patterns)


@pytest.fixture(scope='module', name='source')
def fixture_source(tmp_path_factory):
    """A copy of the checkout with leftovers planted.

    Returns its path, the files that must ship, and the planted files and the directories made for them.
    """
    source = tmp_path_factory.mktemp('checkout') / 'mail'
    copied = copy_checkout(str(source))
    planted = set(PLANTED)
    for rel_path in PLANTED:
        parent = os.path.dirname(rel_path)
        while parent and not (source / parent).exists():
            planted.add(parent)
            parent = os.path.dirname(parent)
    for rel_path in PLANTED:
        path = source / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('left over by a test run\n')
    patterns = yaml.safe_load((source / 'galaxy.yml').read_text())['build_ignore']
    shipped = {path for path in copied if not build_ignored(path, patterns)}
    # build_ignore is for leftovers and development tools, never for the collection's own content.
    assert sorted(path for path in copied - shipped if path.startswith(CONTENT_DIRS)) == []
    return source, shipped, planted


@pytest.fixture(scope='module', name='tarball')
def fixture_tarball(source, tmp_path_factory):
    return build(source[0], tmp_path_factory.mktemp('dist'))


@pytest.fixture(scope='module', name='installed')
def fixture_installed(tarball, tmp_path_factory):
    """The tarball installed with ``ansible-galaxy collection install -p``; returns the collections path."""
    collections_path = tmp_path_factory.mktemp('collections')
    install(tarball, collections_path)
    return collections_path


def test_tarball_holds_the_collection_and_no_leftovers(source, tarball):
    assert os.path.basename(tarball) == 'fjcloud-mail-%s.tar.gz' % VERSION
    with tarfile.open(tarball) as archive:
        members = archive.getmembers()
        manifest = json.load(archive.extractfile('MANIFEST.json'))
        license_text = archive.extractfile('LICENSE').read().decode()
    names = {member.name for member in members}
    files = {member.name for member in members if member.isfile()}

    assert sorted(names & source[2]) == []
    leftovers = sorted(name for name in names if set(name.split('/')) & {
        '.pytest_cache', '.ansible', '__pycache__', '.nox', '.tox', '.venv', '.build', '.mypy_cache', '.ruff_cache'})
    assert leftovers == []
    # Exactly the checkout's own files, plus the two that the build writes.
    assert sorted(files - source[1]) == ['FILES.json', 'MANIFEST.json']
    assert sorted(source[1] - files) == []

    for required in ['LICENSE', 'CHANGELOG.rst', 'CHANGELOG.md', 'README.md', 'requirements.txt', 'bindep.txt',
                     'meta/execution-environment.yml', 'meta/runtime.yml', 'roles/postfix_relay/tasks/main.yml',
                     'src/k5emu/__main__.py', 'src/fjcloud_mail_external/program.py',
                     'src/terraform_provider_k5mail/provider.py', 'docs/terraform.md']:
        assert required in files, required
    assert {'plugins/modules/%s.py' % name for name in MODULES} <= files
    assert len(MODULES) == 8, MODULES
    info = manifest['collection_info']
    assert (info['namespace'], info['name'], info['version']) == ('fjcloud', 'mail', VERSION)
    assert info['license'] == ['GPL-3.0-or-later']
    assert license_text.split()[:6] == ['GNU', 'GENERAL', 'PUBLIC', 'LICENSE', 'Version', '3,']


def test_changelog_lists_each_module_once_and_the_role(installed):
    collection = installed / 'ansible_collections' / 'fjcloud' / 'mail'
    changelog = (collection / 'CHANGELOG.rst').read_text()
    assert 'v%s' % VERSION in changelog
    assert 'Release Summary' in changelog
    for name in MODULES:
        assert changelog.count('fjcloud.mail.%s - ' % name) == 1, name
    roles = changelog.split('New Roles\n---------\n', 1)[1]
    assert '- fjcloud.mail.postfix_relay - ' in roles
    releases = yaml.safe_load((collection / 'changelogs' / 'changelog.yaml').read_text())['releases']
    assert sorted(module['name'] for module in releases[VERSION]['modules']) == MODULES
    assert [role['name'] for role in releases[VERSION]['objects']['role']] == ['postfix_relay']


def test_ansible_doc_from_the_installed_tarball(installed):
    collection = installed / 'ansible_collections' / 'fjcloud' / 'mail'
    installed_modules = sorted(name[:-3] for name in os.listdir(str(collection / 'plugins' / 'modules'))
                               if name.endswith('.py'))
    assert installed_modules == MODULES
    env = galaxy_env(installed)
    for name in MODULES:
        out = run([os.path.join(BIN_DIR, 'ansible-doc'), '-t', 'module', 'fjcloud.mail.%s' % name], env=env).stdout
        # The first line names the module and the file documented: the installed copy, not the checkout
        # ("> MODULE fjcloud.mail.auth (PATH)" since ansible-core 2.17, "> FJCLOUD.MAIL.AUTH    (PATH)" before).
        first_line = out.split('\n', 1)[0]
        assert first_line.startswith('> ') and 'fjcloud.mail.%s ' % name in first_line.lower(), out[:300]
        assert '(%s)' % (collection / 'plugins' / 'modules' / (name + '.py')) in first_line, out[:300]
        assert 'EXAMPLES' in out and 'RETURN VALUES' in out, out[:300]
    out = run([os.path.join(BIN_DIR, 'ansible-doc'), '-t', 'role', 'fjcloud.mail.postfix_relay'], env=env).stdout
    assert 'postfix_relay_host' in out and str(collection) in out, out[:300]


PLAYBOOK = '''
- name: Every module of the installed tarball against the emulator
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/fjcloud.mail.mail:
      endpoint: "{{ endpoint }}"
      ca_cert: "{{ ca_cert }}"
  tasks:
    - name: auth
      fjcloud.mail.auth:
        auth: "{{ password_auth }}"
      register: login
    - name: smtp_user
      fjcloud.mail.smtp_user:
        auth_token: "{{ login.auth_token }}"
      register: user
    - name: smtp_user_info
      fjcloud.mail.smtp_user_info:
        auth_token: "{{ login.auth_token }}"
    - name: identity
      fjcloud.mail.identity:
        auth_token: "{{ login.auth_token }}"
        email: new@example.com
    - name: identity_info
      fjcloud.mail.identity_info:
        auth_token: "{{ login.auth_token }}"
    - name: send_email
      fjcloud.mail.send_email:
        auth_token: "{{ login.auth_token }}"
        sender: ops@example.com
        to: [qa@example.com]
        subject: from the tarball
        body_text: installed with ansible-galaxy collection install
    - name: send_quota_info
      fjcloud.mail.send_quota_info:
        auth_token: "{{ login.auth_token }}"
    - name: postfix_relay_config
      fjcloud.mail.postfix_relay_config:
        config_dir: "{{ config_dir }}"
        relay_host: localhost
        relay_port: 587
        tls_ca_file: "{{ ca_cert }}"
        smtp_user: "{{ user.smtp_user }}"
        smtp_password: "{{ user.smtp_password }}"
'''


@pytest.fixture(name='k5emu')
def fixture_k5emu(emulator_venv, tmp_path):
    """The emulator as a user starts it: the installed ``k5emu`` command (no SMTP relay: no mail goes through one here)."""
    emulator = Emulator(str(tmp_path / 'k5emu'), program=emulator_venv.bin('k5emu'), env=clean_env(), no_smtp=True,
                        min_interval=0)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/postmap'),
                    reason='postfix_relay_config needs root and the Postfix tools (postconf, postmap)')
def test_every_module_runs_from_the_installed_tarball(installed, ansible, k5emu, tmp_path):
    emulator = k5emu
    assert emulator.command()[0] == emulator.program
    emulator.set_identity('ops@example.com')
    # postfix_relay_config works on a configuration directory of its own: this
    # machine's Postfix is left alone.
    config_dir = tmp_path / 'postfix'
    config_dir.mkdir()
    shutil.copyfile('/etc/postfix/main.cf', str(config_dir / 'main.cf'))
    extra_vars = tmp_path / 'vars.json'
    extra_vars.write_text(json.dumps(dict(
        endpoint=emulator.url, ca_cert=emulator.ca_cert, config_dir=str(config_dir),
        password_auth=dict(DEMO_AUTH, auth_url=emulator.auth_url))))
    extra_vars.chmod(0o600)

    run = ansible.playbook(PLAYBOOK, extra_args=['-e', '@%s' % extra_vars], env=dict(
        ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='False'))
    assert run.rc == 0, run.output
    run.assert_no_traceback()
    results = {result['_task']: result for result in run.results}
    assert sorted(results) == MODULES
    assert all(result['_status'] == 'ok' for result in results.values()), results

    assert results['auth']['auth_token']
    assert results['smtp_user']['created'] is True
    assert results['smtp_user_info']['smtp_user'] == results['smtp_user']['smtp_user']
    assert results['identity']['changed'] is True
    assert 'new@example.com' in [entry['identity'] for entry in results['identity_info']['identities']]
    assert results['send_email']['message_id']
    assert results['send_quota_info']['quota']
    relay = results['postfix_relay_config']
    assert relay['changed'] is True and relay['nexthop'] == '[localhost]:587'
    assert oct((config_dir / 'sasl_passwd').stat().st_mode & 0o777) == '0o600'
    assert [message['subject'] for message in emulator.messages()] == ['from the tarball']
    called = {action for action, status in mail_actions(emulator) if status == 200}
    assert {'CreateSMTPUser', 'GetSMTPUserInfo', 'VerifyEmailIdentity', 'ListIdentities', 'SendEmail',
            'GetSendQuota'} <= called, called
