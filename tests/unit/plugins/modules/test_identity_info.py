# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""identity_info: pages, batches and the result of every identity, against scripted replies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fjcloud.mail.plugins.modules import identity_info

from .mail_api import ok

TOKEN_VALUE = 'QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0='


def listing(names, next_token=None):
    members = ''.join('<member>%s</member>' % name for name in names)
    return ok('ListIdentities', '<Identities>%s</Identities>%s' % (
        members, '<NextToken>%s</NextToken>' % next_token if next_token else ''))


def attributes(entries):
    """``entries``: (identity, status, token or None)."""
    xml = ''.join('<entry><key>%s</key><value><VerificationStatus>%s</VerificationStatus>%s</value></entry>' % (
        key, status, '<VerificationToken>%s</VerificationToken>' % token if token else '') for key, status, token in entries)
    return ok('GetIdentityVerificationAttributes', '<VerificationAttributes>%s</VerificationAttributes>' % xml)


def members(names):
    return dict(('Identities.member.%d' % number, name) for number, name in enumerate(names, 1))


def test_every_identity_with_its_status_and_dns_record(api):
    names = ['example.com', 'ops@example.com', 'unknown@example.com']
    api.expect('ListIdentities', listing(names), MaxItems='100')
    api.expect('GetIdentityVerificationAttributes', attributes([
        ('example.com', 'Pending', TOKEN_VALUE), ('ops@example.com', 'Success', None)]), **members(names))
    result = api.run(identity_info.main)
    assert result == dict(changed=False, identities=[
        dict(identity='example.com', identity_type='Domain', verification_status='Pending', verification_token=TOKEN_VALUE,
             dns_record=dict(name='_niftycloudess.example.com', type='TXT', value=TOKEN_VALUE)),
        dict(identity='ops@example.com', identity_type='EmailAddress', verification_status='Success'),
        dict(identity='unknown@example.com', identity_type='EmailAddress', verification_status=None),
    ])


def test_follows_next_token_and_asks_in_batches_of_100(api):
    names = ['user%03d@example.com' % number for number in range(150)]
    api.expect('ListIdentities', listing(names[:100], 'page-2'), MaxItems='100', IdentityType='EmailAddress')
    api.expect('ListIdentities', listing(names[100:]), MaxItems='100', IdentityType='EmailAddress', NextToken='page-2')
    api.expect('GetIdentityVerificationAttributes', attributes([(name, 'Success', None) for name in names[:100]]),
               **members(names[:100]))
    api.expect('GetIdentityVerificationAttributes', attributes([(name, 'Pending', None) for name in names[100:]]),
               **members(names[100:]))
    result = api.run(identity_info.main, identity_type='EmailAddress', check_mode=True)
    assert [item['identity'] for item in result['identities']] == names
    assert [item['verification_status'] for item in result['identities']] == ['Success'] * 100 + ['Pending'] * 50


def test_no_identity_makes_one_call(api):
    api.expect('ListIdentities', listing([]), MaxItems='100', IdentityType='Domain')
    assert api.run(identity_info.main, identity_type='Domain') == dict(changed=False, identities=[])


def test_the_same_next_token_twice_stops_with_an_error(api):
    api.expect('ListIdentities', listing(['a@example.com'], 'again'), MaxItems='100')
    api.expect('ListIdentities', listing(['b@example.com'], 'again'), MaxItems='100', NextToken='again')
    result = api.run(identity_info.main)
    assert result['failed'] is True
    assert result['msg'].startswith('ListIdentities failed: the service returned the same NextToken twice')


def test_bad_identity_type_is_refused_before_any_call(api):
    result = api.run(identity_info.main, identity_type='Address')
    assert result['failed'] is True and 'identity_type' in result['msg']
