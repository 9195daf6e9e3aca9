# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection in its Execution Environment image, run as AWX and Automation Platform run jobs (issue 19).

``make fleet`` builds the image first (tools/ee/build.sh, ``make ee``) and passes EE_IMAGE, EE_VENV (where
ansible-runner and ansible-navigator are) and CONTAINERS_CONF. A job is a private data dir as AWX writes it:
the playbook in project/, the inventory, env/envvars from a credential of the type in
examples/awx/credential_type.yml, env/ssh_key from a machine credential; it goes through AWX's worker pipeline
``ansible-runner transmit | podman run -i IMAGE ansible-runner worker | ansible-runner process``.
The jobs use an emulator and a fleet host of their own (own container name and sshd port): the scenarios of
test_fleet.py find their hosts and emulator as they expect them.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import types
import uuid

import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fleet_harness import DEMO_AUTH, PODMAN, RELAY_CA, Host
from k5emu.control import Emulator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET_SH = os.path.join(REPO_ROOT, 'tools', 'fleet', 'fleet.sh')
CREDENTIAL_TYPE = os.path.join(REPO_ROOT, 'examples', 'awx', 'credential_type.yml')
EE_IMAGE = os.environ.get('EE_IMAGE', '')
EE_BIN = os.path.join(os.environ.get('EE_VENV', ''), 'bin')
# Where the image's own Python and collection are (ansible-builder's layout).
EE_PYTHON = '/usr/bin/python3'
EE_COLLECTION = '/usr/share/ansible/collections/ansible_collections/fjcloud/mail'
# AWX's container path of a job's private data dir.
RUNNER_DIR = '/runner'
# One host of the fleet, under names and ports of these tests only.
EE_FLEET = dict(FLEET_PREFIX='fjcloud-ee', FLEET_SSH_BASE_PORT='2490', FLEET_HOSTS='b12-hash')
JOB_TIMEOUT = 300
SENDER = 'ops@example.com'

pytestmark = pytest.mark.skipif(
    not EE_IMAGE, reason='needs the EE image and its tools: run `make fleet` (tools/fleet/run.sh builds the image '
                         'with tools/ee/build.sh and sets EE_IMAGE)')

# The job: the modules on the EE's localhost with the credential type's OS_* variables and no
# credential in the playbook, then the role on the fleet host over SSH, which relays a mail.
MODULES_PLAY = '''
- name: The collection's modules, credentials from the environment
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Where this job runs
      ansible.builtin.debug:
        msg:
          python: "{{ ansible_playbook_python }}"
          collections: "{{ lookup('ansible.builtin.pipe', 'ansible-galaxy collection list fjcloud.mail --format json') }}"

    - name: Log in once
      fjcloud.mail.auth:
      register: k5
      no_log: true

    - name: Ensure the SMTP user exists
      fjcloud.mail.smtp_user:
        auth_token: "{{ k5.auth_token }}"
      register: smtp
      no_log: true

    - name: Read it back
      fjcloud.mail.smtp_user_info:
        auth_token: "{{ k5.auth_token }}"
      register: smtp_info
      no_log: true

    - name: Verify a sender address
      fjcloud.mail.identity:
        auth_token: "{{ k5.auth_token }}"
        email: "{{ ee_sender }}"

    - name: List the identities
      fjcloud.mail.identity_info:
        auth_token: "{{ k5.auth_token }}"
      register: identities

    - name: Check what the service answered
      ansible.builtin.assert:
        that:
          - smtp_info.exists
          - smtp_info.smtp_user == smtp.smtp_user
          - ee_sender in identities.identities | map(attribute='identity')
        quiet: true
'''
ROLE_PLAY = '''
- name: Relay the fleet's mail through the service
  hosts: fleet
  gather_facts: false
  roles:
    - role: fjcloud.mail.postfix_relay
  tasks:
    - name: Send a mail through the relay
      ansible.builtin.command:
        argv: [/usr/sbin/sendmail, -t, -i]
        stdin: |
          From: {{ ee_sender }}
          To: rcpt@example.net
          Subject: {{ ee_subject }}

          Sent by a job in the Execution Environment.
      changed_when: true
'''
JOB_PLAYBOOK = MODULES_PLAY + ROLE_PLAY


class Job:
    """What `ansible-runner process` wrote of a job: status, rc, the events in order, their stdout."""

    def __init__(self, artifacts_dir, output):
        self.output = output
        self.dir = os.path.join(artifacts_dir, 'artifacts')
        self.status = self._read('status')
        self.rc = self._read('rc')
        self.events = sorted((self._load(path) for path in glob.glob(os.path.join(self.dir, 'job_events', '*.json'))),
                             key=lambda event: event['counter'])
        self.stdout = '\n'.join(event.get('stdout', '') for event in self.events)

    def _read(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return handle.read().strip()

    @staticmethod
    def _load(path):
        with open(path) as handle:
            return json.load(handle)

    def results(self, task):
        """The ok results of a task, by host."""
        return {event['event_data']['host']: event['event_data']['res'] for event in self.events
                if event['event'] == 'runner_on_ok' and event['event_data'].get('task') == task}

    def stats(self):
        return next(event['event_data'] for event in self.events if event['event'] == 'playbook_on_stats')


def credential_env(job_dir, inputs):
    """The environment AWX gives a job for a credential of examples/awx/credential_type.yml.

    As AWX's CredentialType.inject_credential: only the inputs that are set, Jinja's immutable sandbox,
    each file injector written to env/ with its container path in tower.filename.<name>.
    """
    with open(CREDENTIAL_TYPE) as handle:
        injectors = yaml.safe_load(handle)['injectors']
    sandbox = ImmutableSandboxedEnvironment()
    filenames = types.SimpleNamespace()
    namespace = dict({key: value for key, value in inputs.items() if value}, tower=types.SimpleNamespace(filename=filenames))
    for label, template in injectors.get('file', {}).items():
        handle, path = tempfile.mkstemp(dir=os.path.join(job_dir, 'env'))
        with os.fdopen(handle, 'w') as out:
            out.write(sandbox.from_string(template).render(**namespace))
        setattr(filenames, label.split('.', 1)[1], '%s/env/%s' % (RUNNER_DIR, os.path.basename(path)))
    return {name: sandbox.from_string(template).render(**namespace) for name, template in injectors['env'].items()}


def emulator_credential(emulator):
    """A credential of the shipped type for the emulator (no region: the URLs are given)."""
    with open(emulator.ca_cert) as handle:
        ca_cert = handle.read()
    return dict(DEMO_AUTH, auth_url=emulator.auth_url, endpoint=emulator.url, ca_cert=ca_cert, region_name='')


def write_private(path, text):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
        handle.write(text)


def make_job_dir(root, env, extravars, inventory, ssh_key):
    """A private data dir as AWX's job writes it for ansible-runner (ssh_key: the machine credential's key file)."""
    for sub in ('project', 'inventory', 'env'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(ssh_key) as handle:
        write_private(os.path.join(root, 'env', 'ssh_key'), handle.read())
    write_private(os.path.join(root, 'project', 'site.yml'), JOB_PLAYBOOK)
    write_private(os.path.join(root, 'inventory', 'hosts'), inventory)
    write_private(os.path.join(root, 'env', 'envvars'), json.dumps(env))
    write_private(os.path.join(root, 'env', 'extravars'), json.dumps(extravars))


def kill_all(processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def run_worker_pipeline(job_dir, out_dir):
    """ansible-runner transmit | podman run -i IMAGE ansible-runner worker | ansible-runner process, as AWX's receptor does."""
    container = 'fjcloud-ee-worker-%s' % uuid.uuid4().hex[:8]
    worker_log = out_dir + '.worker.log'
    started = time.monotonic()
    with open(worker_log, 'w') as worker_stderr:
        transmit = subprocess.Popen([os.path.join(EE_BIN, 'ansible-runner'), 'transmit', job_dir, '-p', 'site.yml'],
                                    stdout=subprocess.PIPE)
        worker = subprocess.Popen(PODMAN + ['run', '--rm', '-i', '--name', container, '--network', 'host', EE_IMAGE,
                                            'ansible-runner', 'worker', '--private-data-dir=%s' % RUNNER_DIR],
                                  stdin=transmit.stdout, stdout=subprocess.PIPE, stderr=worker_stderr)
        transmit.stdout.close()
        process = subprocess.Popen([os.path.join(EE_BIN, 'ansible-runner'), 'process', out_dir],
                                   stdin=worker.stdout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        worker.stdout.close()
        processes = (transmit, worker, process)
        try:
            output = process.communicate(timeout=JOB_TIMEOUT)[0]
            rcs = [proc.wait(timeout=60) for proc in processes]
        except subprocess.TimeoutExpired:
            kill_all(processes)
            subprocess.run(PODMAN + ['rm', '-f', '-t', '0', '--ignore', container], timeout=60, check=False)
            raise
    with open(worker_log) as handle:
        output += handle.read()
    print('\nee: worker pipeline rc %s in %.1f s' % (rcs, time.monotonic() - started))
    assert rcs == [0, 0, 0], output
    return Job(out_dir, output)


@pytest.fixture(scope='module', name='ee_emulator')
def fixture_ee_emulator(tmp_path_factory):
    emulator = Emulator(str(tmp_path_factory.mktemp('ee-emulator')))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope='module', name='ee_host')
def fixture_ee_host(tmp_path_factory, ee_emulator):
    """A fleet host of these tests (tools/fleet/fleet.sh), with the emulator's CA; yields it and its SSH key."""
    fleet_dir = str(tmp_path_factory.mktemp('ee-fleet'))
    env = dict(os.environ, **EE_FLEET)
    try:
        up = subprocess.run([FLEET_SH, 'up', fleet_dir], env=env, capture_output=True, text=True, timeout=300, check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        with open(os.path.join(fleet_dir, 'hosts.tsv')) as handle:
            host = Host(*handle.readline().rstrip('\n').split('\t'))
        subprocess.run(PODMAN + ['cp', ee_emulator.ca_cert, '%s:%s' % (host.container, RELAY_CA)], check=True, timeout=60)
        yield host, os.path.join(fleet_dir, 'id_ed25519')
    finally:
        subprocess.run([FLEET_SH, 'down', fleet_dir], env=env, timeout=120, check=False)


def test_ansible_doc_runs_in_the_image():
    done = subprocess.run(PODMAN + ['run', '--rm', EE_IMAGE, 'ansible-doc', 'fjcloud.mail.smtp_user'],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert '%s/plugins/modules/smtp_user.py' % EE_COLLECTION in done.stdout, done.stdout[:2000]


def test_the_image_holds_this_checkouts_collection_and_not_the_build_hosts_ca():
    script = 'cat %s/FILES.json; echo; echo ----; cat /etc/ssl/certs/ca-certificates.crt' % EE_COLLECTION
    done = subprocess.run(PODMAN + ['run', '--rm', '--network', 'none', EE_IMAGE, 'sh', '-c', script],
                          capture_output=True, text=True, timeout=120, check=True)
    files_json, bundle = done.stdout.split('\n----\n', 1)
    installed = {entry['name']: entry['chksum_sha256'] for entry in json.loads(files_json)['files'] if entry['ftype'] == 'file'}
    code = [name for name in installed if name.startswith(('plugins/', 'roles/'))]
    assert code, sorted(installed)
    for name in code:
        with open(os.path.join(REPO_ROOT, name), 'rb') as handle:
            assert installed[name] == hashlib.sha256(handle.read()).hexdigest(), (
                '%s differs from the checkout: run make ee' % name)
    # The build trusted the host's CA bundle (an HTTPS proxy's CA, added locally) only while it ran.
    for path in glob.glob('/usr/local/share/ca-certificates/**/*.crt', recursive=True):
        with open(path) as handle:
            body = ''.join(line for line in handle.read().splitlines() if not line.startswith('-----'))
        assert body not in bundle.replace('\n', ''), '%s is in the image' % path


def test_an_awx_job_runs_modules_and_the_role_in_the_image(tmp_path, ee_emulator, ee_host):
    host, ssh_key = ee_host
    subject = 'ee job %s' % uuid.uuid4().hex[:8]
    job_dir = str(tmp_path / 'job')
    os.makedirs(os.path.join(job_dir, 'env'))
    env = credential_env(job_dir, emulator_credential(ee_emulator))
    extravars = dict(
        ee_subject=subject,
        ee_sender=SENDER,
        postfix_relay_host='localhost',
        postfix_relay_port=ee_emulator.smtp_port,
        postfix_relay_tls_ca_file=RELAY_CA,
        postfix_relay_main_cf_extra={'smtp_host_lookup': 'native', 'smtp_tls_loglevel': '1'},
        postfix_relay_install_packages=False,
    )
    inventory = ('[fleet]\n%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root ansible_python_interpreter=/usr/bin/python3 '
                 "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n" % (host.name, host.port))
    make_job_dir(job_dir, env, extravars, inventory, ssh_key)

    job = run_worker_pipeline(job_dir, str(tmp_path / 'processed'))
    assert (job.status, job.rc) == ('successful', '0'), job.stdout + job.output
    stats = job.stats()
    assert set(stats['ok']) == {'localhost', host.name} and not stats['failures'] and not stats['dark'], stats

    # The image's own Python and collection ran the job, not the controller's.
    where = job.results('Where this job runs')['localhost']['msg']
    assert where['python'] == EE_PYTHON, where
    collections = json.loads(where['collections']) if isinstance(where['collections'], str) else where['collections']
    assert list(collections) == [os.path.dirname(os.path.dirname(EE_COLLECTION))], collections
    # The role's tasks, from the files they came from (its argument check is placed where the play calls it).
    role_paths = {event['event_data']['task_path'].rsplit(':', 1)[0] for event in job.events
                  if event['event'] == 'playbook_on_task_start' and event['event_data'].get('role') == 'postfix_relay'}
    role_paths -= {'%s/project/site.yml' % RUNNER_DIR}
    assert '%s/roles/postfix_relay/tasks/main.yml' % EE_COLLECTION in role_paths, role_paths
    assert all(path.startswith(EE_COLLECTION + '/roles/postfix_relay/') for path in role_paths), role_paths

    # The credentials came from the credential type's variables, and stay out of the job's output.
    user = ee_emulator.state()['contracts'][DEMO_AUTH['project_id']]['smtp_user']
    for secret in (DEMO_AUTH['password'], user['password']):
        assert secret not in job.stdout + job.output

    # The job's mail went through the relay, authenticated as the SMTP user, the relay's certificate verified.
    deadline = time.monotonic() + 60
    while True:
        arrived = [m for m in ee_emulator.messages() if m.get('subject') == subject]
        if arrived or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(arrived) == 1, host.mail_log()[-3000:]
    assert arrived[0]['auth_user'] == user['user'] and arrived[0]['tls']['version'].startswith('TLS'), arrived[0]
    assert 'Verified TLS connection established to localhost' in host.mail_log()


@pytest.fixture(name='mqueue_dir')
def fixture_mqueue_dir():
    """ansible-navigator refuses podman without a /dev/mqueue directory, which a minimal host may lack: make it for the test."""
    made = False
    if not os.path.isdir('/dev/mqueue'):
        try:
            os.mkdir('/dev/mqueue')
        except OSError as error:
            pytest.skip('ansible-navigator needs a /dev/mqueue directory, which this host lacks and cannot have: %s' % error)
        made = True
    yield
    if made:
        os.rmdir('/dev/mqueue')


@pytest.mark.usefixtures('mqueue_dir')
def test_ansible_navigator_runs_the_modules_in_the_image(tmp_path, ee_emulator):
    project = tmp_path / 'project'
    project.mkdir()
    # The OS_* variables exported, the CA next to the playbook (navigator mounts its directory).
    shutil.copyfile(ee_emulator.ca_cert, str(project / 'ca.pem'))
    credential = emulator_credential(ee_emulator)
    env = {'OS_AUTH_URL': credential['auth_url'], 'OS_USERNAME': credential['username'],
           'OS_PASSWORD': credential['password'], 'OS_USER_DOMAIN_NAME': credential['user_domain_name'],
           'OS_PROJECT_ID': credential['project_id'], 'FJCLOUD_MAIL_ENDPOINT': credential['endpoint'],
           'OS_CACERT': str(project / 'ca.pem')}
    # The modules' play: the worker pipeline's job covers the role.
    write_private(str(project / 'site.yml'), MODULES_PLAY)
    command = [os.path.join(EE_BIN, 'ansible-navigator'), 'run', 'site.yml', '--ee', 'true', '--eei', EE_IMAGE,
               '--ce', 'podman', '--pp', 'never', '--mode', 'stdout', '--co=--network=host', '--pae', 'false',
               '--lf', str(tmp_path / 'navigator.log'), '-e', 'ee_sender=%s' % SENDER]
    for name in env:
        command += ['--penv', name]
    started = time.monotonic()
    # A user's shell: podman's settings of this machine kind, none of the suite's ANSIBLE_* settings
    # (navigator passes them into the container).
    env.update(PATH=os.environ['PATH'], HOME=str(tmp_path), CONTAINERS_CONF=os.environ['CONTAINERS_CONF'])
    done = subprocess.run(command, cwd=str(project), env=env,
                          capture_output=True, text=True, timeout=JOB_TIMEOUT, check=False)
    print('\nee: ansible-navigator rc %d in %.1f s' % (done.returncode, time.monotonic() - started))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r'"python": "%s"' % re.escape(EE_PYTHON), output), output
    assert re.search(r'localhost\s*: ok=\d+ .*failed=0', output), output
    assert DEMO_AUTH['password'] not in output
