# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paging, batching and validation of identities, against scripted replies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.addresses import address_problem, domain_problem
from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import Pacer
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import Backoff
from ansible_collections.fjcloud.mail.plugins.module_utils.identities import list_identities, verification_attributes
from fake_http import FakeClock, FakeSession, Reply, form

ENDPOINT = 'https://mail.example/'
NS = 'http://ses.amazonaws.com/doc/2010-12-01/'


def reply(action, result):
    return Reply(200, '<%sResponse xmlns="%s"><%sResult>%s</%sResult></%sResponse>' % (action, NS, action, result, action, action),
                 {'x-fj-request-id': 'r'})


def page(identities, next_token=None):
    members = ''.join('<member> %s </member>' % identity for identity in identities)
    return reply('ListIdentities', '<Identities>%s</Identities>%s' % (
        members, '<NextToken>%s</NextToken>' % next_token if next_token else ''))


@pytest.fixture
def session():
    fake = FakeSession()
    yield fake
    fake.assert_done()


def client_for(session):
    clock = FakeClock()
    return K5MailClient(ENDPOINT, token='t', session=session, pacer=Pacer(clock=clock, sleep=clock.sleep),
                        sleep=clock.sleep, backoff=Backoff(0))


def test_list_follows_next_token_to_the_end(session):
    session.expect(ENDPOINT, page(['a.example', 'b@a.example'], 'tok1'), form=form('ListIdentities', MaxItems='100'))
    session.expect(ENDPOINT, page(['c.example'], 'tok2'), form=form('ListIdentities', MaxItems='100', NextToken='tok1'))
    session.expect(ENDPOINT, page([]), form=form('ListIdentities', MaxItems='100', NextToken='tok2'))
    assert list_identities(client_for(session)) == ['a.example', 'b@a.example', 'c.example']


def test_list_with_type_filter(session):
    session.expect(ENDPOINT, page(['a.example']), form=form('ListIdentities', MaxItems='100', IdentityType='Domain'))
    assert list_identities(client_for(session), 'Domain') == ['a.example']


def test_a_repeated_next_token_stops_the_loop(session):
    session.expect(ENDPOINT, page(['a.example'], 'same')).expect(ENDPOINT, page(['b.example'], 'same'))
    with pytest.raises(K5MailError, match='same NextToken twice'):
        list_identities(client_for(session))


def test_attributes_are_read_in_batches_of_100(session):
    identities = ['d%03d.example' % number for number in range(150)]
    first = dict(('Identities.member.%d' % (n + 1), identity) for n, identity in enumerate(identities[:100]))
    second = dict(('Identities.member.%d' % (n + 1), identity) for n, identity in enumerate(identities[100:]))
    entry = '<entry><key>%s</key><value><VerificationStatus>Success</VerificationStatus><VerificationToken>T</VerificationToken></value></entry>'
    session.expect(ENDPOINT, reply('GetIdentityVerificationAttributes', '<VerificationAttributes>%s</VerificationAttributes>' % (
        entry % identities[0])), form=form('GetIdentityVerificationAttributes', **first))
    session.expect(ENDPOINT, reply('GetIdentityVerificationAttributes', '<VerificationAttributes/>'),
                   form=form('GetIdentityVerificationAttributes', **second))
    assert verification_attributes(client_for(session), identities) == {identities[0]: {'status': 'Success', 'token': 'T'}}


@pytest.mark.parametrize('address, ok', [
    ('ops@example.com', True), ('o.p+s@mail.example.co.jp', True), ('ops@example', False), ('@example.com', False),
    ('Ops <ops@example.com>', False), ('ops@exa mple.com', False), ('ops@example.com\n', False), ('a' * 250 + '@example.com', False),
])
def test_identity_addresses(address, ok):
    assert (address_problem(address) is None) is ok


@pytest.mark.parametrize('domain, ok', [
    ('example.com', True), ('mail.example.co.jp', True), ('example', False), ('-bad.example', False),
    ('exa_mple.com', False), ('example.com.', False), ('ex\u00e4mple.com', False),
])
def test_identity_domains(domain, ok):
    assert (domain_problem(domain) is None) is ok
