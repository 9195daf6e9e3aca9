# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator is safe to run in users' CI (issue 16, finding 12), tested on the real process:
request bodies stay bounded whatever the chunking, the admin endpoints need the secret of
endpoint.json, its files are private and its state directory checked, endpoint.json is never
stale, and its clocks of tokens and lockouts do not follow steps of the wall clock."""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import time

import pytest
import requests

from k5emu import DEFAULT_CONTRACT, DEFAULT_PASSWORD, DEFAULT_PROJECT_ID, DEFAULT_USER
from k5emu.config import Settings, load_config
from k5emu.control import PACKAGE_PARENT, Emulator, EmulatorError
from k5emu.keystone import Identity

# Literal, not imported, so that this file also runs against the emulator before this header existed.
SECRET_HEADER = 'X-K5emu-Admin-Secret'
MiB = 1024 * 1024


# ------------------------------------------------------------ raw HTTP over TLS
def vm_rss(pid):
    """Resident memory of a process in bytes (/proc/PID/status)."""
    with open('/proc/%d/status' % pid, encoding='ascii') as handle:
        for line in handle:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmRSS for pid %d' % pid)


class RawClient:
    """One TLS connection to the emulator's HTTPS port, spoken to byte by byte."""

    def __init__(self, emu, timeout=10.0):
        # How long an answer or the close may take: only a failing test waits for it, so far above any load.
        context = ssl.create_default_context(cafile=emu.ca_cert)
        raw = socket.create_connection(('127.0.0.1', emu.port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname='127.0.0.1')
        self.buffer = b''

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def push(self, size, block=MiB):
        """Send up to ``size`` bytes of body; return how many went out before the server stopped taking them."""
        sent, data = 0, b'a' * block
        try:
            while sent < size:
                self.sock.sendall(data)
                sent += block
        except OSError:  # closed by the server (EPIPE, reset, TLS alert) or no longer read (timeout)
            pass
        return sent

    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except (ssl.SSLError, ConnectionError):
            return b''
        return data

    def response(self):
        """``(status, body)`` of the next response, or ``(None, b'')`` when none comes in time."""
        while b'\r\n\r\n' not in self.buffer:
            data = self._recv()
            if not data:
                return None, b''
            self.buffer += data
        head, _sep, self.buffer = self.buffer.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        headers = dict(line.split(':', 1) for line in lines[1:])
        length = int(headers.get('Content-Length', '0').strip())
        while len(self.buffer) < length:
            data = self._recv()
            if not data:
                break
            self.buffer += data
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, body

    def closed_by_server(self):
        """Whether the server closed the connection (EOF or reset) within the timeout."""
        return self._recv() == b''


def chunked_head(emu, path='/v3/auth/tokens'):
    return ('POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n'
            'Transfer-Encoding: chunked\r\n\r\n' % (path, emu.port)).encode('ascii')


def auth_body():
    return json.dumps({'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'domain': {'name': DEFAULT_CONTRACT}, 'name': DEFAULT_USER, 'password': DEFAULT_PASSWORD}}},
        'scope': {'project': {'id': DEFAULT_PROJECT_ID}}}}).encode('ascii')


# ------------------------------------------------------------------ body limits
@pytest.mark.parametrize('size_line', [b'-4000000', b'-1'])
def test_a_negative_chunk_size_is_refused_before_any_body_is_read(emu, size_line):
    before = vm_rss(emu.pid)
    client = RawClient(emu)
    try:
        client.send(chunked_head(emu) + size_line + b'\r\n')
        status, body = client.response()
        pushed = client.push(48 * MiB)  # what the emulator before the fix read into memory, to the end
        grown = vm_rss(emu.pid) - before
        closed = client.closed_by_server()
    finally:
        client.close()
    assert status == 400, 'no 400 for the chunk size %r (%d MiB of body then sent, the emulator grew by %d MiB)' % (
        size_line, pushed // MiB, grown // MiB)
    assert b'chunk size' in body
    assert closed
    assert grown < 12 * MiB, 'the emulator grew by %d MiB' % (grown // MiB)


@pytest.mark.parametrize('size_line, status', [
    (b'1' + b'0' * 20, 400),           # more hex digits than any size: refused as malformed
    (b'ffffffffffffffff', 413),        # well formed, far above the 16 MiB limit
    (b'1000001', 413),                 # 16 MiB + 1
    (b'0x10', 400), (b'+10', 400), (b'1_0', 400), (b'10zz', 400), (b' ', 400), (b'1 0', 400),
    pytest.param(b'10' + b';x' * 3000, 400, id='line-over-4KiB'),
])
def test_bad_or_oversized_chunk_sizes_get_an_error_and_the_connection_closed(emu, size_line, status):
    client = RawClient(emu)
    try:
        client.send(chunked_head(emu) + size_line + b'\r\n')
        got, _body = client.response()
        closed = client.closed_by_server()
    finally:
        client.close()
    assert got == status
    assert closed


def test_a_body_of_many_small_chunks_is_bounded_in_count(emu):
    before = vm_rss(emu.pid)
    client = RawClient(emu)
    try:
        client.send(chunked_head(emu) + b'1\r\na\r\n' * 70000 + b'0\r\n\r\n')
        status, body = client.response()
    finally:
        client.close()
    assert status == 400 and b'more than 65536 chunks' in body
    assert vm_rss(emu.pid) - before < 12 * MiB


def test_valid_chunking_with_extensions_and_trailers_is_read(emu):
    body = auth_body()
    chunks = b''.join(b'%x;name="v";flag\r\n%s\r\n' % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    client = RawClient(emu)
    try:
        client.send(chunked_head(emu) + chunks + b'0\r\nX-Trailer: 1\r\n\r\n')
        status, _body = client.response()
        # keep-alive: a second request on the same connection, one chunk in upper-case hex
        client.send(chunked_head(emu) + b'%X\r\n%s\r\n0\r\n\r\n' % (len(body), body))
        again, _body = client.response()
    finally:
        client.close()
    assert (status, again) == (201, 201)


@pytest.mark.parametrize('length', ['-1', '+5', '1_0', '0x10', str(16 * MiB + 1)])
def test_bad_or_oversized_content_length_is_refused(emu, length):
    client = RawClient(emu)
    try:
        client.send(('POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n' % length).encode('ascii'))
        status, _body = client.response()
        closed = client.closed_by_server()
    finally:
        client.close()
    assert status == (413 if length.isdigit() else 400)
    assert closed


# ----------------------------------------------------------------- admin secret
def endpoint_file(emu):
    with open(os.path.join(emu.state_dir, 'endpoint.json'), encoding='utf-8') as handle:
        return json.load(handle)


def admin_get(emu, name, secret):
    headers = {} if secret is None else {SECRET_HEADER: secret}
    return requests.get('%s/_emulator/%s' % (emu.url, name), headers=headers, verify=emu.ca_cert, timeout=10)


def test_admin_endpoints_need_the_secret_of_endpoint_json(emu):
    secret = endpoint_file(emu).get('admin_secret') or ''
    assert len(secret) >= 32
    for name in ('ping', 'state', 'log', 'messages', 'no-such-endpoint'):
        for wrong in (None, '', 'x' * len(secret), secret[:-1], secret + 'x'):
            reply = admin_get(emu, name, wrong)
            assert reply.status_code == 403, (name, wrong is None)
            assert SECRET_HEADER in reply.json()['error'] and secret not in reply.text
    assert admin_get(emu, 'ping', secret).json() == {'ok': True, 'pid': emu.pid}
    assert admin_get(emu, 'no-such-endpoint', secret).status_code == 404


def test_admin_changes_without_the_secret_change_nothing(emu):
    assert emu.mail('CreateSMTPUser', emu.token()).status_code == 200
    for method, name in (('POST', 'reset'), ('DELETE', 'log'), ('POST', 'expire-tokens')):
        reply = requests.request(method, '%s/_emulator/%s' % (emu.url, name), json={}, verify=emu.ca_cert, timeout=10)
        assert reply.status_code == 403
    assert emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user'] is not None
    assert [record['action'] for record in emu.log()] == ['authenticate', 'CreateSMTPUser']


def test_the_secret_is_new_at_every_start_and_never_logged(tmp_path):
    with Emulator(tmp_path / 'state', no_smtp=True) as emu:
        first = endpoint_file(emu)['admin_secret']
        emu.restart()
        second = endpoint_file(emu)['admin_secret']
        assert emu.config()['min_interval'] == 1.0  # control.Emulator sends the new one
        assert admin_get(emu, 'ping', first).status_code == 403
    with open(emu.log_path, encoding='utf-8') as handle:
        log = handle.read()
    assert first != second and first not in log and second not in log


# ------------------------------------------------------------------ file modes
def modes(root):
    """``{relative path: mode}`` of everything under ``root`` (``root`` itself as '.')."""
    found = {'.': stat.S_IMODE(os.stat(root).st_mode)}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def test_every_file_is_0600_and_every_directory_0700(emu):
    assert emu.mail('CreateSMTPUser', emu.token()).status_code == 200
    smtp_user = emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user']
    with smtplib.SMTP('localhost', emu.smtp_port, timeout=10) as client:
        client.starttls(context=ssl.create_default_context(cafile=emu.ca_cert))
        client.login(smtp_user['user'], smtp_user['password'])
        client.sendmail('a@example.com', ['b@example.com'], 'Subject: modes\r\n\r\nbody\r\n')
    emu.wait_for_messages(1, timeout=10)
    found = modes(emu.state_dir)
    assert {'messages', 'requests.jsonl', 'endpoint.json', 'state.json', 'ca.pem', 'emulator.log'} <= set(found)
    assert any(name.startswith('messages/') for name in found)
    wrong = dict((name, '%04o' % mode) for name, mode in found.items()
                 if mode != (0o700 if os.path.isdir(os.path.join(emu.state_dir, name)) else 0o600))
    assert wrong == {}


def test_files_of_an_older_version_are_made_private(tmp_path):
    state = tmp_path / 'state'
    (state / 'messages').mkdir(parents=True)
    state.chmod(0o700)
    (state / 'messages').chmod(0o755)
    (state / 'requests.jsonl').write_text('{}\n')
    (state / 'messages' / '000001-0a.json').write_text('{"seq": 1}\n')
    for path in (state / 'requests.jsonl', state / 'messages' / '000001-0a.json'):
        path.chmod(0o644)
    with Emulator(state, no_smtp=True):
        found = modes(str(state))
    assert found['messages'] == 0o700
    assert found['requests.jsonl'] == found['messages/000001-0a.json'] == 0o600


# ------------------------------------------------------ the state directory
def run_k5emu(state_dir, timeout=10):
    """Run ``python -m k5emu`` on ``state_dir``; return (exit code or None if it kept running, stderr)."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    process = subprocess.Popen([sys.executable, '-m', 'k5emu', '--state-dir', str(state_dir), '--no-smtp'], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _out, err = process.communicate(timeout=timeout)
        return process.returncode, err
    except subprocess.TimeoutExpired:
        process.terminate()
        _out, err = process.communicate(timeout=10)
        return None, err


def test_a_state_directory_open_to_others_is_refused(tmp_path):
    state = tmp_path / 'open'
    state.mkdir()
    state.chmod(0o755)
    code, err = run_k5emu(state)
    assert code == 2, err
    assert 'refusing the state directory %s: its mode 0755 lets other users in' % state in err
    assert 'chmod 700' in err
    assert os.listdir(state) == []
    with pytest.raises(EmulatorError, match='its mode 0755'):
        Emulator(state).start()
    assert os.listdir(state) == []


@pytest.mark.skipif(os.geteuid() != 0, reason='giving a directory to another user needs root')
def test_a_state_directory_of_another_user_is_refused(tmp_path):
    state = tmp_path / 'foreign'
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    code, err = run_k5emu(state)
    assert code == 2, err
    assert 'refusing the state directory %s: it belongs to uid 65534, not to uid 0' % state in err
    assert os.listdir(state) == []


def test_a_new_state_directory_is_created_0700(tmp_path):
    with Emulator(tmp_path / 'new' / 'state', no_smtp=True) as emu:
        assert stat.S_IMODE(os.stat(emu.state_dir).st_mode) == 0o700


# ------------------------------------------------------------ endpoint.json
def dead_pid():
    process = subprocess.Popen(['true'])
    process.wait()
    return process.pid


def write_stale_endpoint(state_dir):
    stale = {'url': 'https://127.0.0.1:9', 'auth_url': 'https://127.0.0.1:9/v3', 'ca_cert': '/nonexistent',
             'pid': dead_pid(), 'admin_secret': 'stale'}
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(state_dir, 'endpoint.json'), 'w', encoding='utf-8') as handle:
        json.dump(stale, handle)
    return stale


def test_a_stale_endpoint_json_is_removed_first_and_replaced_only_when_listening(tmp_path):
    """The emulator removes a killed emulator's endpoint.json before its slow start-up steps
    (certificates, state, services), and writes its own only once it answers."""
    state = str(tmp_path / 'state')
    stale = write_stale_endpoint(state)
    path = os.path.join(state, 'endpoint.json')
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    process = subprocess.Popen([sys.executable, '-m', 'k5emu', '--state-dir', state, '--no-smtp'], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen, deadline = [], time.monotonic() + 20
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with open(path, encoding='utf-8') as handle:
                    content = json.load(handle)
            except FileNotFoundError:
                content = 'missing'
            except ValueError:
                content = 'partial'
            state_seen = 'stale' if content == stale else 'missing' if content == 'missing' else content
            if not seen or seen[-1] != state_seen:
                seen.append(state_seen)
            if isinstance(state_seen, dict):
                break
            time.sleep(0.0005)
        new = seen[-1]
        assert isinstance(new, dict) and new['pid'] == process.pid, seen
        assert [s if isinstance(s, str) else 'new' for s in seen] == ['stale', 'missing', 'new'], seen
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert requests.get(new['url'] + '/_emulator/ping', headers={SECRET_HEADER: new.get('admin_secret', '')},
                            verify=new['ca_cert'], timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_control_never_returns_a_stale_endpoint(tmp_path):
    state = tmp_path / 'state'
    stale = write_stale_endpoint(str(state))
    with Emulator(state, no_smtp=True) as emu:
        assert emu.endpoint['pid'] == emu.pid != stale['pid']
        assert emu.url != stale['url'] and emu.endpoint['admin_secret'] != 'stale'
        assert emu.config()['min_interval'] == 1.0
    assert not os.path.exists(os.path.join(str(state), 'endpoint.json'))


# --------------------------------------------------------------------- clocks
@pytest.fixture(name='wall_clock')
def fixture_wall_clock(monkeypatch):
    """A wall clock (time.time) that a test steps, as NTP would; the monotonic clock runs on."""
    real = time.time
    step = {'seconds': 0.0}
    monkeypatch.setattr(time, 'time', lambda: real() + step['seconds'])
    return step


def login(identity, password=DEFAULT_PASSWORD):
    body = json.loads(auth_body())
    body['auth']['identity']['password']['user']['password'] = password
    return identity.authenticate(json.dumps(body).encode('ascii'))


def test_tokens_and_lockouts_do_not_follow_steps_of_the_wall_clock(wall_clock):
    identity = Identity(load_config(), Settings(token_ttl=3600, lockout_attempts=5, lockout_window=900, lockout_duration=900))
    token = dict(login(identity).headers)['X-Subject-Token']
    wall_clock['seconds'] = 86400.0  # a day forward: the token's hour has not passed
    assert identity.validate(token) is not None
    for _attempt in range(5):
        assert login(identity, 'wrong').status == 401
    assert b'locked' in login(identity).body
    wall_clock['seconds'] += 3600.0  # an hour forward: the 15-minute lockout has not passed
    assert b'locked' in login(identity).body
    wall_clock['seconds'] -= 7200.0  # and back: still locked, not for longer
    assert b'locked' in login(identity).body


def test_failures_within_the_window_count_whatever_the_wall_clock_says(wall_clock):
    identity = Identity(load_config(), Settings(lockout_attempts=5, lockout_window=900, lockout_duration=900))
    for _attempt in range(4):
        assert login(identity, 'wrong').status == 401
    wall_clock['seconds'] = 1800.0  # a step forward does not drop the four failures of a second ago
    assert login(identity, 'wrong').status == 401
    assert b'locked' in login(identity).body
