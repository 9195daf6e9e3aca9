# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs real ansible commands with the collection on the path, and reads the emulator's records."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

BIN_DIR = os.path.dirname(sys.executable)
CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'callback_plugins')
DEMO_AUTH = dict(username='demo-user', password='demo-password', user_domain_name='ct0000000001',
                 project_id='0123456789abcdef0123456789abcdef')
# The endpoint of every run that names none: a closed loopback port, so that no test reaches the real
# service by omission (the option wins over FJCLOUD_MAIL_ENDPOINT, which wins over the region's default).
CLOSED_ENDPOINT = 'https://127.0.0.1:9/'


class AnsibleRun:
    """One finished ansible or ansible-playbook command."""

    def __init__(self, completed, results):
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.output = completed.stdout + completed.stderr
        self.results = results

    @property
    def result(self):
        assert len(self.results) == 1, self.output
        return self.results[0]

    def assert_no_traceback(self):
        assert 'Traceback' not in self.output, self.output
        for result in self.results:
            # ansible-core 2.19 sets exception to '(traceback unavailable)' on every fail_json.
            assert 'module_stderr' not in result and 'Traceback' not in str(result.get('exception', '')), result


class Ansible:
    """Runs ansible commands in their own temp dirs, with the collection on the path."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.runs = 0
        self.env = dict(os.environ)
        for name in list(self.env):
            if name.startswith('OS_') or name == 'FJCLOUD_MAIL_ENDPOINT':
                del self.env[name]
        self.env.update(
            ANSIBLE_LOCAL_TEMP=str(tmp_path / 'local'),
            ANSIBLE_REMOTE_TMP=str(tmp_path / 'remote'),
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            TMPDIR=str(tmp_path),
            # Pacing and login-guard records: each test its own, so that no test
            # waits for another or inherits its refused logins.
            FJCLOUD_MAIL_STATE_DIR=str(tmp_path / 'state'),
            ANSIBLE_HOST_KEY_CHECKING='False',
            ANSIBLE_RETRY_FILES_ENABLED='False',
            ANSIBLE_NOCOLOR='1',
            ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
            ANSIBLE_CALLBACKS_ENABLED='result_file',
            ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
            PATH=BIN_DIR + os.pathsep + self.env.get('PATH', ''),
            FJCLOUD_MAIL_ENDPOINT=CLOSED_ENDPOINT,
        )
        # A resolver.PrivateResolver: runs in a mount namespace where only it answers host name lookups.
        # A test of the default endpoint needs one (env={'FJCLOUD_MAIL_ENDPOINT': None} takes the default).
        self.private_dns = None

    def _run(self, argv, env=None):
        self.runs += 1
        result_file = self.tmp_path / ('results-%d.jsonl' % self.runs)
        run_env = dict(self.env, RESULT_FILE=str(result_file))
        run_env.update(env or {})
        run_env = dict((name, value) for name, value in run_env.items() if value is not None)
        assert 'FJCLOUD_MAIL_ENDPOINT' in run_env or self.private_dns, 'the default endpoint only with private_dns'
        if self.private_dns:
            argv = self.private_dns.command(argv)
        completed = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=300, check=False)
        results = []
        if result_file.exists():
            results = [json.loads(line) for line in result_file.read_text().splitlines()]
        return AnsibleRun(completed, results)

    def module(self, name, args, check=False, diff=False, env=None):
        """``ansible localhost -m fjcloud.mail.NAME -a ARGS``; ``args`` is a dict."""
        argv = [os.path.join(BIN_DIR, 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
                '-m', 'fjcloud.mail.%s' % name]
        if args:
            argv.extend(['-a', json.dumps(args)])
        if check:
            argv.append('--check')
        if diff:
            argv.append('--diff')
        return self._run(argv, env=env)

    def playbook(self, text, extra_args=(), env=None):
        path = self.tmp_path / ('playbook-%d.yml' % self.runs)
        path.write_text(text)
        argv = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(path)]
        argv.extend(extra_args)
        return self._run(argv, env=env)


def mail_actions(emulator):
    """The mail API actions the emulator has answered, in order, with their statuses.

    Throttled requests are left out: a new ansible process may call within a
    second of the previous one, and the client then waits and repeats the call.
    """
    return [(record['action'], record['status']) for record in emulator.log()
            if record['service'] == 'mail' and record.get('error_code') != 'Throttling']


def assert_clean_failure(run, starts_with):
    """Assert that the command failed with one line starting with ``starts_with`` and no traceback; return it."""
    assert run.rc != 0, run.output
    run.assert_no_traceback()
    message = run.result['msg']
    assert message.startswith(starts_with), message
    assert '\n' not in message
    return message


def refused_before_any_request(run, emulator):
    """Assert that the command failed cleanly without calling the mail API; return the failure message."""
    assert run.rc != 0, run.output
    run.assert_no_traceback()
    assert mail_actions(emulator) == []
    return run.result['msg']


def throttled(emulator):
    return [record for record in emulator.log() if record.get('error_code') == 'Throttling']


def keystone_requests(emulator):
    return [record for record in emulator.log() if record['service'] == 'keystone']


def smtp_user_of(emulator):
    """The emulator's own record of the contract's SMTP user, or None."""
    contract = emulator.state()['contracts'].get(DEMO_AUTH['project_id']) or {}
    return contract.get('smtp_user')


class LoopbackListener:
    """A plain TCP listener on 127.0.0.1 that records the first bytes of each connection (bounded in time and size).

    A stand-in for a server that must never be reached (a redirect target) or for an HTTPS proxy
    (``proxy_env``), which records the ``CONNECT host:port`` line asked for and hangs up.
    """

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.received = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b'')

    def first_lines(self):
        """The first line of what each connection sent."""
        return [data.split(b'\r\n')[0].decode('ascii', 'replace') for data in self.received]

    def proxy_env(self):
        """Proxy variables that send HTTPS through this listener, and loopback (the emulator) directly."""
        return {'HTTPS_PROXY': self.url, 'https_proxy': self.url, 'NO_PROXY': '127.0.0.1', 'no_proxy': '127.0.0.1'}

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
