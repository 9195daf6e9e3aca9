# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""identity: verification requests, deletion, check mode, diffs and the bounded wait, against scripted replies.

The wait runs on the fake clock of the test (IdentityModule.monotonic and .sleep), so that a
15-minute wait takes no real time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import pytest

from ansible_collections.fjcloud.mail.plugins.modules import identity

from .mail_api import ok

EMAIL = 'ops@example.com'
DOMAIN = 'example.com'
TOKEN_VALUE = 'QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0='
DNS_RECORD = dict(name='_niftycloudess.example.com', type='TXT', value=TOKEN_VALUE)


@pytest.fixture(autouse=True)
def fake_wait_clock(monkeypatch, clock):
    """The wait's clock is the fake clock that pacing uses too: it moves only when the module sleeps."""
    monkeypatch.setattr(identity.IdentityModule, 'monotonic', staticmethod(clock))
    monkeypatch.setattr(identity.IdentityModule, 'sleep', staticmethod(clock.sleep))


def attributes(name, status=None, token=None):
    """GetIdentityVerificationAttributes of one identity; no status: the service does not know it."""
    entry = ''
    if status:
        entry = '<entry><key>%s</key><value><VerificationStatus>%s</VerificationStatus>%s</value></entry>' % (
            name, status, '<VerificationToken>%s</VerificationToken>' % token if token else '')
    return ok('GetIdentityVerificationAttributes', '<VerificationAttributes>%s</VerificationAttributes>' % entry)


def expect_status(api, name, status=None, token=None):
    api.expect('GetIdentityVerificationAttributes', attributes(name, status, token), **{'Identities.member.1': name})


def expect_polls(api, name, statuses, token=None):
    for status in statuses:
        expect_status(api, name, status, token)


# ------------------------------------------------------------ state=present

def test_new_address_gets_a_verification_request(api):
    expect_status(api, EMAIL)
    api.expect('VerifyEmailIdentity', ok('VerifyEmailIdentity'), EmailAddress=EMAIL)
    result = api.run(identity.main, email=EMAIL, diff=True)
    assert result == dict(changed=True, identity=EMAIL, identity_type='EmailAddress', verification_status='Pending',
                          diff=dict(before={'state': 'absent'}, after={'state': 'present', 'verification_status': 'Pending'}))


def test_new_domain_returns_the_dns_record_to_publish(api):
    expect_status(api, DOMAIN)
    api.expect('VerifyDomainIdentity', ok('VerifyDomainIdentity', '<VerificationToken>%s</VerificationToken>' % TOKEN_VALUE),
               Domain=DOMAIN)
    result = api.run(identity.main, domain=DOMAIN)
    assert result == dict(changed=True, identity=DOMAIN, identity_type='Domain', verification_status='Pending',
                          verification_token=TOKEN_VALUE, dns_record=DNS_RECORD)


@pytest.mark.parametrize('status', ['Pending', 'Success', 'TemporaryFailure'])
def test_identity_on_its_way_is_left_as_it_is(api, status):
    expect_status(api, DOMAIN, status, TOKEN_VALUE)
    result = api.run(identity.main, domain=DOMAIN, diff=True)
    assert result == dict(changed=False, identity=DOMAIN, identity_type='Domain', verification_status=status,
                          verification_token=TOKEN_VALUE, dns_record=DNS_RECORD,
                          diff=dict(before={'state': 'present', 'verification_status': status},
                                    after={'state': 'present', 'verification_status': status}))


@pytest.mark.parametrize('status', ['Failed', 'NotStarted'])
def test_failed_or_not_started_is_requested_again(api, status):
    expect_status(api, EMAIL, status)
    api.expect('VerifyEmailIdentity', ok('VerifyEmailIdentity'), EmailAddress=EMAIL)
    result = api.run(identity.main, email=EMAIL)
    assert (result['changed'], result['verification_status']) == (True, 'Pending')


def test_check_mode_reads_only_and_shows_the_state_before(api):
    expect_status(api, DOMAIN)
    result = api.run(identity.main, domain=DOMAIN, check_mode=True, diff=True, wait=True)
    assert result == dict(changed=True, identity=DOMAIN, identity_type='Domain', verification_status=None,
                          verification_token=None, dns_record=None,
                          diff=dict(before={'state': 'absent'}, after={'state': 'present', 'verification_status': 'Pending'}))


def test_check_mode_of_a_verified_identity_is_unchanged(api):
    expect_status(api, EMAIL, 'Success')
    result = api.run(identity.main, email=EMAIL, check_mode=True)
    assert (result['changed'], result['verification_status']) == (False, 'Success')


# ------------------------------------------------------------- state=absent

def test_absent_deletes_a_known_identity(api):
    expect_status(api, EMAIL, 'Pending')
    api.expect('DeleteIdentity', ok('DeleteIdentity'), Identity=EMAIL)
    result = api.run(identity.main, email=EMAIL, state='absent', diff=True)
    assert result == dict(changed=True, identity=EMAIL, identity_type='EmailAddress', verification_status=None,
                          diff=dict(before={'state': 'present', 'verification_status': 'Pending'}, after={'state': 'absent'}))


def test_absent_of_an_unknown_identity_is_unchanged(api):
    expect_status(api, EMAIL)
    result = api.run(identity.main, email=EMAIL, state='absent')
    assert result == dict(changed=False, identity=EMAIL, identity_type='EmailAddress', verification_status=None)


def test_absent_in_check_mode_deletes_nothing(api):
    expect_status(api, DOMAIN, 'Success', TOKEN_VALUE)
    result = api.run(identity.main, domain=DOMAIN, state='absent', check_mode=True)
    assert result['changed'] is True


# ------------------------------------------------------------------ refusals

@pytest.mark.parametrize('options, message', [
    (dict(email='ops@@example.com'), "email 'ops@@example.com' is not valid: an address has exactly one @, found 2"),
    (dict(domain='example'), "domain 'example' is not valid: the domain example has no dot"),
    (dict(email=EMAIL, wait_timeout=0), 'wait_timeout must be a positive number of seconds, got 0'),
    (dict(email=EMAIL, domain=DOMAIN), 'parameters are mutually exclusive: email|domain'),
    (dict(), 'one of the following is required: email, domain'),
])
def test_bad_options_are_refused_before_any_call(api, options, message):
    result = api.run(identity.main, **options)
    assert (result['failed'], result['msg']) == (True, message)
    assert api.actions == []


# --------------------------------------------------------------------- wait

def test_wait_polls_until_success(api, clock):
    expect_status(api, EMAIL)
    api.expect('VerifyEmailIdentity', ok('VerifyEmailIdentity'), EmailAddress=EMAIL)
    expect_polls(api, EMAIL, ['Pending', 'Success'])
    result = api.run(identity.main, email=EMAIL, wait=True)
    assert (result['changed'], result['verification_status']) == (True, 'Success')
    assert clock.sleeps == [1.0, 2, 4]  # pacing before VerifyEmailIdentity, then the wait


def test_wait_ends_at_the_timeout_with_the_dns_record_to_publish(api, clock):
    expect_status(api, DOMAIN, 'Pending', TOKEN_VALUE)
    expect_polls(api, DOMAIN, ['Pending'] * 3, TOKEN_VALUE)  # at 2, 6 and 10 seconds
    result = api.run(identity.main, domain=DOMAIN, wait=True, wait_timeout=10)
    assert result['failed'] is True
    assert result['msg'] == ('GetIdentityVerificationAttributes failed: the verification of example.com is still Pending '
                             'after 10 seconds; publish the TXT record _niftycloudess.example.com with the value %s'
                             % TOKEN_VALUE)
    assert clock.sleeps == [2, 4, 4]


def test_wait_of_the_default_timeout_is_bounded_and_takes_no_real_time(api, clock, monkeypatch):
    """15 minutes: polls at 2, 6, 14 and 30 seconds, then every 30 seconds up to 900: 33 polls."""
    real_sleeps = []
    monkeypatch.setattr(time, 'sleep', real_sleeps.append)
    expect_status(api, EMAIL, 'Pending')
    expect_polls(api, EMAIL, ['Pending'] * 33)
    result = api.run(identity.main, email=EMAIL, wait=True)
    assert result['msg'] == ('GetIdentityVerificationAttributes failed: the verification of ops@example.com is still '
                             'Pending after 900 seconds; the address must open the link in the confirmation mail')
    assert sum(clock.sleeps) == 900 and max(clock.sleeps) == 30
    assert real_sleeps == []


def test_wait_stops_when_the_verification_failed(api):
    expect_status(api, DOMAIN, 'Pending', TOKEN_VALUE)
    expect_polls(api, DOMAIN, ['Failed'], TOKEN_VALUE)
    result = api.run(identity.main, domain=DOMAIN, wait=True)
    assert result['msg'] == ('GetIdentityVerificationAttributes failed: the verification of example.com failed; publish '
                             'the TXT record _niftycloudess.example.com with the value %s' % TOKEN_VALUE)


def test_wait_stops_when_the_identity_disappears(api):
    expect_status(api, EMAIL, 'Pending')
    expect_polls(api, EMAIL, [None])
    result = api.run(identity.main, email=EMAIL, wait=True)
    assert result['msg'] == ('GetIdentityVerificationAttributes failed: ops@example.com disappeared while waiting for '
                             'its verification')
