# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 8, role side: secure by default and correct under faults, against the real Postfix.

- The relay's certificate is verified by default: a rogue relay (unknown CA, or a
  certificate for another name) never receives a byte after STARTTLS, so never the password.
- sasl_passwd and its index are never readable by an unprivileged user, not even while
  they are created or rewritten.
- A changed relay, a removed extra key and an unset CA file leave nothing behind; the demo
  leaves Postfix as it found it. (Bad options: test_postfix_relay_dirs.py.)

The machine's Postfix is shared: the ``machine`` fixture (conftest) locks and restores it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
import trustme

from test_postfix_relay import (
    CONFIG_DIR, SASL_PASSWD, converge, new_subject, postconf, queue, read_text,
    recap, role_vars, send_mail, sh, wait_for_subjects,
)

pytestmark = [
    pytest.mark.xdist_group('postfix'),
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/postfix'),
                       reason='needs root and Postfix (this machine is configured by the tests)'),
]

MARKER = '# managed by fjcloud.mail.postfix_relay'
NOBODY = 65534
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def given_credentials(emulator, **overrides):
    """Role options with credentials given (no API call), and the role's TLS defaults."""
    options = role_vars(emulator, postfix_relay_smtp_user='rogue-test-user',
                        postfix_relay_smtp_password='NeverSend-%s' % uuid.uuid4().hex, **overrides)
    del options['postfix_relay_tls_verify']
    return options


def tls_warnings(run):
    """The TLS opt-out warnings of the run (the module's action plugin gives it on the controller, once per run)."""
    return re.findall(r'\[WARNING\]: postfix_relay_tls_verify is false: .*?\(the default\)\.', ' '.join(run.output.split()))


def explicit_keys(config_dir=CONFIG_DIR):
    return {line.split(' =', 1)[0] for line in sh('postconf', '-c', config_dir, '-n').stdout.splitlines()}


class RogueRelay:
    """An SMTP server on 127.0.0.1 that offers STARTTLS and AUTH and records what it is sent.

    It records every connection: whether STARTTLS was asked for, and every byte that
    arrived after it (an AUTH command carries the password). Bounded: each connection
    gets at most 30 s and the accept loop stops with :meth:`stop`.
    """

    def __init__(self, cert):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _address = self.listener.accept()
            except socket.timeout:
                continue
            record = {'starttls': False, 'after_starttls': b''}
            self.connections.append(record)
            threading.Thread(target=self._serve, args=(client, record), daemon=True).start()

    def _serve(self, client, record):
        client.settimeout(30)
        try:
            client.sendall(b'220 rogue ESMTP\r\n')
            reader = client.makefile('rb')
            for _command in range(20):
                line = reader.readline()
                if not line:
                    return
                verb = line.split(b' ', 1)[0].strip().upper()
                if verb in (b'EHLO', b'HELO'):
                    client.sendall(b'250-rogue\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n')
                elif verb == b'STARTTLS':
                    record['starttls'] = True
                    client.sendall(b'220 go ahead\r\n')
                    break
                else:
                    client.sendall(b'502 no\r\n')
            else:
                return
            tls = self.context.wrap_socket(client, server_side=True)
            for _read in range(20):
                data = tls.recv(4096)
                if not data:
                    return
                record['after_starttls'] += data
                if data.upper().startswith(b'EHLO'):
                    tls.sendall(b'250-rogue\r\n250 AUTH PLAIN LOGIN\r\n')
                else:
                    tls.sendall(b'535 5.7.8 no\r\n')
        except (OSError, ssl.SSLError):
            return
        finally:
            client.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


def deferred_ids():
    return {entry['queue_id'] for entry in queue() if entry['queue_name'] == 'deferred'}


def wait_until(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'not within %s s: %s' % (timeout, what)
        time.sleep(0.5)


# --------------------------------------------------------------------------- finding 1: TLS verified by default

@pytest.mark.parametrize('rogue', ['unknown CA', 'other host name'])
def test_rogue_relay_never_receives_auth(ansible, emulator, machine, rogue):
    """With the role's defaults, a relay that cannot prove it is the relay gets nothing after STARTTLS."""
    if rogue == 'unknown CA':
        # Signed by a CA nobody trusts; verified against the system's CA bundle (no CA file given).
        cert = trustme.CA().issue_cert('localhost')
        options_ca = {}
    else:
        # Signed by the CA the role is told to trust, but for another host.
        with open(emulator.ca_cert, 'rb') as ca_pem, open(os.path.join(os.path.dirname(emulator.ca_cert), 'ca-key.pem'), 'rb') as key:
            cert = trustme.CA.from_pem(ca_pem.read(), key.read()).issue_cert('other.example.com')
        options_ca = {'postfix_relay_tls_ca_file': emulator.ca_cert}
    relay = RogueRelay(cert)
    try:
        options = given_credentials(emulator, postfix_relay_port=relay.port, **options_ca)
        if not options_ca:
            del options['postfix_relay_tls_ca_file']
        password = options['postfix_relay_smtp_password']
        run = converge(ansible, options)
        assert run.rc == 0, run.output
        assert password not in run.output

        before = deferred_ids()
        send_mail(new_subject('rogue %s' % rogue))
        wait_until(lambda: any(c['starttls'] for c in relay.connections) and deferred_ids() - before,
                   'Postfix tried the rogue relay and deferred the mail')
        time.sleep(1)  # anything Postfix would send after STARTTLS comes right away
        # Postfix finishes the handshake, rejects the certificate and says only QUIT.
        sent = b''.join(c['after_starttls'] for c in relay.connections)
        # Lengths only: the assertion must not print what was sent (it would hold the password).
        assert len(sent.replace(b'QUIT\r\n', b'')) == 0, 'Postfix sent %d bytes to the rogue relay after STARTTLS' % len(sent)
        assert (b'AUTH' in sent.upper()) is False and (password.encode() in sent) is False
        [entry] = [e for e in queue() if e['queue_id'] in deferred_ids() - before]
        reason = entry['recipients'][0]['delay_reason']
        assert 'certificate' in reason.lower() or 'TLS' in reason, reason
        assert postconf('smtp_tls_security_level') == 'secure'
    finally:
        relay.stop()


def test_verified_relay_by_default_delivers(ansible, emulator, machine):
    """The right CA, defaults otherwise: secure level, no warning, the mail reaches the emulator's relay."""
    options = role_vars(emulator)
    del options['postfix_relay_tls_verify']
    run = converge(ansible, options)
    assert run.rc == 0, run.output
    assert tls_warnings(run) == [] and 'tls_verify is false' not in run.output
    assert postconf('smtp_tls_security_level') == 'secure'
    assert postconf('smtp_tls_CAfile') == emulator.ca_cert
    subject = new_subject('verified by default')
    send_mail(subject)
    [message] = wait_for_subjects(emulator, [subject])
    assert message['tls']['version'].startswith('TLSv1.')


def test_opt_out_warns_and_removes_the_ca_file(ansible, emulator, machine):
    """Verification off is an explicit opt-out with a warning; smtp_tls_CAfile of an earlier run goes."""
    options = role_vars(emulator)
    run = converge(ansible, options)
    assert run.rc == 0, run.output
    assert 'smtp_tls_CAfile' in explicit_keys()

    options = role_vars(emulator, postfix_relay_tls_verify=False, postfix_relay_tls_ca_file='')
    run = converge(ansible, options)
    assert run.rc == 0, run.output
    [warning] = tls_warnings(run)
    assert 'receives the SMTP password' in warning
    assert postconf('smtp_tls_security_level') == 'encrypt'
    assert 'smtp_tls_CAfile' not in explicit_keys()
    subject = new_subject('opt-out')
    send_mail(subject)
    wait_for_subjects(emulator, [subject])
    run = converge(ansible, options)
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output
    assert len(tls_warnings(run)) == 1  # every run


# --------------------------------------------------------------------------- finding 2: never readable by others

WATCHER = r'''
import json, os, sys, time
stop, dirs = sys.argv[1], sys.argv[2:]
hits, canary, tries = {}, 0, 0
deadline = time.monotonic() + 240
while not os.path.exists(stop) and time.monotonic() < deadline and tries < 20000000:
    for directory in dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            tries += 1
            try:
                with open(os.path.join(directory, name), 'rb') as handle:
                    handle.read(1)
            except OSError:
                continue
            if name == 'canary':
                canary += 1
            elif not name.startswith('main.cf'):  # main.cf is public; the rest holds secrets
                hits[name] = hits.get(name, 0) + 1
print(json.dumps({'hits': hits, 'canary': canary, 'tries': tries}))
'''


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def test_secret_files_are_never_readable_by_others(ansible, emulator, machine):
    """An unprivileged watcher, opening every file of eight config dirs in a tight loop while
    the role creates, rebuilds and rewrites sasl_passwd and its index, never reads one."""
    base = tempfile.mkdtemp(prefix='fjcloud-watch-')
    os.chmod(base, 0o755)
    try:
        dirs = []
        lines = ['[fleet]']
        for number in range(8):
            config_dir = os.path.join(base, 'host%d' % number)
            os.mkdir(config_dir)
            os.chmod(config_dir, 0o755)
            shutil.copy('/etc/postfix/main.cf', config_dir)
            with open(os.path.join(config_dir, 'canary'), 'w', encoding='utf-8') as handle:
                handle.write('readable by anyone\n')
            os.chmod(os.path.join(config_dir, 'canary'), 0o644)
            dirs.append(config_dir)
            lines.append('host%d ansible_connection=local postfix_relay_config_dir=%s postfix_relay_manage_service=false '
                         'ansible_python_interpreter=%s' % (number, config_dir, sys.executable))
        inventory = os.path.join(base, 'fleet.ini')
        with open(inventory, 'w', encoding='utf-8') as handle:
            handle.write('\n'.join(lines) + '\n')
        stop = os.path.join(base, 'stop')
        # The system's Python: nobody may not be able to reach the venv's.
        watcher = subprocess.Popen(['/usr/bin/python3', '-c', WATCHER, stop] + dirs, preexec_fn=as_nobody,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            options = given_credentials(emulator)
            for round_number in range(3):
                if round_number == 1:  # created again from nothing
                    for config_dir in dirs:
                        for name in ('sasl_passwd', 'sasl_passwd.db'):
                            os.unlink(os.path.join(config_dir, name))
                if round_number == 2:  # rewritten with a new password
                    options['postfix_relay_smtp_password'] = 'Rotated-%s' % uuid.uuid4().hex
                run = converge(ansible, options, hosts='fleet', extra_args=['-i', inventory, '--forks', '8'])
                assert run.rc == 0, run.output
                for number in range(8):
                    assert recap(run, 'host%d' % number)['changed'] > 0
        finally:
            open(stop, 'w', encoding='utf-8').close()
            out, err = watcher.communicate(timeout=60)
        report = json.loads(out or '{}') if watcher.returncode == 0 else {'error': err}
        assert report.get('canary', 0) > 0, report  # the watcher could read what others may read
        assert report['hits'] == {}, 'an unprivileged user read %s' % report['hits']
        for config_dir in dirs:
            for name in ('sasl_passwd', 'sasl_passwd.db'):
                status = os.stat(os.path.join(config_dir, name))
                assert (status.st_uid, status.st_mode & 0o7777) == (0, 0o600), (config_dir, name)
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- finding 9: converge on removal

def snapshot():
    return {name: read_text(os.path.join(CONFIG_DIR, name)) if os.path.exists(os.path.join(CONFIG_DIR, name)) else None
            for name in ('main.cf', 'sasl_passwd')}


def test_changed_relay_leaves_no_old_line(ansible, emulator, machine):
    """Host or port changes replace the role's line; the line of an earlier release is taken over; users' lines stay."""
    port = emulator.smtp_port
    other = '[other-relay.example.com]:25 keepme:kept-secret'
    old_release = '[localhost]:%d old-user:old-password' % port
    descriptor = os.open(SASL_PASSWD, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, 'w') as handle:
        handle.write('%s\n%s\n' % (other, old_release))

    options = given_credentials(emulator, postfix_relay_tls_ca_file=emulator.ca_cert)
    user, password = options['postfix_relay_smtp_user'], options['postfix_relay_smtp_password']
    run = converge(ansible, options)
    assert run.rc == 0, run.output
    assert read_text() == '%s\n%s\n[localhost]:%d %s:%s\n' % (other, MARKER, port, user, password)

    run = converge(ansible, dict(options, postfix_relay_host='127.0.0.1'))
    assert run.rc == 0, run.output
    assert read_text() == '%s\n%s\n[127.0.0.1]:%d %s:%s\n' % (other, MARKER, port, user, password)

    smtps = dict(options, postfix_relay_port=emulator.smtps_port, postfix_relay_tls_wrappermode=True)
    run = converge(ansible, smtps)
    assert run.rc == 0, run.output
    assert read_text() == '%s\n%s\n[localhost]:%d %s:%s\n' % (other, MARKER, emulator.smtps_port, user, password)
    for key in ('[localhost]:%d' % port, '[127.0.0.1]:%d' % port):
        assert sh('postmap', '-q', key, 'hash:' + SASL_PASSWD, check=False).stdout == '', key
    assert sh('postmap', '-q', '[other-relay.example.com]:25', 'hash:' + SASL_PASSWD).stdout.strip() == 'keepme:kept-secret'
    run = converge(ansible, smtps)
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output


def test_extra_key_set_to_null_is_removed(ansible, emulator, machine):
    """postfix_relay_main_cf_extra: {key: null} removes the key from main.cf (postconf -X); then nothing changes."""
    options = given_credentials(emulator, postfix_relay_main_cf_extra={'smtp_host_lookup': 'native', 'smtp_tls_loglevel': '1'})
    run = converge(ansible, options)
    assert run.rc == 0, run.output
    assert postconf('smtp_tls_loglevel') == '1'

    options['postfix_relay_main_cf_extra'] = {'smtp_host_lookup': 'native', 'smtp_tls_loglevel': None}
    run = converge(ansible, options)
    assert run.rc == 0, run.output
    assert 'smtp_tls_loglevel' not in explicit_keys()
    assert 'smtp_host_lookup' in explicit_keys()
    run = converge(ansible, options)
    assert run.rc == 0 and recap(run)['changed'] == 0, run.output


def test_demo_leaves_postfix_as_it_found_it(machine):
    """make demo (tools/demo.sh) ends with the host's main.cf and sasl_passwd as before and Postfix working."""
    before = snapshot()
    env = dict(os.environ, FJCLOUD_DEMO_SKIP_SETUP='1', PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    for name in list(env):
        if name.startswith(('ANSIBLE_', 'OS_')):
            del env[name]
    demo = subprocess.run(['bash', os.path.join(REPO_ROOT, 'tools', 'demo.sh')], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert 'second run:   changed=0' in demo.stdout
    assert snapshot() == before
    ca_file = postconf('smtp_tls_CAfile')
    assert not ca_file or os.path.exists(ca_file), 'smtp_tls_CAfile points at %s, which the demo deleted' % ca_file
    assert sh('postfix', 'check', check=False).returncode == 0
