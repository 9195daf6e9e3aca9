# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scenarios a-g of issue 9: the role on a fleet of real hosts (containers reached over SSH).

The scenarios build on each other, in this order, like an operator's day: converge (a), converge
again (b), look at the files (e), preview a change (f), apply a change while a host is down (d),
rotate the password under traffic (c), a host that lost a package the relay needs (g). Run them
with `make fleet`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid

from fleet_harness import DEMO_AUTH, RELAY_CA

INDEX_SUFFIX = {'hash': '.db', 'lmdb': '.lmdb'}
# The role's own view of the relay, changed by the scenarios that move it.
RELAY = {}


def mail_calls(emulator):
    """Mail API actions answered (throttled repeats left out) and Keystone logins, since the log was cleared."""
    records = emulator.log()
    actions = [(r['action'], r['status']) for r in records
               if r['service'] == 'mail' and r.get('error_code') != 'Throttling']
    logins = [r for r in records if r['service'] == 'keystone' and r['action'] == 'authenticate']
    return actions, len(logins)


def smtp_credentials(emulator):
    user = emulator.state()['contracts'][DEMO_AUTH['project_id']]['smtp_user']
    return user['user'], user['password']


def role_vars(emulator, **overrides):
    values = dict(
        postfix_relay_host='localhost',
        postfix_relay_port=emulator.smtp_port,
        postfix_relay_tls_ca_file=RELAY_CA,
        # The relay's name is only in /etc/hosts; loglevel 1 logs whether its certificate was verified.
        postfix_relay_main_cf_extra={'smtp_host_lookup': 'native', 'smtp_tls_loglevel': '1'},
        # The images carry the packages; the hosts must not reach the archive during the tests.
        postfix_relay_install_packages=False,
        postfix_relay_api_auth=dict(DEMO_AUTH, auth_url=emulator.auth_url),
        postfix_relay_api_endpoint=emulator.url,
        postfix_relay_api_ca_cert=emulator.ca_cert,
    )
    values.update(RELAY)
    values.update(overrides)
    return values


def assert_converged(run, hosts, changed):
    """Every host ok; changed says for each host whether it must report a change (True/False) or either (None)."""
    assert {h.name for h in hosts} <= set(run.recap), run.output
    for host in hosts:
        counts = run.recap[host.name]
        assert counts['failed'] == 0 and counts['unreachable'] == 0, (host, run.output)
        want = changed(host)
        if want is not None:
            assert (counts['changed'] > 0) == want, (host, counts, run.output)


def send_and_collect(emulator, hosts, tag, timeout=60):
    """A mail from every host; returns the relay's record of each, by host."""
    subjects = {host.name: '%s %s %s' % (tag, host.name, uuid.uuid4().hex[:8]) for host in hosts}
    for host in hosts:
        host.sendmail(subjects[host.name])
    return wait_for_subjects(emulator, subjects, timeout)


def wait_for_subjects(emulator, subjects, timeout):
    deadline = time.monotonic() + timeout
    wanted = set(subjects.values())
    while True:
        arrived = {m['subject']: m for m in emulator.messages() if m.get('subject') in wanted}
        if len(arrived) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = sorted(wanted - set(arrived))
    assert not missing, 'not delivered to the relay within %d s: %s' % (timeout, missing)
    return {key: arrived[subject] for key, subject in subjects.items()}


def test_a_converge_with_credentials_from_the_api(fleet, hosts, emulator):
    emulator.clear_log()
    run = fleet.run(role_vars(emulator))
    assert run.rc == 0, run.output
    assert_converged(run, hosts, changed=lambda host: True)
    actions, logins = mail_calls(emulator)
    assert actions == [('CreateSMTPUser', 200)] and logins == 1, (actions, logins)

    user, password = smtp_credentials(emulator)
    assert password not in run.output
    for host in hosts:
        assert host.postconf('smtp_tls_security_level') == 'secure', host
        assert host.postconf('smtp_tls_CAfile') == RELAY_CA, host
    for name, message in send_and_collect(emulator, hosts, 'converged').items():
        assert message['auth_user'] == user, name
        assert message['port_kind'] == 'submission' and message['tls']['version'].startswith('TLS'), (name, message)
    for host in hosts:
        assert 'Verified TLS connection established to localhost' in host.mail_log(), host


def test_b_second_converge_changes_nothing(fleet, hosts, emulator):
    emulator.clear_log()
    run = fleet.run(role_vars(emulator))
    assert run.rc == 0, run.output
    assert_converged(run, hosts, changed=lambda host: False)
    actions, logins = mail_calls(emulator)
    assert actions == [('CreateSMTPUser', 409), ('GetSMTPUserInfo', 200)] and logins == 1, (actions, logins)


def test_e_files_modes_map_types_and_foreign_settings(hosts, emulator):
    user, password = smtp_credentials(emulator)
    # Compared as digests: a failing assertion must not print the password.
    want = hashlib.sha256(('%s:%s\n' % (user, password)).encode()).hexdigest()
    for host in hosts:
        map_type = 'lmdb' if host.kind == 'lmdb' else 'hash'
        index = '/etc/postfix/sasl_passwd' + INDEX_SUFFIX[map_type]
        assert host.postconf('smtp_sasl_password_maps') == '%s:/etc/postfix/sasl_passwd' % map_type, host
        modes = host.sh('stat -c "%%a %%U %%G" /etc/postfix/sasl_passwd %s' % index).split('\n')
        assert modes[:2] == ['600 root root'] * 2, (host, modes)
        nexthop = host.postconf('relayhost')
        looked_up = host.sh("postmap -q '%s' %s:/etc/postfix/sasl_passwd | sha256sum" % (nexthop, map_type))
        assert looked_up.split()[0] == want, '%s: the index does not hold the SMTP credentials' % host
    lmdb = [host for host in hosts if host.kind == 'lmdb']
    assert lmdb and lmdb[0].sh('test ! -e /etc/postfix/sasl_passwd.db && echo no-hash-index').strip() == 'no-hash-index'
    for host in (host for host in hosts if host.kind == 'kept'):
        assert '[other.example.net]:587 other-user:other-password' in host.sh('cat /etc/postfix/sasl_passwd')
        looked_up = host.sh("postmap -q '[other.example.net]:587' hash:/etc/postfix/sasl_passwd").strip()
        assert looked_up == 'other-user:other-password', host
        assert host.postconf('message_size_limit') == '20480000'
        assert host.postconf('delay_warning_time') == '4h'


def fingerprint(host):
    """Content and metadata of every file the role may touch."""
    return host.sh('cd /etc/postfix && stat -c "%n %a %U %Y %s" main.cf sasl_passwd sasl_passwd.* '
                   '&& sha256sum main.cf sasl_passwd sasl_passwd.*')


def test_f_check_diff_after_a_port_change_changes_nothing_and_shows_no_secret(fleet, hosts, emulator):
    before = {host.name: fingerprint(host) for host in hosts}
    run = fleet.run(role_vars(emulator, postfix_relay_port=2525), extra_args=['--check', '--diff'])
    assert run.rc == 0, run.output
    assert_converged(run, hosts, changed=lambda host: True)
    assert run.output.count('[localhost]:2525') >= len(hosts), run.output
    assert {host.name: fingerprint(host) for host in hosts} == before
    password = smtp_credentials(emulator)[1]
    for secret in (password, 'other-password', DEMO_AUTH['password']):
        assert secret not in run.output


def test_d_a_host_down_during_the_play_converges_on_the_next_run(fleet, hosts, emulator):
    down = hosts[0]  # the first host: run_once must fall to the next one
    RELAY.update(postfix_relay_port=emulator.smtps_port, postfix_relay_tls_wrappermode=True)
    down.stop_sshd()
    try:
        run = fleet.run(role_vars(emulator))
    finally:
        down.start_sshd()
    assert run.rc != 0
    assert run.recap[down.name]['unreachable'] == 1, run.output
    assert_converged(run, hosts[1:], changed=lambda host: True)
    assert down.postconf('relayhost') == '[localhost]:%d' % emulator.smtp_port

    run = fleet.run(role_vars(emulator))
    assert run.rc == 0, run.output
    assert_converged(run, hosts, changed=lambda host: host is down)
    user = smtp_credentials(emulator)[0]
    for name, message in send_and_collect(emulator, hosts, 'after-outage').items():
        assert message['auth_user'] == user and message['port_kind'] == 'smtps', (name, message)


def test_c_rotation_is_one_run_and_loses_no_mail(fleet, hosts, emulator):
    old_user, old_password = smtp_credentials(emulator)
    subjects = {}
    done = threading.Event()

    def traffic():
        # One mail per host and round, from before the rotation until the service has issued the new
        # user (CreateSMTPUser answered): that covers the gap in which no valid user exists. Stopping
        # there keeps a delivery attempt from straddling a host's reload and flush. Bounded in rounds.
        for round_no in range(200):
            if done.is_set() or ('CreateSMTPUser', 200) in mail_calls(emulator)[0]:
                return
            for host in hosts:
                subject = 'rotation %s %03d' % (host.name, round_no)
                host.sendmail(subject)
                subjects['%s-%03d' % (host.name, round_no)] = subject
            time.sleep(0.2)

    sender = threading.Thread(target=traffic)
    emulator.clear_log()
    # A slow CreateSMTPUser (3 s, as a loaded service answers) holds the gap open: mail submitted
    # meanwhile meets the deleted user (535), must be deferred, and go out after the reload.
    emulator.fault(service='mail', action='CreateSMTPUser', delay=3)
    sender.start()
    try:
        run = fleet.run(role_vars(emulator, postfix_relay_rotate=True))
    finally:
        done.set()
        sender.join(timeout=120)
    assert run.rc == 0, run.output
    assert_converged(run, hosts, changed=lambda host: True)
    actions = mail_calls(emulator)[0]
    assert actions == [('GetSMTPUserInfo', 200), ('DeleteSMTPUser', 200), ('CreateSMTPUser', 200)], actions
    new_user, new_password = smtp_credentials(emulator)
    assert new_password != old_password
    for secret in (old_password, new_password):
        assert secret not in run.output

    delivered = wait_for_subjects(emulator, subjects, timeout=90)
    assert {m['auth_user'] for m in delivered.values()} <= {old_user, new_user}
    logs = {host.name: host.mail_log() for host in hosts}
    for name, log in logs.items():
        assert 'status=bounced' not in log, name
        assert 'Mail queue is empty' in next(h for h in hosts if h.name == name).sh('postqueue -p'), name
    # The gap was hit: mail was refused with the old password and went out after the reload.
    deferred = sum(log.count('535 5.7.8') for log in logs.values())
    assert deferred > 0, 'no mail fell into the gap between the rotation and the reloads'
    print('rotation: %d mails submitted during the run, %d deliveries deferred with 535, all delivered'
          % (len(subjects), deferred))


# A local apt repository in the container, from the .debs debootstrap left in
# its cache, and nothing else in the sources: the host installs packages the
# way a real one does (apt-get update, then apt) without leaving loopback.
LOCAL_APT_REPOSITORY = r'''
set -eu
mkdir -p /srv/fleet-repo /root/apt-sources.saved
cp /var/cache/apt/archives/libsasl2-modules_*.deb /srv/fleet-repo/
cd /srv/fleet-repo
for deb in *.deb; do
    dpkg-deb -f "$deb"
    printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$deb" "$(stat -c %s "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)"
done >Packages
mv /etc/apt/sources.list /etc/apt/sources.list.d/* /root/apt-sources.saved/ 2>/dev/null || true
echo 'deb [trusted=yes] file:/srv/fleet-repo ./' >/etc/apt/sources.list
# A cache older than the role's cache_valid_time (a day), as on a host that has
# not updated for a while: the role must update it to find the package.
rm -rf /var/lib/apt/lists/* /var/lib/apt/periodic/update-success-stamp
touch -d '2 days ago' /var/lib/apt/lists
'''


def package_status(host, package):
    return host.sh("dpkg-query -W -f='${Status}' %s 2>/dev/null || true" % package).strip()


def test_g_a_missing_package_is_installed_and_mail_goes_out(fleet, hosts, emulator):
    host = next(host for host in hosts if host.release == 'bookworm' and host.kind == 'hash')
    host.sh(LOCAL_APT_REPOSITORY)
    # Without the SASL client modules, Postfix cannot authenticate to the relay.
    host.sh('dpkg -r libsasl2-modules >/dev/null && postfix reload >/dev/null 2>&1')
    assert package_status(host, 'libsasl2-modules') != 'install ok installed'

    run = fleet.run(role_vars(emulator, postfix_relay_install_packages=True), extra_args=['--limit', host.name])
    assert run.rc == 0, run.output
    assert_converged(run, [host], changed=lambda _host: True)
    # A handler: the configuring task found the package missing, changed nothing, then configures again.
    assert 'HANDLER [fjcloud.mail.postfix_relay : Install the missing packages (apt)]' in run.output, run.output
    assert package_status(host, 'libsasl2-modules') == 'install ok installed'
    # Postfix's smtp processes load the SASL modules when they start: the role reloads.
    assert re.search(r'HANDLER \[fjcloud.mail.postfix_relay : Reload Postfix\] \**\nchanged: ', run.output), run.output

    user = smtp_credentials(emulator)[0]
    message = send_and_collect(emulator, [host], 'after-install')[host.name]
    assert message['auth_user'] == user, message

    # Everything is there now: the next run installs nothing and changes nothing.
    run = fleet.run(role_vars(emulator, postfix_relay_install_packages=True), extra_args=['--limit', host.name])
    assert run.rc == 0, run.output
    assert_converged(run, [host], changed=lambda _host: False)
    assert 'Install the missing packages (apt)' not in run.output, run.output
