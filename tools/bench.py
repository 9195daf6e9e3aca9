# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host cost of fjcloud.mail.postfix_relay against a minimal hand-written playbook.

    .venv/bin/python tools/bench.py [--sizes 1,10,50] [--reps 3] [--fleet-hosts 16] [--no-fleet]

Both playbooks configure N hosts, each a Postfix configuration directory of its
own in a temp dir (copies of /etc/postfix/main.cf and master.cf; /etc/postfix is
never touched), over the local connection with forks 10, against an emulator
started here (its mail API with one Keystone token for the whole run, its SMTP
relay and CA as the relay). Packages and the service are left alone.
Then the same on a container fleet of tools/fleet (--fleet-hosts Debian 12/13 hosts,
the fleet's four kinds in turn, their own /etc/postfix, reached over SSH with
pipelining): its containers are started here with their own names and ports and
removed at the end; each first run starts from the image's /etc/postfix.

Per size and repetition, the two playbooks run interleaved (the order alternates),
each a first run (fresh directories, no SMTP user in the contract) then a steady
state run; the table shows medians, so that drift of the machine cancels out.
Printed: mail API requests per run (the emulator's request log), wall times and
milliseconds per host, module executions per host (counted by the interpreter
each host runs modules with: a wrapper that logs every start), tasks per host
from the PLAY RECAP (ok, which counts changed tasks and handlers too; skipped
apart), the ratios role / minimal, and the time of each task (first and steady
run of the last repetition, by the callback tools/bench_callbacks/bench_profile.py).

Every ansible run has a timeout, the emulator stops with this process, and the
temp dir is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The emulator's package and tools/collection_tree.py are imported from the checkout.
sys.path.insert(0, os.path.join(ROOT, 'src'))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import collection_tree  # noqa: E402  pylint: disable=wrong-import-position
from k5emu.control import Emulator  # noqa: E402  pylint: disable=wrong-import-position

BIN_DIR = os.path.dirname(sys.executable)
RUN_TIMEOUT = 600
FORKS = 10
CALLBACK_DIR = os.path.join(ROOT, 'tools', 'bench_callbacks')
# Logs one line per module execution to the file given, then runs the interpreter.
COUNTING_PYTHON = '#!/bin/sh\necho >>%s\nexec %s "$@"\n'

ROLE_PLAYBOOK = '''\
- name: Relay through the Email Delivery Service (the role)
  hosts: all
  gather_facts: false
  roles:
    - role: fjcloud.mail.postfix_relay
      vars:
        postfix_relay_config_dir: "{{ config_dir }}"
        postfix_relay_host: localhost
        postfix_relay_port: "{{ relay_port }}"
        postfix_relay_tls_ca_file: "{{ relay_ca_on_host }}"
        postfix_relay_api_endpoint: "{{ api_url }}"
        postfix_relay_api_ca_cert: "{{ relay_ca }}"
        postfix_relay_api_token: "{{ api_token }}"
        postfix_relay_install_packages: false
        postfix_relay_manage_service: false
'''

# What a user writes by hand: the API once for the play (409 = the user exists,
# then read it), the credentials line, five main.cf keys, postmap on change.
MINIMAL_PLAYBOOK = '''\
- name: Relay through the Email Delivery Service (by hand)
  hosts: all
  gather_facts: false
  vars:
    api_request: &api_request
      url: "{{ api_url }}"
      method: POST
      ca_path: "{{ relay_ca }}"
      body_format: form-urlencoded
      headers: {X-Auth-Token: "{{ api_token }}", User-Agent: FGCP-OS-API-CLIENT}
      return_content: true
    smtp: "{{ (created if created.status == 200 else fetched).content }}"
    nexthop: "[localhost]:{{ relay_port }}"
  tasks:
    - name: Create the SMTP user
      ansible.builtin.uri:
        <<: *api_request
        body: {Action: CreateSMTPUser}
        status_code: [200, 409]
      register: created
      run_once: true
      delegate_to: localhost
      no_log: true

    - name: Read the SMTP user
      ansible.builtin.uri:
        <<: *api_request
        body: {Action: GetSMTPUserInfo}
      register: fetched
      run_once: true
      delegate_to: localhost
      when: created.status == 409
      no_log: true

    - name: Write sasl_passwd
      ansible.builtin.copy:
        content: >-
          {{ nexthop }} {{ smtp | regex_search('(?<=<SMTPUser>)[^<]+') }}:{{
          smtp | regex_search('(?<=<SMTPPassword>)[^<]+') }}
        dest: "{{ config_dir }}/sasl_passwd"
        mode: "0600"
      no_log: true
      notify: Postmap sasl_passwd

    - name: Set the main.cf keys
      ansible.builtin.lineinfile:
        path: "{{ config_dir }}/main.cf"
        regexp: "^{{ item.key }} *="
        line: "{{ item.key }} = {{ item.value }}"
      loop: "{{ keys | dict2items }}"
      vars:
        keys:
          relayhost: "{{ nexthop }}"
          smtp_sasl_auth_enable: "yes"
          smtp_sasl_password_maps: "hash:{{ config_dir }}/sasl_passwd"
          smtp_sasl_security_options: noanonymous
          smtp_tls_security_level: encrypt

  handlers:
    - name: Postmap sasl_passwd
      ansible.builtin.command: postmap -c {{ config_dir }} hash:{{ config_dir }}/sasl_passwd
      changed_when: true
'''

PLAYBOOKS = {'role': ROLE_PLAYBOOK, 'minimal': MINIMAL_PLAYBOOK}


def write_executable(path, text):
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.chmod(path, 0o755)


def make_hosts(directory, size):
    """An inventory of ``size`` local hosts, each with a copy of this machine's Postfix configuration
    and an interpreter of its own that counts its module executions (in directory/modules-NAME)."""
    lines = ['[all]']
    for number in range(size):
        name = 'host%02d' % number
        config_dir = os.path.join(directory, name)
        os.makedirs(config_dir)
        for config in ('main.cf', 'master.cf'):
            shutil.copyfile(os.path.join('/etc/postfix', config), os.path.join(config_dir, config))
        python = os.path.join(directory, 'python-' + name)
        write_executable(python, COUNTING_PYTHON % (os.path.join(directory, 'modules-' + name), sys.executable))
        lines.append('%s config_dir=%s ansible_python_interpreter=%s' % (name, config_dir, python))
    inventory = os.path.join(directory, 'hosts.ini')
    with open(inventory, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(lines) + '\n')
    return inventory


def local_module_counts(directory):
    """Module executions per host since the last call (the counting interpreters' logs, emptied)."""
    counts = {}
    for name in sorted(os.listdir(directory)):
        if name.startswith('modules-'):
            path = os.path.join(directory, name)
            counts[name[len('modules-'):]] = len(read_lines(path))
            os.unlink(path)
    return counts


def read_lines(path):
    with open(path, encoding='utf-8') as handle:
        return handle.readlines()


def recap(stdout):
    """PLAY RECAP counters by host."""
    counters, in_recap = {}, False
    for line in stdout.splitlines():
        if line.startswith('PLAY RECAP'):
            in_recap = True
        elif in_recap and ':' in line:
            host, _colon, rest = line.partition(':')
            counters[host.strip()] = {k: int(v) for k, v in (field.split('=') for field in rest.split())}
    return counters


class Fleet:
    """The container fleet of tools/fleet, started for the benchmark, with the relay's CA on every host."""

    PREFIX, SSH_BASE_PORT = 'fjcloud-bench', 2490
    CA_ON_HOST = '/etc/ssl/fleet-relay-ca.pem'
    PYTHON_ON_HOST, MODULE_LOG_ON_HOST = '/usr/local/bin/bench-python', '/root/bench-modules'

    def __init__(self, directory, ca_cert, count):
        self.directory = directory
        self.env = dict(os.environ, FLEET_PREFIX=self.PREFIX, FLEET_SSH_BASE_PORT=str(self.SSH_BASE_PORT),
                        FLEET_COUNT=str(count))
        subprocess.run([os.path.join(ROOT, 'tools', 'fleet', 'images.sh')], check=True, timeout=1800)
        self.hosts = []
        try:
            subprocess.run([os.path.join(ROOT, 'tools', 'fleet', 'fleet.sh'), 'up', directory], env=self.env,
                           check=True, timeout=600, stdout=subprocess.DEVNULL)
            self.hosts = dict(line.split('\t')[:2] for line in read_lines(os.path.join(directory, 'hosts.tsv')))
            python = os.path.join(directory, 'bench-python')
            write_executable(python, COUNTING_PYTHON % (self.MODULE_LOG_ON_HOST, '/usr/bin/python3'))
            for container in self.hosts.values():
                podman('cp', ca_cert, '%s:%s' % (container, self.CA_ON_HOST))
                podman('cp', python, '%s:%s' % (container, self.PYTHON_ON_HOST))
                podman('exec', container, 'cp', '-a', '/etc/postfix', '/root/postfix.image')
        except BaseException:
            self.down()
            raise
        # The fleet's inventory, each host running its modules with the counting interpreter.
        self.inventory = os.path.join(directory, 'bench-inventory.ini')
        with open(self.inventory, 'w', encoding='utf-8') as handle:
            handle.write(''.join(line.replace('=/usr/bin/python3', '=' + self.PYTHON_ON_HOST)
                                 for line in read_lines(os.path.join(directory, 'inventory.ini'))))

    def module_counts(self):
        """Module executions per host since the last call (each host's log, emptied)."""
        counts = {}
        for name, container in self.hosts.items():
            done = subprocess.run(PODMAN + ['exec', container, 'sh', '-c', 'cat %s 2>/dev/null; rm -f %s' % (
                self.MODULE_LOG_ON_HOST, self.MODULE_LOG_ON_HOST)], capture_output=True, text=True, timeout=120,
                check=True)
            counts[name] = len(done.stdout.splitlines())
        return counts

    def reset(self):
        """Every host's /etc/postfix back to the image's (a first run), Postfix reloaded on it."""
        for container in self.hosts.values():
            podman('exec', container, 'sh', '-c',
                   'rm -rf /etc/postfix && cp -a /root/postfix.image /etc/postfix && postfix reload >/dev/null 2>&1')
        self.module_counts()

    def down(self):
        subprocess.run([os.path.join(ROOT, 'tools', 'fleet', 'fleet.sh'), 'down', self.directory], env=self.env,
                       check=False, timeout=600)


PODMAN = ['podman', '--runtime', 'runc', '--cgroup-manager=cgroupfs']


def podman(*args):
    subprocess.run(PODMAN + list(args), check=True, timeout=120, stdout=subprocess.DEVNULL)


class Bench:
    def __init__(self, tmp, emulator, token):
        self.tmp = tmp
        self.emulator = emulator
        self.env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=collection_tree.link(os.path.join(tmp, 'collections')),
            ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'),
            ANSIBLE_REMOTE_TMP=os.path.join(tmp, 'ansible-remote'),
            ANSIBLE_NOCOLOR='1',
            ANSIBLE_RETRY_FILES_ENABLED='False',
            ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
            ANSIBLE_CALLBACKS_ENABLED='bench_profile',
            BENCH_PROFILE_FILE=os.path.join(tmp, 'profile.json'),
            FJCLOUD_MAIL_STATE_DIR=os.path.join(tmp, 'state'),
            PATH=BIN_DIR + os.pathsep + os.environ.get('PATH', ''),
        )
        self.token = token
        common = dict(api_url=emulator.url, api_token=token, relay_port=emulator.smtp_port, relay_ca=emulator.ca_cert)
        self.vars_files = {
            'local': self.vars_file('local', dict(common, ansible_connection='local', relay_ca_on_host=emulator.ca_cert)),
            'fleet': self.vars_file('fleet', dict(common, config_dir='/etc/postfix', relay_ca_on_host=Fleet.CA_ON_HOST)),
        }
        self.playbooks = {}
        for kind, text in PLAYBOOKS.items():
            self.playbooks[kind] = os.path.join(tmp, kind + '.yml')
            with open(self.playbooks[kind], 'w', encoding='utf-8') as handle:
                handle.write(text)
        self.runs = 0

    def vars_file(self, name, values):
        """The token goes in a file of our private temp dir, never on a command line (ps shows those to everyone)."""
        path = os.path.join(self.tmp, 'extra-vars-%s.json' % name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, 'w', encoding='utf-8') as handle:
            json.dump(values, handle)
        return path

    def run(self, kind, inventory, module_counts, target='local'):
        """One ansible-playbook run: wall time, mail API requests, recap, module executions per host, task times."""
        self.emulator.clear_log()
        argv = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory, '--forks', str(FORKS),
                '-e', '@' + self.vars_files[target], self.playbooks[kind]]
        env = self.env
        if target == 'fleet':
            env = dict(env, ANSIBLE_PIPELINING='True', ANSIBLE_HOST_KEY_CHECKING='False')
        started = time.monotonic()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit('%s playbook failed (rc %d):\n%s%s' % (kind, done.returncode, done.stdout[-4000:], done.stderr[-2000:]))
        calls = [r['action'] for r in self.emulator.log() if r['service'] == 'mail']
        with open(self.env['BENCH_PROFILE_FILE'], encoding='utf-8') as handle:
            profile = json.load(handle)
        return dict(wall=wall, calls=len(calls), recap=recap(done.stdout), modules=module_counts(), profile=profile)

    def first_and_steady(self, kind, size):
        self.runs += 1
        directory = os.path.join(self.tmp, 'run%03d-%s' % (self.runs, kind))
        inventory = make_hosts(directory, size)
        self.emulator.mail('DeleteSMTPUser', self.token)  # 404 when there is none: fine

        def counts():
            return local_module_counts(directory)
        return self.run(kind, inventory, counts), self.run(kind, inventory, counts)

    def fleet_first_and_steady(self, kind, fleet):
        fleet.reset()
        self.emulator.mail('DeleteSMTPUser', self.token)
        return (self.run(kind, fleet.inventory, fleet.module_counts, 'fleet'),
                self.run(kind, fleet.inventory, fleet.module_counts, 'fleet'))


def per_host(run, counter):
    """Median over the hosts: run_once tasks count on one host only."""
    return statistics.median(counters.get(counter, 0) for counters in run['recap'].values())


def modules_per_host(run):
    """Median over the managed hosts (the API calls on the controller are not counted)."""
    return statistics.median(run['modules'].values() or [0])


def profile_text(label, kind, phase, run):
    """The tasks of one run, slowest first (as profile_tasks prints them); a task met again (meta tasks,
    handlers of included files) is summed into one line."""
    tasks = {}
    for task in run['profile']:
        total = tasks.setdefault(task['name'], dict(seconds=0, ok=0, changed=0, skipped=0))
        for key in total:
            total[key] += task[key]
    lines = ['%s, %s, %s run (%.2f s):' % (label, kind, phase, run['wall'])]
    for name, task in sorted(tasks.items(), key=lambda item: -item[1]['seconds']):
        lines.append('  %6.2f s  %-75s ok=%d changed=%d skipped=%d' % (
            task['seconds'], name[:75], task['ok'], task['changed'], task['skipped']))
    return '\n'.join(lines)


def machine():
    ansible_version = subprocess.run([os.path.join(BIN_DIR, 'ansible'), '--version'], capture_output=True,
                                     text=True, timeout=60, check=False).stdout.splitlines()[0]
    return 'machine: %s, %d CPUs (nproc), Python %s, %s, Postfix %s' % (
        platform.platform(), os.cpu_count() or 0, platform.python_version(), ansible_version,
        subprocess.run(['postconf', '-h', 'mail_version'], capture_output=True, text=True, timeout=30,
                       check=False).stdout.strip())


def table(results, sizes):
    head = ('hosts', 'playbook', 'API first', 'API steady', 'first s', 'steady s', 'ms/host first', 'ms/host steady',
            'modules/host first', 'modules/host steady', 'tasks/host first', 'tasks/host steady')
    rows = [head]
    for size in sizes:
        walls = {}
        for kind in ('role', 'minimal'):
            first = results[size][kind]['first']
            steady = results[size][kind]['steady']
            hosts = len(first[-1]['modules']) or 1
            walls[kind] = [statistics.median(r['wall'] for r in first), statistics.median(r['wall'] for r in steady)]
            rows.append((str(size), kind, '/'.join(sorted({str(r['calls']) for r in first})),
                         '/'.join(sorted({str(r['calls']) for r in steady})),
                         '%.2f' % walls[kind][0], '%.2f' % walls[kind][1],
                         '%.0f' % (1000 * walls[kind][0] / hosts), '%.0f' % (1000 * walls[kind][1] / hosts),
                         '%g' % modules_per_host(first[-1]), '%g' % modules_per_host(steady[-1]),
                         '%g (+%g skipped)' % (per_host(first[-1], 'ok'), per_host(first[-1], 'skipped')),
                         '%g (+%g skipped)' % (per_host(steady[-1], 'ok'), per_host(steady[-1], 'skipped'))))
        ratios = ['%.2fx' % (role / minimal) for role, minimal in zip(walls['role'], walls['minimal'])]
        rows.append((str(size), 'role/minimal', '', '') + tuple(ratios) + tuple(ratios) + ('', '', '', ''))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ['| ' + ' | '.join(cell.ljust(width) for cell, width in zip(row, widths)) + ' |' for row in rows]
    lines.insert(1, '|' + '|'.join('-' * (width + 2) for width in widths) + '|')
    return '\n'.join(lines)


def bench_fleet(bench, tmp, emulator, reps, count, results):
    """The two playbooks on a container fleet of ``count`` hosts over SSH; returns the table label of its rows."""
    fleet = Fleet(os.path.join(tmp, 'fleet'), emulator.ca_cert, count)
    try:
        label = '%d SSH' % len(fleet.hosts)
        results[label] = {kind: {'first': [], 'steady': []} for kind in PLAYBOOKS}
        for rep in range(reps):
            for kind in (('role', 'minimal') if rep % 2 == 0 else ('minimal', 'role')):
                first, steady = bench.fleet_first_and_steady(kind, fleet)
                results[label][kind]['first'].append(first)
                results[label][kind]['steady'].append(steady)
                print('rep %d, fleet %s, %-7s first %6.2f s (%d API), steady %6.2f s (%d API)' % (
                    rep + 1, label, kind, first['wall'], first['calls'], steady['wall'], steady['calls']), flush=True)
        return label
    finally:
        fleet.down()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='1,10,50', help='host counts, comma-separated (default 1,10,50)')
    parser.add_argument('--reps', type=int, default=3, help='repetitions per size; the table shows medians (default 3)')
    parser.add_argument('--fleet-hosts', type=int, default=16, help='containers of the fleet over SSH (default 16)')
    parser.add_argument('--no-fleet', action='store_true', help='leave out the container fleet over SSH')
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(',')]

    print(machine(), flush=True)
    tmp = tempfile.mkdtemp(prefix='fjcloud-bench-')
    try:
        with Emulator(os.path.join(tmp, 'emulator'), min_interval=0) as emulator:
            bench = Bench(tmp, emulator, emulator.token())
            results = {size: {kind: {'first': [], 'steady': []} for kind in PLAYBOOKS} for size in sizes}
            for rep in range(args.reps):
                for size in sizes:
                    order = ('role', 'minimal') if (rep + size) % 2 == 0 else ('minimal', 'role')
                    for kind in order:
                        first, steady = bench.first_and_steady(kind, size)
                        results[size][kind]['first'].append(first)
                        results[size][kind]['steady'].append(steady)
                        print('rep %d, %2d hosts, %-7s first %6.2f s (%d API), steady %6.2f s (%d API)' % (
                            rep + 1, size, kind, first['wall'], first['calls'], steady['wall'], steady['calls']),
                            flush=True)
            if not args.no_fleet:
                label = bench_fleet(bench, tmp, emulator, args.reps, args.fleet_hosts, results)
                sizes.append(label)
            print()
            for size in sizes:
                for kind in PLAYBOOKS:
                    for phase in ('first', 'steady'):
                        print(profile_text(size, kind, phase, results[size][kind][phase][-1]))
            print()
            print('median of %d repetitions, forks %d, local connection (fleet: SSH with pipelining), one Keystone '
                  'token, ms/host = wall time / hosts, modules/host = module executions on each host (median), '
                  'tasks/host = PLAY RECAP ok (includes changed and handlers), median over hosts' % (args.reps, FORKS))
            print(table(results, sizes))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
