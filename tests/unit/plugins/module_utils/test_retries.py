# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one retry decision and the one retry loop, alone and through the client and Keystone."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
import requests
from urllib3.exceptions import IncompleteRead, ProtocolError

from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import (
    FINAL, LOST_REPLY, NOT_PROCESSED, NOT_SENT, SERVER_ERROR, K5MailError)
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import KeystonePassword
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import Pacer
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import (
    IDEMPOTENT, LOGIN, SEND, Backoff, run_with_retries, should_retry)
from ansible_collections.fjcloud.mail.plugins.module_utils.smtp_user import ensure_smtp_user
from fake_http import Reply, connection_refused

ENDPOINT = 'https://mail.example.com/'
KEYSTONE = 'https://identity.example.com/v3/auth/tokens'
CREATED = ('<CreateSMTPUserResponse><CreateSMTPUserResult><SMTPUser>U1</SMTPUser><SMTPPassword>P1</SMTPPassword>'
           '</CreateSMTPUserResult></CreateSMTPUserResponse>')
EXISTS = '<ErrorResponse><Error><Code>AlreadyExists</Code><Message>exists</Message></Error></ErrorResponse>'


def cut_short():
    return requests.exceptions.ChunkedEncodingError(ProtocolError('Connection broken', IncompleteRead(10, 20)))


@pytest.mark.parametrize('kind, failure, expected', [
    (IDEMPOTENT, NOT_SENT, True), (IDEMPOTENT, NOT_PROCESSED, True), (IDEMPOTENT, LOST_REPLY, True),
    (IDEMPOTENT, SERVER_ERROR, True), (IDEMPOTENT, FINAL, False),
    (SEND, NOT_SENT, True), (SEND, NOT_PROCESSED, True), (SEND, LOST_REPLY, False),
    (SEND, SERVER_ERROR, False), (SEND, FINAL, False),
    (LOGIN, NOT_SENT, True), (LOGIN, NOT_PROCESSED, True), (LOGIN, LOST_REPLY, False),
    (LOGIN, SERVER_ERROR, False), (LOGIN, FINAL, False),
])
def test_the_retry_decision(kind, failure, expected):
    assert should_retry(kind, K5MailError('X', 'r', failure=failure)) is expected


def test_the_loop_is_bounded_and_counts_attempts():
    sleeps = []

    def attempt():
        raise K5MailError('X', 'busy', failure=SERVER_ERROR)

    with pytest.raises(K5MailError) as info:
        run_with_retries(IDEMPOTENT, attempt, Backoff(3, rng=lambda: 0.5), sleeps.append)
    assert info.value.attempts == 4 and len(sleeps) == 3


def test_an_error_an_inner_loop_gave_up_on_is_not_retried_again():
    inner_calls = []

    def login():
        inner_calls.append(1)
        raise K5MailError('Keystone authentication', 'cut short', failure=LOST_REPLY)

    def outer():
        return run_with_retries(LOGIN, login, Backoff(5), lambda s: None)

    with pytest.raises(K5MailError) as info:
        run_with_retries(IDEMPOTENT, outer, Backoff(5), lambda s: None)
    assert len(inner_calls) == 1 and info.value.attempts == 1


# ------------------------------------------------------------ through the client

def client(session, clock, token='tok', keystone=None):
    return K5MailClient(ENDPOINT, token=token, keystone=keystone, session=session, retries=3,
                        pacer=Pacer(clock=clock, sleep=clock.sleep), sleep=clock.sleep, backoff=Backoff(3, rng=lambda: 0.5))


def test_a_read_with_a_reply_cut_short_is_retried(session, clock):
    session.expect(ENDPOINT, Reply(200, CREATED, breaks=cut_short())).expect(ENDPOINT, Reply(200, CREATED))
    response = client(session, clock).call('GetSMTPUserInfo')
    assert response.require_text('SMTPUser') == 'U1'
    assert response.earlier_attempt_may_have_acted is True


def test_a_send_with_a_reply_cut_short_is_not_repeated(session, clock):
    session.expect(ENDPOINT, Reply(200, '<SendEmailResponse><MessageId>m</MessageId></SendEmailResponse>', breaks=cut_short()))
    with pytest.raises(K5MailError) as info:
        client(session, clock).call('SendEmail', idempotent=False)
    assert str(info.value).startswith('SendEmail failed: HTTP 200 the reply was cut short: %s (' % ENDPOINT)
    assert info.value.attempts == 1


def test_a_retry_that_could_not_have_acted_does_not_count_as_possibly_processed(session, clock):
    session.expect(ENDPOINT, raises=connection_refused()).expect(ENDPOINT, Reply(409, EXISTS))
    response = client(session, clock).call('CreateSMTPUser', accept=(409,))
    assert response.status == 409 and response.earlier_attempt_may_have_acted is False


def test_lost_create_reply_then_409_is_reported_as_created(session, clock):
    session.expect(ENDPOINT, raises=requests.exceptions.ReadTimeout('read timed out'))
    session.expect(ENDPOINT, Reply(409, EXISTS)).expect(ENDPOINT, Reply(200, CREATED))
    credentials, created = ensure_smtp_user(client(session, clock))
    assert created is True and credentials.user == 'U1'


def test_409_on_a_first_attempt_is_no_change(session, clock):
    session.expect(ENDPOINT, Reply(409, EXISTS)).expect(ENDPOINT, Reply(200, CREATED))
    assert ensure_smtp_user(client(session, clock))[1] is False


class RecordingGuard:
    """Stands in for LoginGuard: records every attempt and its outcome."""

    log = []

    def __init__(self, auth_url, username, user_domain_name, **credentials):
        self.key = (auth_url, username, user_domain_name)

    def attempt(self):
        guard = self

        class Attempt:
            def __enter__(self):
                self.outcome = Outcome()
                RecordingGuard.log.append([guard.key, None])
                return self.outcome

            def __exit__(self, *exc):
                RecordingGuard.log[-1][1] = self.outcome.result
                return False

        return Attempt()


class Outcome:
    result = None

    def rejected(self):
        self.result = 'rejected'

    def accepted(self):
        self.result = 'accepted'


def password(guard=RecordingGuard):
    RecordingGuard.log = []
    return KeystonePassword('https://identity.example.com', 'alice', 's3cret', 'ct1', project_id='p1', login_guard=guard)


def token_reply():
    return Reply(201, json.dumps({'token': {'expires_at': 'x'}}), {'X-Subject-Token': 'new'})


def test_every_password_post_is_inside_its_own_guarded_attempt(session, clock):
    session.expect(KEYSTONE, raises=connection_refused()).expect(KEYSTONE, Reply(503, 'busy')).expect(KEYSTONE, token_reply())
    session.expect(ENDPOINT, Reply(200, CREATED))
    client(session, clock, token=None, keystone=password()).call('GetSMTPUserInfo')
    key = ('https://identity.example.com/v3', 'alice', 'ct1')
    assert RecordingGuard.log == [[key, None], [key, None], [key, 'accepted']]


@pytest.mark.parametrize('failure', [dict(reply=Reply(500, '{}')), dict(reply=Reply(502, '<html>')),
                                     dict(reply=Reply(201, '{"token": {', {'X-Subject-Token': 't'}, breaks=cut_short()))])
def test_a_login_that_may_have_reached_keystone_is_not_repeated(session, clock, failure):
    session.expect(KEYSTONE, **failure)
    with pytest.raises(K5MailError) as info:
        client(session, clock, token=None, keystone=password()).call('GetSMTPUserInfo')
    assert info.value.attempts == 1 and str(info.value).startswith('Keystone authentication failed')


def test_a_rejected_password_is_reported_to_the_guard_and_never_repeated(session, clock):
    session.expect(KEYSTONE, Reply(401, json.dumps({'error': {'message': 'no'}})))
    with pytest.raises(K5MailError):
        client(session, clock, token=None, keystone=password()).call('GetSMTPUserInfo')
    assert [outcome for dummy, outcome in RecordingGuard.log] == ['rejected']


def test_the_real_guard_refuses_a_second_login_after_a_rejection_without_a_request(session, clock):
    session.expect(KEYSTONE, Reply(401, json.dumps({'error': {'message': 'no'}})))
    auth = KeystonePassword('https://identity.example.com', 'alice', 's3cret', 'ct1', project_id='p1')
    with pytest.raises(K5MailError):
        client(session, clock, token=None, keystone=auth).call('GetSMTPUserInfo')
    with pytest.raises(K5MailError, match='not tried'):
        client(session, clock, token=None, keystone=auth).call('GetSMTPUserInfo')


# ---------------------------------------- a refused connection: a few seconds in all (issue 16, finding 9)

def test_a_failure_with_retry_within_stops_once_that_much_was_waited():
    sleeps = []

    def refused():
        raise K5MailError('GetSendQuota', 'cannot connect', failure=NOT_SENT, retry_within=4.0)

    with pytest.raises(K5MailError) as info:
        run_with_retries(IDEMPOTENT, refused, Backoff(20, rng=lambda: 0.5), sleeps.append)
    # 0.75 + 1.5, then the 3 s of the backoff cut to the 1.75 s left; then no more.
    assert sleeps == [0.75, 1.5, 1.75] and info.value.attempts == 4


def test_a_refused_connection_through_the_client_waits_a_few_seconds_in_all(clock):
    from fake_http import FakeSession
    session = FakeSession(clock)
    for _attempt in range(6):
        session.expect(ENDPOINT, raises=connection_refused(ENDPOINT))
    client = K5MailClient(ENDPOINT, token='tok', session=session, retries=5, pacer=Pacer(clock=clock, sleep=clock.sleep),
                          sleep=clock.sleep, backoff=Backoff(5, rng=lambda: 0.999))
    with pytest.raises(K5MailError, match='cannot connect') as info:
        client.call('GetSendQuota')
    waited = sum(clock.sleeps)  # the backoff's and the pacer's
    assert waited <= 5.5, clock.sleeps  # the old client waited about 31 s with this rng
    assert 2 <= info.value.attempts == len(session.calls) < 6
