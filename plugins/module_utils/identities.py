# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Sender identities: the addresses and domains a contract may send from."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import find_all, find_text

# The service's limits: identities per GetIdentityVerificationAttributes call, per ListIdentities page.
BATCH_SIZE = 100
PAGE_SIZE = 100
# The service publishes a domain's verification token in this TXT record.
DNS_RECORD_PREFIX = '_niftycloudess.'
# Statuses that need a new verification request to get anywhere (None: the service does not know the identity).
NEEDS_VERIFICATION = (None, 'Failed', 'NotStarted')


def identity_type(identity):
    return 'EmailAddress' if '@' in identity else 'Domain'


def dns_record(domain, token):
    """The TXT record that proves the ownership of ``domain``."""
    if not token:
        return None
    return {'name': DNS_RECORD_PREFIX + domain.rstrip('.'), 'type': 'TXT', 'value': token}


def verification_attributes(client, identities):
    """``{identity: {'status': ..., 'token': ...}}`` for the identities the service knows, in batches."""
    attributes = {}
    for start in range(0, len(identities), BATCH_SIZE):
        batch = identities[start:start + BATCH_SIZE]
        params = dict(('Identities.member.%d' % (index + 1), identity) for index, identity in enumerate(batch))
        response = client.call('GetIdentityVerificationAttributes', params)
        for entry in find_all(response.root, 'VerificationAttributes', 'entry'):
            key = find_text(entry, 'key')
            if key:
                attributes[key] = {
                    'status': find_text(entry, 'value', 'VerificationStatus'),
                    'token': find_text(entry, 'value', 'VerificationToken'),
                }
    return attributes


def list_identities(client, kind=None):
    """Every identity of the contract (optionally of one ``kind``), following NextToken to the end."""
    identities = []
    seen_tokens = set()
    next_token = None
    while True:
        params = {'MaxItems': str(PAGE_SIZE)}
        if kind:
            params['IdentityType'] = kind
        if next_token:
            params['NextToken'] = next_token
        response = client.call('ListIdentities', params)
        identities.extend(member.text.strip() for member in find_all(response.root, 'Identities', 'member')
                          if member.text and member.text.strip())
        next_token = response.text('NextToken')
        if not next_token:
            return identities
        if next_token in seen_tokens:
            raise K5MailError('ListIdentities', 'the service returned the same NextToken twice; stopping instead of looping',
                              request_id=response.request_id)
        seen_tokens.add(next_token)


def verify_identity(client, identity):
    """Start verification; return the domain's token (None for an address)."""
    if identity_type(identity) == 'Domain':
        return client.call('VerifyDomainIdentity', {'Domain': identity}).require_text('VerificationToken')
    client.call('VerifyEmailIdentity', {'EmailAddress': identity})
    return None


def delete_identity(client, identity):
    client.call('DeleteIdentity', {'Identity': identity})


def describe(identity, attributes):
    """The view of one identity that the modules return."""
    attributes = attributes or {}
    kind = identity_type(identity)
    result = {
        'identity': identity,
        'identity_type': kind,
        'verification_status': attributes.get('status'),
    }
    if kind == 'Domain':
        result['verification_token'] = attributes.get('token')
        result['dns_record'] = dns_record(identity, attributes.get('token'))
    return result
