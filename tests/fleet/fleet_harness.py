# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hosts of the container fleet started by tools/fleet/run.sh (`make fleet`), and playbook runs against them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

FLEET_DIR = os.environ.get('FLEET_DIR', '')
PODMAN = ['podman', '--runtime', 'runc', '--cgroup-manager=cgroupfs']
BIN_DIR = os.path.dirname(sys.executable)
# Where each host finds the emulator's CA (postfix_relay_tls_ca_file).
RELAY_CA = '/etc/ssl/fleet-relay-ca.pem'
DEMO_AUTH = dict(username='demo-user', password='demo-password', user_domain_name='ct0000000001',
                 project_id='0123456789abcdef0123456789abcdef')
RECAP = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)
PLAYBOOK = '''
- name: Relay the fleet's mail through the service
  hosts: fleet
  gather_facts: false
  roles:
    - role: fjcloud.mail.postfix_relay
'''


class Host:
    """One container of the fleet, as listed by tools/fleet/fleet.sh in hosts.tsv."""

    def __init__(self, name, container, release, kind, port):
        self.name, self.container, self.release, self.kind, self.port = name, container, release, kind, int(port)

    def __repr__(self):
        return self.name

    def sh(self, script, stdin=None, check=True):
        """Runs a shell script inside the container; returns its stdout."""
        done = subprocess.run(PODMAN + ['exec', '-i', self.container, 'sh', '-c', script], input=stdin,
                              capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise AssertionError('%s: %r failed (%d): %s' % (self.name, script, done.returncode, done.stderr))
        return done.stdout

    def postconf(self, key):
        return self.sh('postconf -h %s' % key).strip()

    def sendmail(self, subject):
        message = 'From: root@%s.fleet.test\nTo: ops@example.com\nSubject: %s\n\nfrom %s\n' % (
            self.name, subject, self.name)
        self.sh('/usr/sbin/sendmail -t -i', stdin=message)

    def stop_sshd(self):
        self.sh('kill "$(cat /run/sshd.pid)"')

    def start_sshd(self):
        self.sh('/usr/sbin/sshd -p %d -o ListenAddress=127.0.0.1' % self.port)

    def mail_log(self):
        return self.sh('cat /var/log/postfix.log 2>/dev/null || true')


class PlaybookRun:
    def __init__(self, completed):
        self.rc = completed.returncode
        self.output = completed.stdout + completed.stderr
        self.recap = {m.group(1): dict(ok=int(m.group(2)), changed=int(m.group(3)), unreachable=int(m.group(4)),
                                       failed=int(m.group(5)))
                      for m in RECAP.finditer(completed.stdout)}


class Fleet:
    """The hosts, and ansible-playbook runs of the role against all of them over SSH."""

    def __init__(self, hosts, tmp_dir):
        self.hosts = hosts
        self.tmp_dir = tmp_dir
        self.runs = 0
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith('OS_') and name != 'FJCLOUD_MAIL_ENDPOINT'}
        self.env.update(
            ANSIBLE_HOST_KEY_CHECKING='False',
            ANSIBLE_RETRY_FILES_ENABLED='False',
            ANSIBLE_NOCOLOR='1',
            ANSIBLE_PIPELINING='True',
            ANSIBLE_FORKS='5',
            ANSIBLE_LOCAL_TEMP=os.path.join(tmp_dir, 'local'),
            ANSIBLE_REMOTE_TMP='/tmp/.ansible-fleet',
            FJCLOUD_MAIL_STATE_DIR=os.path.join(tmp_dir, 'state'),
            PATH=BIN_DIR + os.pathsep + os.environ.get('PATH', ''),
        )

    def run(self, role_vars, extra_args=(), timeout=600):
        """ansible-playbook of the role on the fleet, with role_vars as extra vars (a 0600 file)."""
        self.runs += 1
        vars_file = os.path.join(self.tmp_dir, 'vars-%d.json' % self.runs)
        with open(os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            json.dump(role_vars, handle)
        playbook = os.path.join(self.tmp_dir, 'site.yml')
        with open(playbook, 'w') as handle:
            handle.write(PLAYBOOK)
        # A fresh ControlPath directory per run: no SSH master of an earlier run
        # reaches a host whose sshd has been stopped since.
        control_dir = tempfile.mkdtemp(prefix='fcp', dir='/tmp')
        started = time.monotonic()
        try:
            completed = subprocess.run(
                [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', os.path.join(FLEET_DIR, 'inventory.ini'),
                 playbook, '-e', '@' + vars_file] + list(extra_args),
                env=dict(self.env, ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir),
                capture_output=True, text=True, timeout=timeout, check=False)
        finally:
            shutil.rmtree(control_dir, ignore_errors=True)
        print('\nfleet: ansible-playbook run %d %s: rc %d in %.1f s'
              % (self.runs, ' '.join(extra_args), completed.returncode, time.monotonic() - started))
        return PlaybookRun(completed)
