# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pip distribution fjcloud-mail, built and installed the way a user does it.

``python -m build`` makes the sdist and, from it, the wheel; the wheel goes into
fresh venvs in a temp dir: a bare one (no trustme, no aiosmtpd, no ansible-core)
that runs the ``fjcloud-mail-external`` console script and whose ``k5emu`` says
which extra it needs, one with the ``emulator`` extra that runs ``k5emu``, and one
with the ``ansible`` extra whose ansible-playbook finds the collection in
site-packages and runs its modules against that emulator. Slow (three pip installs): the venvs
are made once per session (tests/functional/conftest.py), and all these tests
share one xdist worker with test_release.py, which uses the same venv.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest
import requests

import fjcloud_mail_external
import k5emu as k5emu_package
import terraform_provider_k5mail
from terraform_provider_k5mail.program import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE
from harness import DEMO_AUTH
from packaging_harness import REPO_ROOT, Venv, clean_env, galaxy_version, run

pytestmark = pytest.mark.xdist_group('packaging')

COLLECTION = 'ansible_collections/fjcloud/mail/'


@pytest.fixture(scope='module')
def ansible_venv(dists, tmp_path_factory):
    # The ansible-core of the test run, so that pip takes it from its cache.
    core = 'ansible-core==%s' % importlib.metadata.version('ansible-core')
    return Venv(tmp_path_factory.mktemp('venv-ansible'), '%s[ansible]' % dists[1], core)


@contextlib.contextmanager
def k5emu(venv, state_dir, *args):
    """Start the venv's ``k5emu`` console script; yield endpoint.json as a dict."""
    process = subprocess.Popen([venv.bin('k5emu'), '--state-dir', str(state_dir), '--min-interval', '0'] + list(args),
                               env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        endpoint = {}
        while endpoint.get('pid') != process.pid:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, 'k5emu did not write endpoint.json'
            time.sleep(0.1)
            try:
                with open(state_dir / 'endpoint.json', encoding='utf-8') as handle:
                    endpoint = json.load(handle)
            except (OSError, ValueError):
                pass
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        process.stderr.close()


def admin_headers(endpoint):
    """The admin secret of endpoint.json, which every /_emulator/ request needs."""
    return {'X-K5emu-Admin-Secret': endpoint['admin_secret']}


def request_log(endpoint):
    reply = requests.get(endpoint['url'] + '/_emulator/log', headers=admin_headers(endpoint), verify=endpoint['ca_cert'],
                         timeout=10)
    reply.raise_for_status()
    return [(record['service'], record['action']) for record in reply.json()]


def wheel_names(path):
    with zipfile.ZipFile(path) as wheel:
        return sorted(name for name in wheel.namelist() if '.dist-info/' not in name)


def test_wheel_carries_the_collection_the_emulator_and_the_external_program(dists):
    sdist, wheel = dists
    assert wheel.name == 'fjcloud_mail-%s-py3-none-any.whl' % galaxy_version()
    assert sdist.name == 'fjcloud_mail-%s.tar.gz' % galaxy_version()
    # The emulator names its release in its banners (HTTP Server, SMTP greeting).
    assert k5emu_package.__version__ == galaxy_version()
    assert fjcloud_mail_external.__version__ == galaxy_version()
    assert terraform_provider_k5mail.__version__ == galaxy_version()
    names = wheel_names(wheel)
    # Every file that meta/execution-environment.yml names, at the same place relative to it as in the tarball, so
    # that ansible-builder introspect reads a pip install as it reads a tarball install.
    for name in (COLLECTION + 'meta/execution-environment.yml', COLLECTION + 'requirements.txt',
                 COLLECTION + 'bindep.txt'):
        assert name in names, name
    for name in (COLLECTION + 'galaxy.yml', COLLECTION + 'meta/runtime.yml', COLLECTION + 'README.md',
                 COLLECTION + 'plugins/modules/smtp_user_info.py', COLLECTION + 'plugins/module_utils/client.py',
                 COLLECTION + 'plugins/doc_fragments/k5.py', COLLECTION + 'roles/postfix_relay/tasks/main.yml',
                 'k5emu/app.py', 'k5emu/smtp.py', 'fjcloud_mail_external/program.py',
                 'terraform_provider_k5mail/provider.py'):
        assert name in names
    # One client: neither the external program nor the provider has a copy of it.
    assert [name for name in names if name.endswith('/client.py')] == [COLLECTION + 'plugins/module_utils/client.py']
    assert not [name for name in names if '__pycache__' in name or name.endswith('.pyc') or '/tests/' in name]
    assert set(name.split('/')[0] for name in names) == {
        'ansible_collections', 'k5emu', 'fjcloud_mail_external', 'terraform_provider_k5mail'}


def test_checkout_builds_the_same_wheel_as_the_sdist(dists, tmp_path):
    """``pip install CHECKOUT`` builds from the tree: it must give what the sdist gives."""
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--disable-pip-version-check', '-w', str(tmp_path),
         REPO_ROOT], env=clean_env())
    (from_checkout,) = tmp_path.glob('*.whl')
    assert wheel_names(from_checkout) == wheel_names(dists[1])


def test_bare_install_has_no_test_only_dependency_and_no_ansible(bare_venv):
    assert bare_venv.imports('requests') and bare_venv.imports('urllib3') and bare_venv.imports('lxml')
    assert not bare_venv.imports('trustme')
    assert not bare_venv.imports('aiosmtpd')
    assert not bare_venv.imports('ansible')


def test_k5emu_without_its_extra_says_how_to_get_it(bare_venv, tmp_path):
    for args in ([], ['--no-smtp']):
        completed = subprocess.run([bare_venv.bin('k5emu'), '--state-dir', str(tmp_path / 'emu')] + args,
                                   env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
        assert (completed.returncode, completed.stdout) == (2, '')
        lines = completed.stderr.splitlines()
        assert len(lines) == 1 and ' ERROR ' in lines[0], completed.stderr
        assert lines[0].endswith("cannot start: the emulator needs trustme: pip install 'fjcloud-mail[emulator]'"), lines
        assert not (tmp_path / 'emu').exists()


def test_k5emu_without_aiosmtpd_says_how_to_get_the_relay(emulator_venv, tmp_path):
    assert emulator_venv.imports('trustme') and emulator_venv.imports('aiosmtpd')
    # The extra without aiosmtpd (as with trustme alone): the import of aiosmtpd fails.
    script = 'import sys; sys.modules["aiosmtpd"] = None; from k5emu.app import main; sys.exit(main())'
    completed = subprocess.run([emulator_venv.bin('python'), '-c', script, '--state-dir', str(tmp_path / 'emu')],
                               env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if ' ERROR ' in line]
    assert len(errors) == 1, completed.stderr
    assert 'the SMTP relay needs aiosmtpd' in errors[0]
    assert "pip install 'fjcloud-mail[emulator]', or start with --no-smtp" in errors[0]
    assert 'Traceback' not in completed.stderr


def test_the_commands_answer_help_and_version_without_extras(bare_venv):
    for command in ('k5emu', 'fjcloud-mail-external', 'terraform-provider-k5mail'):
        version = subprocess.run([bare_venv.bin(command), '--version'], env=clean_env(), stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert (version.returncode, version.stdout, version.stderr) == (0, '%s %s\n' % (command, galaxy_version()), '')
        usage = subprocess.run([bare_venv.bin(command), '--help'], env=clean_env(), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60, check=False)
        assert (usage.returncode, usage.stderr) == (0, ''), usage.stderr
        assert usage.stdout.startswith('usage: %s ' % command) and '--version' in usage.stdout, usage.stdout
    # Any other argument: the protocol's one line on stderr, exit 2, and the query is not read.
    other = subprocess.run([bare_venv.bin('fjcloud-mail-external'), 'smtp_user'], env=clean_env(), input='{}',
                           capture_output=True, text=True, timeout=60, check=False)
    assert (other.returncode, other.stdout) == (2, '')
    assert other.stderr.splitlines() == [
        'fjcloud-mail-external: takes no arguments but --help or --version: the query comes on stdin (see --help)']
    # Started by Terraform (its handshake variable set) without the terraform extra: one line saying what to install.
    serve = subprocess.run([bare_venv.bin('terraform-provider-k5mail')], capture_output=True, text=True, timeout=60,
                           env=clean_env(**{MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE}), check=False)
    assert (serve.returncode, serve.stdout) == (1, '')
    assert serve.stderr == "terraform-provider-k5mail: missing Python packages: tf; pip install 'fjcloud-mail[terraform]'\n"


def test_the_installed_provider_mirror_runs_the_venv_without_a_search_path(bare_venv, tmp_path):
    """An installed provider finds itself and the collection in site-packages: the launcher only picks the venv's Python."""
    completed = run([bare_venv.bin('terraform-provider-k5mail'), 'mirror', str(tmp_path / 'mirror')], env=clean_env())
    assert 'filesystem_mirror' in completed.stdout
    (path,) = (tmp_path / 'mirror').rglob('*.zip')
    with zipfile.ZipFile(path) as archive:
        launcher = archive.read(archive.namelist()[0]).decode()
    assert 'PYTHONPATH' not in launcher
    assert ' -m terraform_provider_k5mail "$@"' in launcher and bare_venv.bin('python') in launcher


PLAYBOOK = '''
- name: The installed collection against the installed emulator
  hosts: localhost
  gather_facts: false
  vars:
    k5emu: "{{ lookup('ansible.builtin.file', endpoint_json) | from_json }}"
  module_defaults:
    group/fjcloud.mail.mail:
      endpoint: "{{ k5emu.url }}"
      ca_cert: "{{ k5emu.ca_cert }}"
      auth:
        auth_url: "{{ k5emu.auth_url }}"
        username: demo-user
        password: demo-password
        user_domain_name: ct0000000001
        project_id: 0123456789abcdef0123456789abcdef
  tasks:
    - name: Create the SMTP user
      fjcloud.mail.smtp_user:
        state: present
      register: created
      no_log: true
    - name: Read it back
      fjcloud.mail.smtp_user_info:
      register: info
      no_log: true
    - name: Check
      ansible.builtin.assert:
        that: [created is changed, info.exists, info.smtp_user == created.smtp_user]
    - name: Keep the user name for the test
      ansible.builtin.copy:
        content: "{{ info.smtp_user }}"
        dest: "{{ out }}"
        mode: "0600"
'''


def test_installed_collection_emulator_and_external_end_to_end(bare_venv, emulator_venv, ansible_venv, tmp_path):
    empty = tmp_path / 'no-collections'
    empty.mkdir()
    ansible_env = clean_env(
        # No collection path of this checkout: only site-packages can provide fjcloud.mail.
        ANSIBLE_COLLECTIONS_PATH=str(empty), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'local'),
        ANSIBLE_REMOTE_TMP=str(tmp_path / 'remote'), FJCLOUD_MAIL_STATE_DIR=str(tmp_path / 'state'),
        ANSIBLE_NOCOLOR='1')
    listing = run([ansible_venv.bin('ansible-galaxy'), 'collection', 'list', 'fjcloud.mail', '--format', 'json'],
                  env=ansible_env)
    found = dict((path, collections) for path, collections in json.loads(listing.stdout).items() if collections)
    assert len(found) == 1, found
    (path,) = found
    assert path.startswith(str(ansible_venv.path)) and path.endswith(os.path.join('site-packages', 'ansible_collections'))
    assert [entry['version'] for collections in found.values() for entry in collections.values()] == [galaxy_version()]

    with k5emu(emulator_venv, tmp_path / 'emu', '--no-smtp') as endpoint:
        assert 'smtp' not in endpoint
        playbook = tmp_path / 'playbook.yml'
        playbook.write_text(PLAYBOOK)
        out = tmp_path / 'smtp_user.txt'
        run([ansible_venv.bin('ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(playbook),
             '-e', 'ansible_python_interpreter=%s' % ansible_venv.bin('python'),
             '-e', 'endpoint_json=%s' % (tmp_path / 'emu' / 'endpoint.json'), '-e', 'out=%s' % out], env=ansible_env)
        smtp_user = out.read_text()
        assert smtp_user

        requests.delete(endpoint['url'] + '/_emulator/log', headers=admin_headers(endpoint), verify=endpoint['ca_cert'],
                        timeout=10).raise_for_status()
        # The Done-when line of the issue, in a shell, with the bare venv's console script.
        external_env = clean_env(
            PATH=os.pathsep.join((bare_venv.bin(''), os.environ['PATH'])), FJCLOUD_MAIL_STATE_DIR=str(tmp_path / 'state'),
            OS_AUTH_URL=endpoint['auth_url'], OS_USERNAME=DEMO_AUTH['username'], OS_PASSWORD=DEMO_AUTH['password'],
            OS_USER_DOMAIN_NAME=DEMO_AUTH['user_domain_name'], OS_PROJECT_ID=DEMO_AUTH['project_id'],
            FJCLOUD_MAIL_ENDPOINT=endpoint['url'], OS_CACERT=endpoint['ca_cert'])
        completed = run(['bash', '-c', 'echo \'{"data":"smtp_user"}\' | fjcloud-mail-external'], env=external_env)
        data = json.loads(completed.stdout)
        assert data == {'exists': 'true', 'smtp_user': smtp_user}
        assert completed.stderr == ''
        assert request_log(endpoint) == [('keystone', 'authenticate'), ('mail', 'GetSMTPUserInfo')]

        completed = subprocess.run(['bash', '-c', 'echo \'{"data":"quota"}\' | fjcloud-mail-external'],
                                   env=external_env, capture_output=True, text=True, timeout=60, check=False)
        assert (completed.returncode, completed.stdout) == (2, '')
        assert completed.stderr.splitlines() == [
            "fjcloud-mail-external: data 'quota' is not one of smtp_user, identity, send_quota"]
