# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sender identities (email addresses and domains) of a contract, kept in its state entry.

Schema of ``state.json``, per contract::

    "identities": {
      "sender@example.com": {"type": "EmailAddress", "status": "Pending", "created_at": "..."},
      "example.com": {"type": "Domain", "status": "Success", "token": "<44 characters>", "created_at": "..."}
    }

Names are normalised: a domain is lower-cased, an email address keeps its local
part as given (it is case-sensitive, as in SES) and gets its domain lower-cased.
Only ``Success`` counts as verified. An address may send when it is itself
verified or when its domain (exactly that domain, not a parent) is verified.

Syntax errors raise :class:`IdentityError` (a ValueError) with a message that
the mail API turns into 400 ``InvalidParameterValue`` and the admin endpoints
into a JSON 400.
"""

from __future__ import annotations

import base64
import re
import secrets

from .util import iso_utc

EMAIL = 'EmailAddress'
DOMAIN = 'Domain'
IDENTITY_TYPES = (EMAIL, DOMAIN)
STATUSES = ('Pending', 'Success', 'Failed', 'TemporaryFailure', 'NotStarted')
VERIFIED = 'Success'
PENDING = 'Pending'

MAX_EMAIL_LENGTH = 256
MAX_DOMAIN_LENGTH = 255

_LABEL_RE = re.compile(r'^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$')
# dot-atom of RFC 5322: printable ASCII but specials and space
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


class IdentityError(ValueError):
    """An identity (email address or domain) that is not valid."""


def _printable(value):
    return value if len(value) <= 80 else value[:77] + '...'


def normalize_domain(value, what='domain'):
    """Return the lower-cased domain ``value``; raise :class:`IdentityError` if it is not a valid domain name."""
    if len(value) > MAX_DOMAIN_LENGTH:
        raise IdentityError('The %s is too long: %d characters, at most %d are allowed.' % (what, len(value), MAX_DOMAIN_LENGTH))
    if not value:
        raise IdentityError('The %s is empty.' % what)
    if not value.isascii():
        raise IdentityError('Invalid %s %s: non-ASCII characters (use the IDNA "xn--" form).' % (what, _printable(value)))
    domain = value.lower()
    labels = domain.split('.')
    if len(labels) < 2:
        raise IdentityError('Invalid %s %s: a domain needs at least two labels (like example.com).' % (what, _printable(value)))
    for label in labels:
        if not _LABEL_RE.match(label):
            raise IdentityError('Invalid %s %s: the label %r must be 1 to 63 letters, digits or hyphens, '
                                'not starting or ending with a hyphen.' % (what, _printable(value), label))
    if labels[-1].isdigit():
        raise IdentityError('Invalid %s %s: the top-level label must not be numeric.' % (what, _printable(value)))
    return domain


def normalize_email(value):
    """Return ``value`` with its domain lower-cased; raise :class:`IdentityError` if it is not a valid address."""
    if len(value) > MAX_EMAIL_LENGTH:
        raise IdentityError('The email address is too long: %d characters, at most %d are allowed.' % (len(value), MAX_EMAIL_LENGTH))
    if value.count('@') != 1:
        raise IdentityError('Invalid email address %s: it must contain exactly one "@".' % _printable(value))
    local, domain = value.split('@')
    if not local:
        raise IdentityError('Invalid email address %s: the local part before "@" is empty.' % _printable(value))
    if not _LOCAL_RE.match(local):
        raise IdentityError('Invalid email address %s: the local part may hold only ASCII letters, digits and '
                            "!#$%%&'*+/=?^_`{|}~.- (no spaces, no leading, trailing or double dots)." % _printable(value))
    return local + '@' + normalize_domain(domain, 'domain of the email address')


def parse_identity(value):
    """Return ``(type, normalised name)`` of an identity: an email address if it has an "@", else a domain."""
    if not isinstance(value, str):
        raise IdentityError('An identity must be a string.')
    if '@' in value:
        return EMAIL, normalize_email(value)
    return DOMAIN, normalize_domain(value)


def new_token():
    """Return a new domain verification token (44 characters, base64 of 32 random bytes)."""
    return base64.b64encode(secrets.token_bytes(32)).decode('ascii')


def identities_of(contract):
    """Return the contract's ``identities`` dict (created empty if absent)."""
    identities = contract.data.get('identities')
    if not isinstance(identities, dict):
        identities = contract.data['identities'] = {}
    return identities


def verify(contract, kind, name):
    """Start the verification of an identity (VerifyEmailIdentity / VerifyDomainIdentity); return its entry.

    A new identity is Pending. An existing one keeps its token; unless it is
    verified already it goes (back) to Pending.
    """
    identities = identities_of(contract)
    entry = identities.get(name)
    if entry is None or entry.get('type') != kind:
        entry = identities[name] = {'type': kind, 'status': PENDING, 'created_at': iso_utc(contract.now())}
    elif entry.get('status') != VERIFIED:
        entry['status'] = PENDING
    if kind == DOMAIN and not entry.get('token'):
        entry['token'] = new_token()
    return entry


def set_status(contract, identity, status):
    """Set the status of an identity, creating it if absent (admin); return ``(name, entry)``."""
    if status not in STATUSES:
        raise IdentityError('status must be one of %s, not %r' % (', '.join(STATUSES), status))
    kind, name = parse_identity(identity)
    entry = verify(contract, kind, name)
    entry['status'] = status
    return name, entry


def is_verified_sender(contract, address):
    """Tell whether the (normalised) address may send: it or its domain is verified."""
    identities = identities_of(contract)
    entry = identities.get(address)
    if entry and entry.get('status') == VERIFIED:
        return True
    domain = identities.get(address.rpartition('@')[2])
    return bool(domain and domain.get('type') == DOMAIN and domain.get('status') == VERIFIED)
