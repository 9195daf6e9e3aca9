# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the emulator's SMTP relay with smtplib over real TLS."""

from __future__ import annotations

import base64
import json
import os
import smtplib
import ssl
import time

import pytest

from k5emu import DEFAULT_PROJECT_ID
from k5emu.control import Emulator, EmulatorError

MESSAGE = ('From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: Hello relay\r\n'
           'Message-ID: <test-1@example.com>\r\n\r\nThe body.\r\n')


@pytest.fixture(name='emulator')
def fixture_emulator(emu):
    """These tests call the relay and the API directly: the unpaced emulator."""
    return emu


def create_smtp_user(emulator):
    """Create the demo contract's SMTP user through the mail API; return (user, password)."""
    reply = emulator.mail('CreateSMTPUser', token=emulator.token())
    assert reply.status_code == 200, reply.text
    return current_credentials(emulator)


def current_credentials(emulator):
    smtp_user = emulator.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user']
    return smtp_user['user'], smtp_user['password']


def client_context(emulator, tls_version=None):
    context = ssl.create_default_context(cafile=emulator.ca_cert)
    if tls_version is not None:
        context.minimum_version = context.maximum_version = tls_version
    return context


def submission(emulator, host='localhost', tls_version=None):
    """An SMTP client on the submission port after STARTTLS (certificate and host name verified)."""
    client = smtplib.SMTP(host, emulator.smtp_port, timeout=10)
    client.ehlo('client.example.com')
    client.starttls(context=client_context(emulator, tls_version))
    client.ehlo('client.example.com')
    return client


def plain_auth(user, password):
    return base64.b64encode(('\0%s\0%s' % (user, password)).encode()).decode()


def test_endpoint_json_has_smtp_block(emulator):
    with open(os.path.join(emulator.state_dir, 'endpoint.json'), encoding='utf-8') as handle:
        endpoint = json.load(handle)
    assert endpoint['smtp'] == {'host': '127.0.0.1', 'port': emulator.smtp_port, 'smtps_port': emulator.smtps_port}
    assert isinstance(emulator.smtp_port, int) and emulator.smtp_port > 0
    assert isinstance(emulator.smtps_port, int) and emulator.smtps_port > 0
    assert emulator.smtp_port != emulator.smtps_port != emulator.port
    assert endpoint['url'] == emulator.url and endpoint['auth_url'] == emulator.url + '/v3'
    assert endpoint['ca_cert'] == emulator.ca_cert


def test_starttls_auth_plain_delivers(emulator):
    user, password = create_smtp_user(emulator)
    with submission(emulator) as client:
        assert sorted(client.esmtp_features['auth'].split()) == ['LOGIN', 'PLAIN']
        assert 'starttls' not in client.esmtp_features
        client.user, client.password = user, password
        code, _text = client.auth('PLAIN', client.auth_plain)
        assert code == 235
        sent_at = round(time.time(), 6)  # the record's precision
        assert client.sendmail('sender@example.com', ['rcpt@example.com', 'other@example.org'], MESSAGE) == {}
    record, = emulator.wait_for_messages(1, timeout=5)
    assert record['seq'] >= 1 and record['id']
    assert sent_at <= record['time'] <= time.time()
    assert record['source'] == 'smtp'
    assert record['port_kind'] == 'submission'
    assert record['auth_user'] == user
    assert record['project_id'] == DEFAULT_PROJECT_ID
    assert record['tls']['version'] in ('TLSv1.2', 'TLSv1.3')
    assert record['tls']['cipher']
    assert record['mail_from'] == 'sender@example.com'
    assert record['rcpt_tos'] == ['rcpt@example.com', 'other@example.org']
    assert record['data'] == MESSAGE
    assert record['message_id'] == '<test-1@example.com>'
    assert record['subject'] == 'Hello relay'
    assert record['helo'] == 'client.example.com'
    # the file store
    files = os.listdir(os.path.join(emulator.state_dir, 'messages'))
    assert files == ['%06d-%s.json' % (record['seq'], record['id'])]


def test_auth_login_over_starttls_by_address_tls12(emulator):
    user, password = create_smtp_user(emulator)
    with submission(emulator, host='127.0.0.1', tls_version=ssl.TLSVersion.TLSv1_2) as client:
        client.user, client.password = user, password
        code, _text = client.auth('LOGIN', client.auth_login, initial_response_ok=False)
        assert code == 235
        client.sendmail('a@example.com', ['b@example.com'], 'Subject: login\r\n\r\nx\r\n')
    record, = emulator.wait_for_messages(1, timeout=5)
    assert record['auth_user'] == user
    assert record['tls']['version'] == 'TLSv1.2'
    assert record['subject'] == 'login'
    assert record['message_id'] is None


def test_implicit_tls_port(emulator):
    user, password = create_smtp_user(emulator)
    with smtplib.SMTP_SSL('localhost', emulator.smtps_port, context=client_context(emulator), timeout=10) as client:
        client.ehlo('client.example.com')
        assert 'starttls' not in client.esmtp_features
        assert sorted(client.esmtp_features['auth'].split()) == ['LOGIN', 'PLAIN']
        client.login(user, password)
        client.sendmail('a@example.com', ['b@example.com'], 'Subject: smtps\r\n\r\n\xe9t\xe9\r\n'.encode('utf-8'))
    record, = emulator.wait_for_messages(1, timeout=5)
    assert record['port_kind'] == 'smtps'
    assert record['auth_user'] == user
    assert record['tls']['version'] in ('TLSv1.2', 'TLSv1.3')
    assert record['data'] == 'Subject: smtps\r\n\r\n\xe9t\xe9\r\n'


def test_wrong_password_is_535(emulator):
    user, password = create_smtp_user(emulator)
    with submission(emulator) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.login(user, password + 'x')
        assert failure.value.smtp_code == 535
        assert failure.value.smtp_error == b'5.7.8 Authentication credentials invalid'
    with smtplib.SMTP_SSL('localhost', emulator.smtps_port, context=client_context(emulator), timeout=10) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.login('NOSUCHUSER0000000000', password)
        assert failure.value.smtp_code == 535
    assert emulator.messages() == []
    # the log has the failures, never the password
    with open(emulator.log_path, encoding='utf-8') as handle:
        log = handle.read()
    assert "AUTH PLAIN failed for user %r" % user in log
    assert password not in log


def test_mail_without_auth_is_530(emulator):
    create_smtp_user(emulator)
    with submission(emulator) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as failure:
            client.sendmail('a@example.com', ['b@example.com'], MESSAGE)
        assert failure.value.smtp_code == 530
    with smtplib.SMTP_SSL('localhost', emulator.smtps_port, context=client_context(emulator), timeout=10) as client:
        client.ehlo('client.example.com')
        code, _text = client.mail('a@example.com')
        assert code == 530
    assert emulator.messages() == []


def test_auth_and_mail_before_starttls_refused(emulator):
    user, password = create_smtp_user(emulator)
    with smtplib.SMTP('localhost', emulator.smtp_port, timeout=10) as client:
        client.ehlo('client.example.com')
        assert 'starttls' in client.esmtp_features
        assert 'auth' not in client.esmtp_features
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.login(user, password)
        code, text = client.docmd('AUTH', 'PLAIN ' + plain_auth(user, password))
        assert code == 530, text
        code, text = client.mail('a@example.com')
        assert code == 530, text
    assert emulator.messages() == []


def test_rotation_refuses_old_password(emulator):
    old_user, old_password = create_smtp_user(emulator)
    with submission(emulator) as client:
        client.login(old_user, old_password)
    token = emulator.token()
    assert emulator.mail('DeleteSMTPUser', token=token).status_code == 200
    with submission(emulator) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.login(old_user, old_password)
        assert failure.value.smtp_code == 535
    assert emulator.mail('CreateSMTPUser', token=token).status_code == 200
    new_user, new_password = current_credentials(emulator)
    assert new_password != old_password
    with submission(emulator) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.login(old_user, old_password)
        assert failure.value.smtp_code == 535
    with submission(emulator) as client:
        client.login(new_user, new_password)
        client.sendmail('a@example.com', ['b@example.com'], MESSAGE)
    record, = emulator.wait_for_messages(1, timeout=5)
    assert record['auth_user'] == new_user


def test_listing_clear_and_reset(emulator):
    user, password = create_smtp_user(emulator)
    with submission(emulator) as client:
        client.login(user, password)
        for number in range(3):
            client.sendmail('a@example.com', ['b@example.com'], 'Subject: n%d\r\n\r\nx\r\n' % number)
    records = emulator.wait_for_messages(3, timeout=5)
    assert [r['subject'] for r in records] == ['n0', 'n1', 'n2']
    assert [r['seq'] for r in records] == sorted(r['seq'] for r in records)
    assert emulator.clear_messages() == 3
    assert emulator.messages() == []
    with submission(emulator) as client:
        client.login(user, password)
        client.sendmail('a@example.com', ['b@example.com'], MESSAGE)
    later, = emulator.wait_for_messages(1, timeout=5)
    assert later['seq'] > records[-1]['seq']
    emulator.reset()
    assert emulator.messages() == []
    assert os.listdir(os.path.join(emulator.state_dir, 'messages')) == []
    with pytest.raises(EmulatorError, match='0 message'):
        emulator.wait_for_messages(1, timeout=0.3)


def test_restart_keeps_ports_and_messages(emulator):
    user, password = create_smtp_user(emulator)
    with submission(emulator) as client:
        client.login(user, password)
        client.sendmail('a@example.com', ['b@example.com'], MESSAGE)
    before = emulator.wait_for_messages(1, timeout=5)
    ports = emulator.smtp_port, emulator.smtps_port
    emulator.restart()
    assert (emulator.smtp_port, emulator.smtps_port) == ports
    assert emulator.messages() == before
    with submission(emulator) as client:
        client.login(user, password)
        client.sendmail('a@example.com', ['b@example.com'], MESSAGE)
    after = emulator.wait_for_messages(2, timeout=5)
    assert after[1]['seq'] > before[0]['seq']


def test_no_smtp_option(tmp_path):
    with Emulator(tmp_path / 'state', no_smtp=True) as emu:
        assert 'smtp' not in emu.endpoint
        assert emu.smtp_port is None and emu.smtps_port is None
        assert emu.messages() == []
