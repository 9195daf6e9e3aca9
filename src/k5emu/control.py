# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start and drive an emulator process from Python (tests, fixtures)::

    from k5emu.control import Emulator

    with Emulator(tmp_path, min_interval=0) as emu:
        token = emu.token()
        reply = emu.mail('CreateSMTPUser', token)
        emu.fault(status=500, count=2)
        print(emu.log())
        # SMTP relay: emu.smtp_host, emu.smtp_port (STARTTLS), emu.smtps_port (implicit TLS)
        print(emu.wait_for_messages(1))

Keyword options are the command line options of ``python -m k5emu`` with
``_`` for ``-``: ``min_interval=0`` gives ``--min-interval 0``, ``True`` gives
a bare flag (``no_user_agent_check=True``), ``None``/``False`` leave it out.
The process's stdout and stderr go to ``STATE_DIR/emulator.log`` (0600; the state
directory is created 0700 and must be the caller's, see :mod:`k5emu.statedir`).

Admin calls send ``admin_secret`` of endpoint.json (:data:`k5emu.ADMIN_SECRET_HEADER`);
:attr:`Emulator.admin_headers` gives that header to callers that use their own HTTP client.
Only an endpoint.json whose ``pid`` is the started process is ever read: a stale one (of a
killed emulator) is removed before the process starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlencode, urlsplit

import requests

from . import ADMIN_SECRET_HEADER, DEFAULT_CONTRACT, DEFAULT_PASSWORD, DEFAULT_PROJECT_ID, DEFAULT_USER, USER_AGENT
from .statedir import ENDPOINT_FILE, StateDirError, open_private_append, prepare_state_dir, remove_endpoint_file

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EmulatorError(RuntimeError):
    """The emulator did not start, or an admin call failed."""


def cli_arguments(options):
    """Turn keyword options into command line arguments."""
    args = []
    for key, value in options.items():
        flag = '--' + key.replace('_', '-')
        if value is True:
            args.append(flag)
        elif value is None or value is False:
            continue
        else:
            args.extend([flag, str(value)])
    return args


class Emulator:
    """An emulator subprocess with helpers for its admin endpoints."""

    def __init__(self, state_dir, python=None, startup_timeout=15.0, stop_timeout=10.0, env=None, exit_with_parent=True,
                 program=None, **options):
        """``program``: an installed ``k5emu`` command to run instead of ``python -m k5emu`` from this checkout."""
        self.state_dir = os.path.abspath(str(state_dir))
        self.python = python or sys.executable
        self.program = program
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.env = env
        self.options = dict(options)
        self.options.setdefault('exit_with_parent', exit_with_parent)
        self.process = None
        self.endpoint = {}
        self.log_path = os.path.join(self.state_dir, 'emulator.log')

    # ------------------------------------------------------------- lifecycle
    @property
    def url(self):
        """Base URL of the mail API (``https://127.0.0.1:PORT``)."""
        return self.endpoint.get('url')

    @property
    def auth_url(self):
        """Keystone URL (``https://127.0.0.1:PORT/v3``)."""
        return self.endpoint.get('auth_url')

    @property
    def ca_cert(self):
        """Path of the CA certificate to trust."""
        return self.endpoint.get('ca_cert')

    @property
    def port(self):
        """The HTTPS port."""
        return urlsplit(self.url).port if self.url else None

    @property
    def smtp(self):
        """The ``smtp`` block of endpoint.json (``{}`` when the relay is off)."""
        return self.endpoint.get('smtp') or {}

    @property
    def smtp_host(self):
        """Address of the SMTP relay, or None."""
        return self.smtp.get('host')

    @property
    def smtp_port(self):
        """The SMTP submission port (STARTTLS required), or None."""
        return self.smtp.get('port')

    @property
    def smtps_port(self):
        """The SMTP port with implicit TLS, or None."""
        return self.smtp.get('smtps_port')

    @property
    def admin_headers(self):
        """The header that admin requests need (``{}`` before the start)."""
        secret = self.endpoint.get('admin_secret')
        return {ADMIN_SECRET_HEADER: secret} if secret else {}

    @property
    def pid(self):
        """Process id of the emulator, or None."""
        return self.process.pid if self.process is not None else None

    @property
    def running(self):
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def command(self):
        """The command line that starts the emulator."""
        start = [self.program] if self.program else [self.python, '-m', 'k5emu']
        return start + ['--state-dir', self.state_dir] + cli_arguments(self.options)

    def start(self):
        """Start the process and wait until it answers over TLS; return self."""
        if self.running:
            return self
        try:
            prepare_state_dir(self.state_dir)
        except StateDirError as exc:
            raise EmulatorError(str(exc)) from exc
        self.endpoint = {}
        remove_endpoint_file(self.state_dir)  # a killed emulator's: never to be read for this one
        env = dict(os.environ if self.env is None else self.env)
        if not self.program:
            env['PYTHONPATH'] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get('PYTHONPATH')) if p)
        with open_private_append(self.log_path) as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise EmulatorError('the emulator exited with %s:\n%s' % (self.process.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError('the emulator did not start within %s s:\n%s' % (self.startup_timeout, self.log_tail()))
            endpoint = self._read_endpoint()
            if endpoint:
                self.endpoint = endpoint
                try:
                    requests.get(self.url + '/_emulator/ping', headers=self.admin_headers, verify=self.ca_cert,
                                 timeout=2).raise_for_status()
                    return self
                except requests.RequestException:
                    pass
            time.sleep(0.05)

    def _read_endpoint(self):
        """endpoint.json of the started process, or ``{}`` (absent, being written, or another process's)."""
        try:
            with open(os.path.join(self.state_dir, ENDPOINT_FILE), 'r', encoding='utf-8') as handle:
                endpoint = json.load(handle)
        except (OSError, ValueError):
            return {}
        if not isinstance(endpoint, dict) or endpoint.get('pid') != self.process.pid:
            return {}
        return endpoint

    def stop(self):
        """Send SIGTERM, wait, kill after ``stop_timeout``; return the exit code (None if not started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def restart(self):
        """Stop and start again with the same state directory and ports; return self."""
        port, smtp_port, smtps_port = self.port, self.smtp_port, self.smtps_port
        self.stop()
        if port:
            self.options['port'] = port
        if smtp_port:
            self.options['smtp_port'] = smtp_port
        if smtps_port:
            self.options['smtps_port'] = smtps_port
        self.process = None
        return self.start()

    def log_tail(self, lines=30):
        """Return the last lines of the emulator's own log file."""
        try:
            with open(self.log_path, 'r', encoding='utf-8', errors='replace') as handle:
                return ''.join(handle.readlines()[-lines:])
        except OSError:
            return ''

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # ----------------------------------------------------------------- admin
    def admin(self, method, name, data=None):
        """Call ``/_emulator/<name>``; return the decoded JSON answer."""
        reply = requests.request(method, '%s/_emulator/%s' % (self.url, name), json=data, headers=self.admin_headers,
                                 verify=self.ca_cert, timeout=10)
        if reply.status_code >= 400:
            raise EmulatorError('%s /_emulator/%s: %s %s' % (method, name, reply.status_code, reply.text))
        return reply.json()

    def log(self):
        """Return the request log (list of records)."""
        return self.admin('GET', 'log')

    def clear_log(self):
        """Clear the request log."""
        self.admin('DELETE', 'log')

    def fault(self, **spec):
        """Queue a fault (see :mod:`k5emu.faults`); return it as the emulator parsed it."""
        return self.admin('POST', 'faults', spec)['fault']

    def faults(self):
        """Return the pending faults."""
        return self.admin('GET', 'faults')

    def clear_faults(self):
        """Drop the pending faults."""
        self.admin('DELETE', 'faults')

    def reset(self):
        """Clear state, tokens, lockouts, rate limit clocks, faults, log and stored messages."""
        self.admin('POST', 'reset')

    def state(self):
        """Return the state (contracts and their SMTP users, with passwords)."""
        return self.admin('GET', 'state')

    def expire_tokens(self):
        """Expire every issued token; return how many."""
        return self.admin('POST', 'expire-tokens')['expired']

    def config(self):
        """Return the run-time settings."""
        return self.admin('GET', 'config')

    def set_config(self, **settings):
        """Change run-time settings (min_interval, token_ttl, xml_namespace, ...); return all settings."""
        return self.admin('POST', 'config', settings)

    def messages(self):
        """Return the stored messages (records of :mod:`k5emu.messages`), sorted by seq."""
        return self.admin('GET', 'messages')

    def clear_messages(self):
        """Delete the stored messages; return how many."""
        return self.admin('DELETE', 'messages')['deleted']

    def wait_for_messages(self, count, timeout=30, interval=0.1):
        """Poll until at least ``count`` messages are stored; return them all.

        Raise :class:`EmulatorError` (with what is stored) when ``timeout`` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages()
            if len(messages) >= count:
                return messages
            if time.monotonic() >= deadline:
                raise EmulatorError('%d message(s) stored after %s s, expected at least %d: %s'
                                    % (len(messages), timeout, count, json.dumps(messages, sort_keys=True)[:4000]))
            time.sleep(interval)

    def set_identity(self, identity, status='Success', project_id=None):
        """Give an identity (email address or domain) a verification status, creating it if absent; return its entry."""
        data = {'identity': identity, 'status': status}
        if project_id is not None:
            data['project_id'] = project_id
        return self.admin('POST', 'identities', data)

    def seed_identities(self, identities, status='Success', project_id=None):
        """Create (or update) many identities with one status; return how many."""
        data = {'identities': list(identities), 'status': status}
        if project_id is not None:
            data['project_id'] = project_id
        return self.admin('POST', 'identities/bulk', data)['count']

    def add_send_event(self, rejects=0, bounces=0, complaints=0, delivery_attempts=0, when=None, project_id=None):
        """Add counts to GetSendStatistics at epoch ``when`` (default now); return the stored event."""
        data = {'rejects': rejects, 'bounces': bounces, 'complaints': complaints, 'delivery_attempts': delivery_attempts}
        if when is not None:
            data['time'] = when
        if project_id is not None:
            data['project_id'] = project_id
        return self.admin('POST', 'send-statistics', data)['event']

    # ---------------------------------------------------------------- client
    def auth_body(self, user=DEFAULT_USER, password=DEFAULT_PASSWORD, contract=DEFAULT_CONTRACT,
                  project_id=DEFAULT_PROJECT_ID, project_name=None):
        """Return a Keystone password authentication body (by project name when ``project_name`` is given)."""
        if project_name is not None:
            project = {'name': project_name, 'domain': {'name': contract}}
        else:
            project = {'id': project_id}
        return {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {'domain': {'name': contract}, 'name': user, 'password': password}}},
            'scope': {'project': project},
        }}

    def authenticate(self, user=DEFAULT_USER, password=DEFAULT_PASSWORD, contract=DEFAULT_CONTRACT,
                     project_id=DEFAULT_PROJECT_ID, project_name=None):
        """POST to Keystone; return the :class:`requests.Response`."""
        body = self.auth_body(user, password, contract, project_id, project_name)
        return requests.post(self.auth_url + '/auth/tokens', json=body, verify=self.ca_cert, timeout=10)

    def token(self, user=DEFAULT_USER, password=DEFAULT_PASSWORD, contract=DEFAULT_CONTRACT,
              project_id=DEFAULT_PROJECT_ID, project_name=None):
        """Get a token through Keystone; return the token string."""
        reply = self.authenticate(user, password, contract, project_id, project_name)
        if reply.status_code != 201:
            raise EmulatorError('authentication of %s failed: %s %s' % (user, reply.status_code, reply.text))
        return reply.headers['X-Subject-Token']

    def mail(self, action, token=None, params=None, headers=None, timeout=10):
        """POST a mail API request (``action`` None: no Action); return the :class:`requests.Response`."""
        data = {} if action is None else {'Action': action}
        data.update(params or {})
        all_headers = {'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8', 'User-Agent': USER_AGENT}
        if token is not None:
            all_headers['X-Auth-Token'] = token
        all_headers.update(headers or {})
        return requests.post(self.url + '/', data=urlencode(data), headers=all_headers, verify=self.ca_cert, timeout=timeout)
