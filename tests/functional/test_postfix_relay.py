# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postfix_relay role, run by real ansible-playbook commands against the emulator.

The role configures this machine's Postfix, which relays through the emulator's SMTP
relay; the emulator's message store tells what arrived, as whom and over which TLS.

What needs mail delivered through this machine's Postfix is here: a rotation defers then
delivers, a fleet shares one API exchange, port 465, a failed postfix check. The role's other
behaviours are proven on private configuration directories (test_postfix_relay_dirs.py),
the module's on its own (test_postfix_checks.py, test_postfix_index.py), TLS verification
and file modes in test_postfix_secure.py.

These tests share the machine's Postfix: they are all in this module, in the xdist
group ``postfix`` (run with ``--dist loadgroup`` under ``-n``), and each one holds a
file lock and puts back what it changed (main.cf, sasl_passwd and its index, the
queue it filled, whether Postfix ran).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import smtplib
import subprocess
import sys
import time
import uuid

import pytest

from harness import DEMO_AUTH, keystone_requests, mail_actions, smtp_user_of
from k5emu.control import Emulator, EmulatorError

pytestmark = [
    pytest.mark.xdist_group('postfix'),
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/postfix'),
                       reason='needs root and Postfix (this machine is configured by the tests)'),
]

CONFIG_DIR = '/etc/postfix'
SASL_PASSWD = CONFIG_DIR + '/sasl_passwd'
SASL_INDEX = SASL_PASSWD + '.db'
PENDING_MARKER = CONFIG_DIR + '/.postfix_relay-reload-pending'
SAVED_FILES = ('main.cf', 'sasl_passwd', 'sasl_passwd.db', '.postfix_relay-reload-pending')
MARKER = '# managed by fjcloud.mail.postfix_relay'
CONFIG_TASK = 'Configure sasl_passwd, its index and main.cf'
REPORT_TASK = "Report what changed in Postfix's configuration (passwords masked)"
LOCK_FILE = '/tmp/fjcloud-mail-postfix.lock'
MAILLOG = '/var/log/postfix.log'
ROLE = 'fjcloud.mail.postfix_relay'


# --------------------------------------------------------------------------- helpers

def sh(*argv, check=True, stdin=None):
    completed = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if check and completed.returncode != 0:
        raise AssertionError('%s failed (%s): %s%s' % (' '.join(argv), completed.returncode, completed.stdout, completed.stderr))
    return completed


def postfix_running(config_dir=CONFIG_DIR):
    return sh('postfix', '-c', config_dir, 'status', check=False).returncode == 0


def postconf(name, config_dir=CONFIG_DIR):
    return sh('postconf', '-c', config_dir, '-h', name).stdout.strip()


def queue():
    """The mail queue: ``postqueue -j`` records (queue_id, queue_name, recipients[].delay_reason)."""
    return [json.loads(line) for line in sh('postqueue', '-j').stdout.splitlines() if line.strip()]


def send_mail(subject, via='sendmail'):
    """Hand a mail to the local Postfix with sendmail, or over SMTP to port 25."""
    sender, rcpt = 'tests@example.com', 'rcpt@example.net'
    message = 'From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s@tests.example.com>\n\nfjcloud.mail test.\n' % (
        sender, rcpt, subject, uuid.uuid4())
    if via == 'sendmail':
        sh('/usr/sbin/sendmail', '-f', sender, rcpt, stdin=message)
    else:
        with smtplib.SMTP('127.0.0.1', 25, timeout=30) as smtp:
            smtp.sendmail(sender, [rcpt], message.replace('\n', '\r\n'))


def new_subject(label):
    return 'postfix_relay %s %s' % (label, uuid.uuid4().hex[:12])


def received(emulator, subjects):
    """The stored messages whose subject is one of ``subjects``."""
    return [m for m in emulator.messages() if m.get('subject') in set(subjects)]


def wait_for_subjects(emulator, subjects, timeout=60):
    """Wait until every subject arrived at least once; return the matching messages."""
    deadline = time.monotonic() + timeout
    while True:
        found = received(emulator, subjects)
        if set(subjects) <= {m['subject'] for m in found}:
            return found
        if time.monotonic() > deadline:
            raise AssertionError('mail did not arrive within %s s: missing %s; queue %s; mail log:\n%s' % (
                timeout, sorted(set(subjects) - {m['subject'] for m in found}), queue(), maillog_tail()))
        time.sleep(0.5)


def maillog_size():
    return os.path.getsize(MAILLOG) if os.path.exists(MAILLOG) else 0


def maillog_since(offset):
    """What Postfix logged after ``offset`` (a size from :func:`maillog_size`)."""
    with open(MAILLOG, encoding='utf-8', errors='replace') as handle:
        handle.seek(offset)
        return handle.read()


def maillog_tail(lines=30):
    try:
        with open(MAILLOG, encoding='utf-8', errors='replace') as handle:
            return ''.join(handle.readlines()[-lines:])
    except OSError:
        return '(no %s)' % MAILLOG


def issued(emulator):
    smtp = smtp_user_of(emulator)
    assert smtp, 'the emulator has no SMTP user'
    return smtp['user'], smtp['password']


def api_vars(emulator):
    return dict(postfix_relay_api_endpoint=emulator.url, postfix_relay_api_ca_cert=emulator.ca_cert,
                postfix_relay_api_auth=dict(DEMO_AUTH, auth_url=emulator.auth_url))


def role_vars(emulator, **overrides):
    """Role options: credentials from the emulator's API, relay = its STARTTLS port, TLS verified."""
    options = dict(
        postfix_relay_host='localhost',
        postfix_relay_port=emulator.smtp_port,
        postfix_relay_tls_verify=True,
        postfix_relay_tls_ca_file=emulator.ca_cert,
        # Postfix looks relay names up in DNS; "localhost" is only in /etc/hosts.
        postfix_relay_main_cf_extra={'smtp_host_lookup': 'native'},
        # The packages are installed (molecule covers the install); no apt runs here.
        postfix_relay_install_packages=False,
    )
    options.update(api_vars(emulator))
    options.update(overrides)
    return options


def converge(ansible, options, hosts='localhost', extra_args=()):
    """Run the role once; options become play vars (JSON is YAML)."""
    play = [{'name': 'postfix_relay', 'hosts': hosts, 'gather_facts': False, 'vars': options, 'roles': [ROLE]}]
    return ansible.playbook(json.dumps(play, indent=1), extra_args=list(extra_args))


def recap(run, host='localhost'):
    """The PLAY RECAP counters of a host."""
    for line in run.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == host and ':' in fields[1:2]:
            return {k: int(v) for k, v in (f.split('=') for f in fields[2:])}
    raise AssertionError('no recap for %s:\n%s' % (host, run.output))


def task_name(result):
    """The task's name without the role prefix ("fjcloud.mail.postfix_relay : ")."""
    return result['_task'].split(' : ', 1)[-1]


def task_results(run, name):
    return [r for r in run.results if task_name(r) == name]


def changed_tasks(run):
    return [task_name(r) for r in run.results if r.get('changed')]


def read_text(path=SASL_PASSWD):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def mode_of(path):
    return oct(os.stat(path).st_mode & 0o7777)


# --------------------------------------------------------------------------- the machine's Postfix

def start_postfix(attempts=10):
    """Start the machine's Postfix with the init script, which copies /etc/hosts into smtp's chroot.

    The script refuses while any postmulti process runs on the machine (start-stop-daemon
    matches the executable), also one in a container: try again, a bounded number of times.
    """
    for attempt in range(attempts):
        started = sh('service', 'postfix', 'start', check=False)
        if postfix_running():
            return
        if attempt + 1 < attempts:
            time.sleep(1)
    raise AssertionError('service postfix start failed %d times: %s%s' % (attempts, started.stdout, started.stderr))


@contextlib.contextmanager
def locked_machine():
    """This machine's Postfix, locked for the test and put back afterwards (the ``machine`` fixture of conftest).

    Saved: /etc/postfix's main.cf, sasl_passwd, its index and the role's reload
    marker, whether Postfix runs, and the queue ids present before (mail the test
    left in the queue is deleted). During the test Postfix logs to /var/log/postfix.log.
    """
    with open(LOCK_FILE, 'w', encoding='utf-8') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = {}
        for name in SAVED_FILES:
            path = os.path.join(CONFIG_DIR, name)
            if os.path.exists(path):
                with open(path, 'rb') as handle:
                    saved[name] = (handle.read(), os.stat(path).st_mode & 0o7777)
        was_running = postfix_running()
        if not was_running:  # postqueue reads the queue through the running Postfix
            start_postfix()
        queued_before = {entry['queue_id'] for entry in queue()}
        sh('postconf', '-e', 'maillog_file=' + MAILLOG)
        try:
            yield
        finally:
            for entry in queue():
                if entry['queue_id'] not in queued_before:
                    sh('postsuper', '-d', entry['queue_id'], check=False)
            for name in SAVED_FILES:
                path = os.path.join(CONFIG_DIR, name)
                if name in saved:
                    content, mode = saved[name]
                    if os.path.exists(path):
                        os.chmod(path, 0o600)
                    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(descriptor, 'wb') as handle:
                        handle.write(content)
                    os.chmod(path, mode)
                elif os.path.exists(path):
                    os.unlink(path)
            if was_running:
                if postfix_running():
                    sh('postfix', 'reload', check=False)
                else:
                    sh('postfix', 'start', check=False)
            elif postfix_running():
                sh('postfix', 'stop', check=False)


# --------------------------------------------------------------------------- tests

def test_rotation_defers_then_delivers_every_mail_once(ansible, emulator, machine):
    """After a rotation Postfix's mail is deferred (535), not bounced; the role's next run delivers it, once each."""
    run = converge(ansible, role_vars(emulator))
    assert run.rc == 0, run.output
    first_user, first_password = issued(emulator)
    assert read_text().count('[localhost]:%d %s:%s\n' % (emulator.smtp_port, first_user, first_password)) == 1

    before = new_subject('before rotation')
    send_mail(before)
    [message] = wait_for_subjects(emulator, [before])
    assert message['auth_user'] == first_user and message['tls']['version'].startswith('TLSv1.')

    # Rotate: the service issues a new password; the relay now refuses the old one.
    rotated = ansible.module('smtp_user', dict(endpoint=emulator.url, ca_cert=emulator.ca_cert,
                                               auth=dict(DEMO_AUTH, auth_url=emulator.auth_url), rotate=True))
    assert rotated.rc == 0 and rotated.result['changed'], rotated.output
    new_user, new_password = issued(emulator)
    assert new_password != first_password

    log_offset = maillog_size()
    pending = [new_subject('deferred %d' % i) for i in range(3)]
    for index, subject in enumerate(pending):
        send_mail(subject, via='sendmail' if index % 2 == 0 else 'smtp')

    # Every one is deferred (the relay answered 535 to AUTH), none bounced, none arrived.
    deadline = time.monotonic() + 60
    while True:
        deferred = [entry for entry in queue() if entry['queue_name'] == 'deferred']
        if len(deferred) >= len(pending):
            break
        assert time.monotonic() < deadline, 'not deferred: queue %s\n%s' % (queue(), maillog_tail())
        time.sleep(0.5)
    reasons = ' '.join(r.get('delay_reason', '') for entry in deferred for r in entry['recipients'])
    assert '535' in reasons, reasons
    log = maillog_since(log_offset)
    assert 'status=deferred' in log and 'status=bounced' not in log, log
    assert received(emulator, pending) == []

    # The role fetches the new credentials, rebuilds the index, reloads and flushes the queue.
    emulator.clear_log()
    run = converge(ansible, role_vars(emulator))
    assert run.rc == 0, run.output
    assert mail_actions(emulator) == [('CreateSMTPUser', 409), ('GetSMTPUserInfo', 200)]
    assert {CONFIG_TASK, 'Flush the Postfix queue (deferred mail goes out with the new settings)',
            'Reload Postfix'} <= set(changed_tasks(run)), changed_tasks(run)

    wait_for_subjects(emulator, pending)
    time.sleep(2)  # a duplicate would come right behind
    arrived = received(emulator, [before] + pending)
    by_subject = {}
    for message in arrived:
        by_subject.setdefault(message['subject'], []).append(message)
    assert sorted(by_subject) == sorted([before] + pending)
    assert all(len(messages) == 1 for messages in by_subject.values()), by_subject
    assert len({m['message_id'] for m in arrived}) == len(arrived)
    assert all(by_subject[subject][0]['auth_user'] == new_user for subject in pending)
    assert [entry for entry in queue() if entry['queue_name'] == 'deferred'] == []


def test_fleet_one_api_exchange_for_all_hosts(ansible, emulator, machine, tmp_path):
    """Four hosts, one API exchange: every sasl_passwd gets the same, correct line."""
    others = ['relay-b', 'relay-c', 'relay-d']
    lines = ['[fleet]',
             'relay-main ansible_connection=local',
             '[fleet:vars]',
             'ansible_python_interpreter=%s' % sys.executable]
    for name in others:
        config_dir = tmp_path / name
        config_dir.mkdir()
        with open('/etc/postfix/main.cf', 'rb') as source:
            (config_dir / 'main.cf').write_bytes(source.read())
        lines.insert(2, '%s ansible_connection=local postfix_relay_config_dir=%s postfix_relay_manage_service=false' % (
            name, config_dir))
    inventory = tmp_path / 'fleet.ini'
    inventory.write_text('\n'.join(lines) + '\n')

    keystone_before = len(keystone_requests(emulator))
    run = converge(ansible, role_vars(emulator), hosts='fleet', extra_args=['-i', str(inventory), '--forks', '4'])
    assert run.rc == 0, run.output
    assert mail_actions(emulator) == [('CreateSMTPUser', 200)]
    assert len(keystone_requests(emulator)) - keystone_before == 1
    user, password = issued(emulator)
    expected = '[localhost]:%d %s:%s\n' % (emulator.smtp_port, user, password)
    for name, config_dir in [('relay-main', CONFIG_DIR)] + [(n, str(tmp_path / n)) for n in others]:
        assert recap(run, name)['failed'] == 0
        path = os.path.join(config_dir, 'sasl_passwd')
        if config_dir == CONFIG_DIR:  # may hold lines of other relays
            ours = [line + '\n' for line in read_text(path).splitlines() if line.startswith(expected.split()[0] + ' ')]
            assert ours == [expected], name
        else:
            assert read_text(path) == MARKER + '\n' + expected, name
        assert mode_of(path) == '0o600' and mode_of(path + '.db') == '0o600', name
        assert postconf('relayhost', config_dir) == '[localhost]:%d' % emulator.smtp_port
        assert postconf('smtp_sasl_password_maps', config_dir) == 'hash:%s' % path
        lookup = sh('postmap', '-c', config_dir, '-q', '[localhost]:%d' % emulator.smtp_port, 'hash:' + path)
        assert lookup.stdout.strip() == '%s:%s' % (user, password), name
    # Only the host that manages /etc/postfix touched the service.
    assert not os.path.exists(str(tmp_path / 'relay-b' / '.postfix_relay-reload-pending'))

    # Again: one exchange (409 then read), nothing changes anywhere.
    emulator.clear_log()
    run = converge(ansible, role_vars(emulator), hosts='fleet', extra_args=['-i', str(inventory), '--forks', '4'])
    assert run.rc == 0, run.output
    assert mail_actions(emulator) == [('CreateSMTPUser', 409), ('GetSMTPUserInfo', 200)]
    assert len(keystone_requests(emulator)) == 1
    for name in ['relay-main'] + others:
        assert recap(run, name)['changed'] == 0, (name, changed_tasks(run))

    subject = new_subject('fleet')
    send_mail(subject)
    [message] = wait_for_subjects(emulator, [subject])
    assert message['auth_user'] == user


def test_port_465_wrapper_mode(ansible, emulator, machine, tmp_path):
    """Port 465: TLS from the first byte (wrapper mode), encrypt without verification."""
    try:
        relay = Emulator(str(tmp_path / 'emulator-465'), smtps_port=465)
        relay.start()
        port, overrides = 465, {}
    except EmulatorError:
        # 465 is taken here: the emulator's own implicit-TLS port, wrapper mode set explicitly.
        relay, port, overrides = None, emulator.smtps_port, {'postfix_relay_tls_wrappermode': True}
    target = relay or emulator
    try:
        options = role_vars(target, postfix_relay_port=port, postfix_relay_tls_verify=False, **overrides)
        run = converge(ansible, options)
        assert run.rc == 0, run.output
        assert postconf('relayhost') == '[localhost]:%d' % port
        assert postconf('smtp_tls_wrappermode') == 'yes'
        assert postconf('smtp_tls_security_level') == 'encrypt'
        user, _password = issued(target)

        subject = new_subject('port %d' % port)
        send_mail(subject, via='smtp')
        [message] = wait_for_subjects(target, [subject])
        assert message['port_kind'] == 'smtps' and message['auth_user'] == user
        assert message['tls']['version'].startswith('TLSv1.')

        run = converge(ansible, options)
        assert run.rc == 0 and recap(run)['changed'] == 0, changed_tasks(run)
    finally:
        if relay is not None:
            relay.stop()


def test_failed_postfix_check_stops_before_reload(ansible, emulator, machine):
    """postfix check fails: the role stops before reloading (or starting), with Postfix's messages."""
    options = role_vars(emulator)
    run = converge(ansible, options)
    assert run.rc == 0, run.output
    assert postfix_running()

    # A data_directory that cannot exist: postfix check fails, the running Postfix does not mind.
    with open(CONFIG_DIR + '/main.cf', 'a', encoding='utf-8') as handle:
        handle.write('data_directory = /dev/null/postfix\n')
    assert sh('postfix', 'check', check=False).returncode != 0

    changed = dict(options, postfix_relay_main_cf_extra={'smtp_host_lookup': 'native, dns'})
    run = converge(ansible, changed)
    assert run.rc != 0
    [failure] = [r for r in run.results if r['_status'] == 'failed']
    assert task_name(failure) == 'Stop because postfix check failed'
    assert 'postfix check failed for /etc/postfix' in failure['msg'], failure['msg']
    assert 'was not reloaded' in failure['msg']
    assert '/dev/null/postfix' in failure['msg'], failure['msg']  # Postfix's own message
    assert task_results(run, 'Reload Postfix') == []
    assert os.path.exists(PENDING_MARKER)
    assert postfix_running()

    # Fixed, the next run reloads: the marker remembered the reload that did not happen.
    sh('postconf', '-X', 'data_directory')
    run = converge(ansible, changed)
    assert run.rc == 0, run.output
    assert [r['changed'] for r in task_results(run, 'Reload Postfix')] == [True]
    assert not os.path.exists(PENDING_MARKER)
    run = converge(ansible, changed)
    assert run.rc == 0 and recap(run)['changed'] == 0, changed_tasks(run)

    # Stopped Postfix and a broken configuration: not started.
    sh('postfix', 'stop')
    for dummy in range(50):
        if not postfix_running():
            break
        time.sleep(0.1)
    with open(CONFIG_DIR + '/main.cf', 'a', encoding='utf-8') as handle:
        handle.write('data_directory = /dev/null/postfix\n')
    run = converge(ansible, changed)
    assert run.rc != 0
    [failure] = [r for r in run.results if r['_status'] == 'failed']
    assert 'was not started' in failure['msg'] and '/dev/null/postfix' in failure['msg'], failure['msg']
    assert task_results(run, 'Start Postfix and enable it at boot') == []
    assert not postfix_running()
