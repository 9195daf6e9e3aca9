# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host cost of fjcloud.mail.postfix_relay against a minimal hand-written playbook.

    .venv/bin/python tools/bench.py [--sizes 1,10,50] [--reps 3]

Both playbooks configure N hosts, each a Postfix configuration directory of its
own in a temp dir (copies of /etc/postfix/main.cf and master.cf; /etc/postfix is
never touched), over the local connection with forks 10, against an emulator
started here (its mail API with one Keystone token for the whole run, its SMTP
relay and CA as the relay). Packages and the service are left alone.

Per size and repetition, the two playbooks run interleaved (the order alternates),
each a first run (fresh directories, no SMTP user in the contract) then a steady
state run; the table shows medians, so that drift of the machine cancels out.
Printed: mail API requests per run (the emulator's request log), wall times,
tasks per host from the PLAY RECAP (ok, which counts changed tasks and handlers
too; skipped apart), and the ratios role / minimal.

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
sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))

from k5emu.control import Emulator  # noqa: E402  (needs the path above)

BIN_DIR = os.path.dirname(sys.executable)
RUN_TIMEOUT = 600
FORKS = 10

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
        postfix_relay_tls_ca_file: "{{ relay_ca }}"
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


def collections_root(tmp):
    """ansible_collections/fjcloud/mail pointing at this checkout."""
    parent = os.path.join(tmp, 'collections', 'ansible_collections', 'fjcloud')
    os.makedirs(parent)
    os.symlink(ROOT, os.path.join(parent, 'mail'))
    return os.path.join(tmp, 'collections')


def make_hosts(directory, size):
    """An inventory of ``size`` local hosts, each with a copy of this machine's Postfix configuration."""
    lines = ['[all]']
    for number in range(size):
        config_dir = os.path.join(directory, 'host%02d' % number)
        os.makedirs(config_dir)
        for name in ('main.cf', 'master.cf'):
            shutil.copyfile(os.path.join('/etc/postfix', name), os.path.join(config_dir, name))
        lines.append('host%02d config_dir=%s' % (number, config_dir))
    inventory = os.path.join(directory, 'hosts.ini')
    with open(inventory, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(lines) + '\n')
    return inventory


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


class Bench:
    def __init__(self, tmp, emulator, token):
        self.tmp = tmp
        self.emulator = emulator
        self.env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=collections_root(tmp),
            ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'),
            ANSIBLE_REMOTE_TMP=os.path.join(tmp, 'ansible-remote'),
            ANSIBLE_NOCOLOR='1',
            ANSIBLE_RETRY_FILES_ENABLED='False',
            FJCLOUD_MAIL_STATE_DIR=os.path.join(tmp, 'state'),
            PATH=BIN_DIR + os.pathsep + os.environ.get('PATH', ''),
        )
        self.extra_vars = dict(
            ansible_connection='local', ansible_python_interpreter=sys.executable,
            api_url=emulator.url, api_token=token, relay_port=emulator.smtp_port, relay_ca=emulator.ca_cert)
        # The token goes in a file of our private temp dir, never on a command line (ps shows those to everyone).
        self.extra_vars_file = os.path.join(tmp, 'extra-vars.json')
        descriptor = os.open(self.extra_vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, 'w', encoding='utf-8') as handle:
            json.dump(self.extra_vars, handle)
        self.playbooks = {}
        for kind, text in PLAYBOOKS.items():
            self.playbooks[kind] = os.path.join(tmp, kind + '.yml')
            with open(self.playbooks[kind], 'w', encoding='utf-8') as handle:
                handle.write(text)
        self.runs = 0

    def run(self, kind, inventory):
        """One ansible-playbook run: wall time, mail API requests, recap."""
        self.emulator.clear_log()
        argv = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory, '--forks', str(FORKS),
                '-e', '@' + self.extra_vars_file, self.playbooks[kind]]
        started = time.monotonic()
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit('%s playbook failed (rc %d):\n%s%s' % (kind, done.returncode, done.stdout[-4000:], done.stderr[-2000:]))
        calls = [r['action'] for r in self.emulator.log() if r['service'] == 'mail']
        return dict(wall=wall, calls=len(calls), recap=recap(done.stdout))

    def first_and_steady(self, kind, size):
        self.runs += 1
        inventory = make_hosts(os.path.join(self.tmp, 'run%03d-%s' % (self.runs, kind)), size)
        self.emulator.mail('DeleteSMTPUser', self.extra_vars['api_token'])  # 404 when there is none: fine
        return self.run(kind, inventory), self.run(kind, inventory)


def per_host(run, counter):
    """Median over the hosts: run_once tasks count on one host only."""
    return statistics.median(counters.get(counter, 0) for counters in run['recap'].values())


def machine():
    ansible_version = subprocess.run([os.path.join(BIN_DIR, 'ansible'), '--version'], capture_output=True,
                                     text=True, timeout=60, check=False).stdout.splitlines()[0]
    return 'machine: %s, %d CPUs (nproc), Python %s, %s, Postfix %s' % (
        platform.platform(), os.cpu_count() or 0, platform.python_version(), ansible_version,
        subprocess.run(['postconf', '-h', 'mail_version'], capture_output=True, text=True, timeout=30,
                       check=False).stdout.strip())


def table(results, sizes):
    head = ('hosts', 'playbook', 'API first', 'API steady', 'first s', 'steady s', 'tasks/host first', 'tasks/host steady')
    rows = [head]
    for size in sizes:
        for kind in ('role', 'minimal'):
            first = results[size][kind]['first']
            steady = results[size][kind]['steady']
            rows.append((str(size), kind, '/'.join(sorted({str(r['calls']) for r in first})),
                         '/'.join(sorted({str(r['calls']) for r in steady})),
                         '%.2f' % statistics.median(r['wall'] for r in first),
                         '%.2f' % statistics.median(r['wall'] for r in steady),
                         '%g (+%g skipped)' % (per_host(first[-1], 'ok'), per_host(first[-1], 'skipped')),
                         '%g (+%g skipped)' % (per_host(steady[-1], 'ok'), per_host(steady[-1], 'skipped'))))
        ratio = {}
        for phase in ('first', 'steady'):
            ratio[phase] = (statistics.median(r['wall'] for r in results[size]['role'][phase])
                            / statistics.median(r['wall'] for r in results[size]['minimal'][phase]))
        rows.append((str(size), 'role/minimal', '', '', '%.2fx' % ratio['first'], '%.2fx' % ratio['steady'], '', ''))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ['| ' + ' | '.join(cell.ljust(width) for cell, width in zip(row, widths)) + ' |' for row in rows]
    lines.insert(1, '|' + '|'.join('-' * (width + 2) for width in widths) + '|')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='1,10,50', help='host counts, comma-separated (default 1,10,50)')
    parser.add_argument('--reps', type=int, default=3, help='repetitions per size; the table shows medians (default 3)')
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
            # Hook: the container fleet over SSH (issue 9) adds its rows here, from the same Bench.run.
            print()
            print('median of %d repetitions, forks %d, local connection, one Keystone token, '
                  'tasks/host = PLAY RECAP ok (includes changed and handlers), median over hosts' % (args.reps, FORKS))
            print(table(results, sizes))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
