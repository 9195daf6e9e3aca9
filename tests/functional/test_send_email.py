# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""send_email, run by real ansible commands against the emulator."""

from __future__ import annotations

import email
import email.policy
import json

import pytest

from harness import assert_clean_failure, mail_actions, refused_before_any_request

SENDER = 'ops@example.com'


def parsed(record):
    """The stored message, parsed (header values decoded)."""
    return email.message_from_string(record['data'], policy=email.policy.default)


def body_parts(message):
    return dict((part.get_content_type(), part.get_content()) for part in message.walk() if not part.is_multipart())


# ------------------------------------------------------------------ sending

def test_simple_form_from_a_verified_address(ansible, emulator, conn):
    emulator.set_identity(SENDER)
    run = ansible.module('send_email', dict(
        conn, sender=u'Jörg Müller <%s>' % SENDER, to=['alice@example.org', 'Bob <bob@example.org>'],
        cc=['carol@example.org'], bcc=['dave@example.org'], subject=u'Grüße from the relay',
        body_text=u'Plain text ü\n', body_html=u'<p>HTML ü</p>'))
    assert run.rc == 0, run.output
    result = run.result
    assert result['changed'] is True
    assert (result['action'], result['recipients']) == ('SendEmail', 4)
    assert len(result['request_id']) == 36
    assert mail_actions(emulator) == [('SendEmail', 200)]

    [record] = emulator.messages()
    assert record['source'] == 'api' and record['message_id'] == result['message_id']
    assert record['mail_from'] == SENDER
    assert sorted(record['rcpt_tos']) == ['alice@example.org', 'bob@example.org', 'carol@example.org', 'dave@example.org']
    message = parsed(record)
    assert message['Subject'] == u'Grüße from the relay'
    assert message['From'].addresses[0].display_name == u'Jörg Müller'
    assert message['From'].addresses[0].addr_spec == SENDER
    assert [str(address) for address in message['To'].addresses] == ['alice@example.org', 'Bob <bob@example.org>']
    assert message['Cc'] == 'carol@example.org' and message['Bcc'] is None
    assert body_parts(message) == {'text/plain': u'Plain text ü\n', 'text/html': u'<p>HTML ü</p>'}


def test_simple_form_in_a_playbook_with_the_from_alias_and_a_verified_domain(ansible, emulator, conn):
    emulator.set_identity('example.com')
    run = ansible.playbook('''
- hosts: localhost
  gather_facts: false
  tasks:
    - fjcloud.mail.send_email: %s
      vars:
        body: "Relay {{ inventory_hostname }} works"
      register: sent
    - ansible.builtin.assert:
        that:
          - sent is changed
          - sent.message_id | length > 0
          - sent.action == 'SendEmail'
''' % json.dumps(dict(conn, to='alice@example.org, bob@example.org', subject='Smoke test',
                      body_text='{{ body }}', charset='ISO-8859-1', **{'from': 'noreply@example.com'})))
    assert run.rc == 0, run.output
    [record] = emulator.messages()
    assert record['mail_from'] == 'noreply@example.com'
    assert record['rcpt_tos'] == ['alice@example.org', 'bob@example.org']
    message = parsed(record)
    assert message.get_content_charset() == 'iso-8859-1'
    assert message.get_content().rstrip('\n') == 'Relay localhost works'


def test_unverified_sender_fails_with_the_service_error(ansible, emulator, conn):
    run = ansible.module('send_email', dict(conn, sender='stranger@example.net', to=['alice@example.org'],
                                            subject='x', body_text='y'))
    message = assert_clean_failure(run, 'SendEmail failed: HTTP 400 MessageRejected: Email address is not verified.')
    assert 'stranger@example.net' in message
    assert '(request id %s)' % run.result['request_id'] in message
    assert len(run.result['request_id']) == 36
    assert (run.result['status'], run.result['error_code'], run.result['action']) == (400, 'MessageRejected', 'SendEmail')
    assert mail_actions(emulator) == [('SendEmail', 400)]  # a 400 is not repeated
    assert emulator.messages() == []


def test_raw_form_with_destinations(ansible, emulator, conn):
    emulator.set_identity(SENDER)
    raw = ('From: Ops <%s>\nTo: header-recipient@example.org\nSubject: =?UTF-8?B?5Lu25ZCN?=\nMIME-Version: 1.0\n'
           'Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nRaw body 本文\n' % SENDER)
    run = ansible.module('send_email', dict(conn, raw_message=raw, sender=SENDER,
                                            to=['dest1@example.org'], bcc=['Hidden <dest2@example.org>']))
    assert run.rc == 0, run.output
    assert (run.result['action'], run.result['recipients'], run.result['changed']) == ('SendRawEmail', 2, True)
    assert mail_actions(emulator) == [('SendRawEmail', 200)]
    [record] = emulator.messages()
    assert record['message_id'] == run.result['message_id']
    assert record['mail_from'] == SENDER
    # Destinations replace the recipients of the headers; the message itself is unchanged.
    assert record['rcpt_tos'] == ['dest1@example.org', 'dest2@example.org']
    assert record['data'] == raw
    assert parsed(record)['Subject'] == u'件名'


def test_raw_form_to_the_recipients_of_its_headers(ansible, emulator, conn):
    emulator.set_identity('example.com')
    raw = 'From: noreply@example.com\nTo: a@example.org, B <b@example.org>\nCc: c@example.org\nSubject: Raw\n\nBody\n'
    run = ansible.module('send_email', dict(conn, raw_message=raw))
    assert run.rc == 0, run.output
    assert run.result['recipients'] == 3
    [record] = emulator.messages()
    assert record['mail_from'] == 'noreply@example.com'
    assert record['rcpt_tos'] == ['a@example.org', 'b@example.org', 'c@example.org']


@pytest.mark.parametrize('args, action, recipients', [
    (dict(sender=SENDER, to=['a@example.org'], cc=['b@example.org'], subject='s', body_text='t'), 'SendEmail', 2),
    (dict(raw_message='From: %s\nTo: a@example.org\n\nbody\n' % SENDER), 'SendRawEmail', 1),
])
def test_check_mode_sends_nothing(ansible, emulator, conn, args, action, recipients):
    emulator.set_identity(SENDER)
    run = ansible.module('send_email', dict(conn, **args), check=True)
    assert run.rc == 0, run.output
    assert run.result['changed'] is True
    assert run.result['message_id'] is None and run.result['request_id'] is None
    assert (run.result['action'], run.result['recipients']) == (action, recipients)
    assert mail_actions(emulator) == []
    assert emulator.messages() == []


# ------------------------------------------------------------------ checked before any request

@pytest.mark.parametrize('args, messages', [
    (dict(sender=SENDER, to=['user%d@example.org' % number for number in range(51)], subject='s', body_text='t'),
     ['too many recipients: 51 in to, cc and bcc, the service accepts at most 50 per message']),
    (dict(sender=SENDER, to=['alice@example.org\r\nBcc: victim@example.net'], subject='s', body_text='t'),
     ["to[0] 'alice@example.org\\r\\nBcc: victim@example.net' is not a valid email address: "
      'it contains a line break (CR or LF), which could add mail headers']),
    (dict(sender=SENDER, to=['alice@example.org'], subject='Hi\nBcc: victim@example.net', body_text='t'),
     ['subject must be one line: it contains a line break (CR or LF), which could add mail headers']),
    (dict(sender='ops@localhost', to=['alice', 'a@b@example.org'], cc=['Ops, Team <ops@example.org>'], body_html='<p/>'),
     ["sender 'ops@localhost' is not a valid email address: the domain localhost has no dot",
      "to[0] 'alice' is not a valid email address: an address has exactly one @, found 0",
      "to[1] 'a@b@example.org' is not a valid email address: an address has exactly one @, found 2",
      "cc[0] 'Ops, Team <ops@example.org>' is not a valid email address: it holds more than one address",
      'subject is required (and not empty) when raw_message is not given']),
    (dict(to=['alice@example.org']),
     ['sender (from) is required when raw_message is not given',
      'subject is required (and not empty) when raw_message is not given',
      'no body: give body_text, body_html or both']),
    (dict(sender=SENDER, subject=u'件名', body_text=u'本文', charset='ISO-8859-1'),
     ['no recipient: give at least one address in to, cc or bcc',
      u"subject cannot be encoded in charset ISO-8859-1: '件名' at position 0",
      u"body_text cannot be encoded in charset ISO-8859-1: '本文' at position 0"]),
    (dict(raw_message='To: alice@example.org\nSubject: no sender\n\nbody\n'),
     ['raw_message has no From header: add one, or give sender (from)']),
    (dict(raw_message=u'From: Jörg <%s>\nTo: alice@example.org\nSubject: Grüße\n\nbody\n' % SENDER),
     ['raw_message: the header From, Subject contain raw non-ASCII characters: encode them as RFC 2047 encoded words']),
    (dict(raw_message='From: %s\nSubject: nobody\n\nbody\n' % SENDER),
     ['no recipient: raw_message has no To, Cc or Bcc header with an address, and none of to, cc or bcc is given']),
    (dict(raw_message='From: %s\nTo: a@example.org\n\nbody\n' % SENDER, subject='s'),
     ['parameters are mutually exclusive: raw_message|subject']),
])
def test_invalid_input_fails_before_any_request(ansible, emulator, conn, args, messages):
    emulator.set_identity(SENDER)
    run = ansible.module('send_email', dict(conn, **args))
    found = refused_before_any_request(run, emulator).split('; ')
    assert len(found) == len(messages), found
    for text, expected in zip(found, messages):
        assert text.startswith(expected), (text, expected)
    assert emulator.messages() == []


def test_message_over_two_megabytes_fails_before_any_request(ansible, emulator, conn, tmp_path):
    # 2 MB does not fit on a command line: the playbook reads the bodies from files.
    (tmp_path / 'text.txt').write_text('a' * (1024 * 1024))
    (tmp_path / 'html.html').write_text('b' * (1024 * 1024 + 1))
    play = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - fjcloud.mail.send_email: %s
'''
    args = dict(conn, sender=SENDER, to=['alice@example.org'], subject='big',
                body_text="{{ lookup('ansible.builtin.file', '%s', rstrip=false) }}" % (tmp_path / 'text.txt'),
                body_html="{{ lookup('ansible.builtin.file', '%s', rstrip=false) }}" % (tmp_path / 'html.html'))
    run = ansible.playbook(play % json.dumps(args))
    assert_clean_failure(run, 'the message is too large: body_text and body_html are 2,097,153 bytes in UTF-8 together, '
                              'the service accepts at most 2 MB (2,097,152 bytes) per message')
    assert mail_actions(emulator) == []

    # Exactly 2 MB is sent.
    emulator.set_identity(SENDER)
    (tmp_path / 'html.html').write_text('b' * (1024 * 1024))
    run = ansible.playbook(play % json.dumps(args))
    assert run.rc == 0, run.output
    assert mail_actions(emulator) == [('SendEmail', 200)]
    [record] = emulator.messages()
    parts = body_parts(parsed(record))
    assert (parts['text/plain'].rstrip('\n'), parts['text/html'].rstrip('\n')) == ('a' * 1024 * 1024, 'b' * 1024 * 1024)
