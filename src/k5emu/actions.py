# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail API's actions: one handler function per action, in a dispatch table.

A handler is ``handler(contract, params) -> result``:

- ``contract`` is the :class:`k5emu.state.ContractState` of the caller's
  project (the state lock is held; changes are saved when the handler returns);
- ``params`` is a dict of the form parameters, ``Action`` and ``Version``
  removed (they are checked by the server core);
- the result is the list of ``(name, value)`` pairs inside ``<{Action}Result>``
  (see :func:`k5emu.replies.xml_document`), or None for an empty result.

A handler signals an error by raising :class:`ApiError`. Register a new action
with the :func:`action` decorator; nothing else needs to change.

The contract also carries ``contract.messages`` (the message store, where
SendEmail and SendRawEmail put what they accept, like the SMTP relay) and
``contract.settings`` (run-time settings, e.g. ``max_24hour_send``).

Error codes used besides the server core's: ``MissingParameter`` (a required
parameter is absent), ``InvalidParameterValue`` (bad syntax, length or count),
``InvalidNextToken`` (ListIdentities), ``MessageRejected`` (sender not verified,
message too long), ``Throttling`` "Daily message quota exceeded." and, for the
SMTP user, ``AlreadyExists`` (409) and ``NotFound`` (404).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import codecs
import json
import re
import secrets
import string

from .identities import DOMAIN, EMAIL, IDENTITY_TYPES, IdentityError, identities_of, is_verified_sender
from .identities import normalize_domain, normalize_email, parse_identity, verify
from .sending import (
    DAY, MAX_MESSAGE_SIZE, MAX_RECIPIENTS, AddressError, build_message, header_addresses, new_message_id, parse_address,
    project_messages, raw_headers, send_events, sent_since, statistics, timestamp,
)
from .util import iso_utc

# Every action of the published API (all have a handler in ACTIONS).
KNOWN_ACTIONS = (
    'DeleteIdentity', 'GetIdentityVerificationAttributes', 'GetSendQuota', 'GetSendStatistics', 'ListIdentities',
    'SendEmail', 'SendRawEmail', 'VerifyDomainIdentity', 'VerifyEmailIdentity',
    'CreateSMTPUser', 'DeleteSMTPUser', 'GetSMTPUserInfo',
)

ACTIONS = {}

SMTP_USER_ALPHABET = string.ascii_uppercase + string.digits
SMTP_PASSWORD_ALPHABET = string.ascii_letters + string.digits + '+/'
SMTP_USER_LENGTH = 20
SMTP_PASSWORD_LENGTH = 40


class ApiError(Exception):
    """An error answered as an ``ErrorResponse`` document."""

    def __init__(self, status, code, message, error_type=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_type = error_type or ('Receiver' if status >= 500 else 'Sender')


def action(name):
    """Decorator registering a handler for the action ``name``."""
    def register(func):
        ACTIONS[name] = func
        return func
    return register


_MEMBER_RE = re.compile(r'^(.+)\.member\.([1-9][0-9]{0,5})$')

MAX_IDENTITIES_PER_CALL = 100
MAX_ITEMS = 100
DEFAULT_CHARSET = 'UTF-8'


def _member_prefix(name):
    match = _MEMBER_RE.match(name)
    return match.group(1) if match else None


def check_params(params, allowed=(), members=()):
    """Raise 400 InvalidParameterValue if ``params`` holds a name not in ``allowed``.

    ``members`` lists prefixes of member lists: ``PREFIX.member.N`` (N = 1, 2, ...) is allowed for them.
    """
    unknown = sorted(name for name in params if name not in allowed and _member_prefix(name) not in members)
    if unknown:
        raise ApiError(400, 'InvalidParameterValue', 'Unknown parameter: %s' % ', '.join(unknown))


def member_values(params, prefix):
    """Return the values of ``PREFIX.member.N`` in the order of N; they must be numbered 1, 2, ... without gaps."""
    found = {}
    for name, value in params.items():
        match = _MEMBER_RE.match(name)
        if match and match.group(1) == prefix:
            found[int(match.group(2))] = value
    if sorted(found) != list(range(1, len(found) + 1)):
        raise ApiError(400, 'InvalidParameterValue', '%s.member.N must be numbered from 1 without gaps; got N = %s.'
                       % (prefix, ', '.join(str(index) for index in sorted(found))))
    return [found[index] for index in range(1, len(found) + 1)]


def required(params, name):
    """Return the parameter ``name``; 400 MissingParameter if it is absent."""
    if name not in params:
        raise ApiError(400, 'MissingParameter', 'The request must contain the parameter %s.' % name)
    return params[name]


def invalid(message):
    """Return a 400 InvalidParameterValue error."""
    return ApiError(400, 'InvalidParameterValue', message)


def _random_string(alphabet, length):
    return ''.join(secrets.choice(alphabet) for dummy in range(length))


def _smtp_result(smtp):
    return [('SMTPUser', smtp['user']), ('SMTPPassword', smtp['password'])]


@action('CreateSMTPUser')
def create_smtp_user(contract, params):
    """Create the contract's SMTP user; 409 if it exists already."""
    check_params(params)
    if contract.smtp_user:
        raise ApiError(409, 'AlreadyExists', 'The SMTP user has already been created.')
    user = _random_string(SMTP_USER_ALPHABET, SMTP_USER_LENGTH)
    while contract.smtp_user_taken(user):
        user = _random_string(SMTP_USER_ALPHABET, SMTP_USER_LENGTH)
    contract.smtp_user = {
        'user': user,
        'password': _random_string(SMTP_PASSWORD_ALPHABET, SMTP_PASSWORD_LENGTH),
        'created_at': iso_utc(contract.now()),
    }
    return _smtp_result(contract.smtp_user)


@action('GetSMTPUserInfo')
def get_smtp_user_info(contract, params):
    """Return the contract's SMTP user and password; 404 if there is none."""
    check_params(params)
    if not contract.smtp_user:
        raise ApiError(404, 'NotFound', 'The SMTP user does not exist.')
    return _smtp_result(contract.smtp_user)


@action('DeleteSMTPUser')
def delete_smtp_user(contract, params):
    """Delete the contract's SMTP user; 404 if there is none."""
    check_params(params)
    if not contract.smtp_user:
        raise ApiError(404, 'NotFound', 'The SMTP user does not exist.')
    contract.smtp_user = None
    return None


# ---------------------------------------------------------------- identities
@action('VerifyEmailIdentity')
def verify_email_identity(contract, params):
    """Add an email address as Pending (an existing one keeps Success, else goes back to Pending)."""
    check_params(params, ('EmailAddress',))
    try:
        name = normalize_email(required(params, 'EmailAddress'))
    except IdentityError as exc:
        raise invalid(str(exc)) from exc
    verify(contract, EMAIL, name)
    return None


@action('VerifyDomainIdentity')
def verify_domain_identity(contract, params):
    """Add a domain as Pending and return its verification token (the same token again for a known domain)."""
    check_params(params, ('Domain',))
    try:
        name = normalize_domain(required(params, 'Domain'))
    except IdentityError as exc:
        raise invalid(str(exc)) from exc
    entry = verify(contract, DOMAIN, name)
    return [('VerificationToken', entry['token'])]


@action('DeleteIdentity')
def delete_identity(contract, params):
    """Delete an identity; an unknown (but well-formed) identity is not an error, as in SES."""
    check_params(params, ('Identity',))
    try:
        dummy, name = parse_identity(required(params, 'Identity'))
    except IdentityError as exc:
        raise invalid(str(exc)) from exc
    identities_of(contract).pop(name, None)
    return None


@action('GetIdentityVerificationAttributes')
def get_identity_verification_attributes(contract, params):
    """Return the status (and the token of domains) of up to 100 identities; unknown ones are left out."""
    check_params(params, members=('Identities',))
    values = member_values(params, 'Identities')
    if not values:
        raise ApiError(400, 'MissingParameter', 'The request must contain the parameter Identities.member.1.')
    if len(values) > MAX_IDENTITIES_PER_CALL:
        raise invalid('At most %d identities may be given in one call; got %d.' % (MAX_IDENTITIES_PER_CALL, len(values)))
    identities = identities_of(contract)
    entries, seen = [], set()
    for value in values:
        try:
            dummy, name = parse_identity(value)
        except IdentityError as exc:
            raise invalid(str(exc)) from exc
        entry = identities.get(name)
        if entry is None or value in seen:
            continue
        seen.add(value)
        attributes = [('VerificationStatus', entry['status'])]
        if entry.get('type') == DOMAIN and entry.get('token'):
            attributes.append(('VerificationToken', entry['token']))
        entries.append(('entry', [('key', value), ('value', attributes)]))
    return [('VerificationAttributes', entries)]


def _encode_next_token(contract, identity_type, after):
    data = json.dumps({'v': 1, 'p': contract.project_id, 't': identity_type or '', 'a': after}, sort_keys=True)
    return base64.urlsafe_b64encode(data.encode('utf-8')).decode('ascii')


def _decode_next_token(contract, identity_type, token):
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode('ascii')).decode('utf-8'))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise ApiError(400, 'InvalidNextToken', 'The NextToken is not valid.') from exc
    if (not isinstance(data, dict) or data.get('v') != 1 or data.get('p') != contract.project_id
            or not isinstance(data.get('a'), str)):
        raise ApiError(400, 'InvalidNextToken', 'The NextToken is not valid.')
    if data.get('t') != (identity_type or ''):
        raise ApiError(400, 'InvalidNextToken', 'The NextToken was issued for another IdentityType.')
    return data['a']


@action('ListIdentities')
def list_identities(contract, params):
    """List identities, sorted by name, ``MaxItems`` (1..100, default 100) per page."""
    check_params(params, ('IdentityType', 'MaxItems', 'NextToken'))
    identity_type = params.get('IdentityType')
    if identity_type is not None and identity_type not in IDENTITY_TYPES:
        raise invalid('IdentityType must be EmailAddress or Domain, not %r.' % identity_type[:80])
    max_items = params.get('MaxItems')
    if max_items is None:
        max_items = MAX_ITEMS
    elif re.match(r'^[0-9]{1,9}$', max_items) and 1 <= int(max_items) <= MAX_ITEMS:
        max_items = int(max_items)
    else:
        raise invalid('MaxItems must be an integer from 1 to %d, not %r.' % (MAX_ITEMS, max_items[:80]))
    names = sorted(name for name, entry in identities_of(contract).items() if identity_type in (None, entry.get('type')))
    start = 0
    if 'NextToken' in params:
        start = bisect.bisect_right(names, _decode_next_token(contract, identity_type, params['NextToken']))
    page = names[start:start + max_items]
    result = [('Identities', [('member', name) for name in page])]
    if start + max_items < len(names):
        result.append(('NextToken', _encode_next_token(contract, identity_type, page[-1])))
    return result


# ------------------------------------------------------------------- sending
def _max_24hour_send(contract):
    return float(getattr(contract.settings, 'max_24hour_send', 200.0))


def _double(value):
    return repr(float(value))


def _check_sender(contract, addresses):
    refused = [address for address in addresses if not is_verified_sender(contract, address)]
    if refused:
        raise ApiError(400, 'MessageRejected', 'Email address is not verified. The following identities failed the check: %s'
                       % ', '.join(refused))


def _check_size(size):
    if size > MAX_MESSAGE_SIZE:
        raise ApiError(400, 'MessageRejected', "Message length is more than %d bytes long: '%d'." % (MAX_MESSAGE_SIZE, size))


def _check_recipient_count(count):
    if count > MAX_RECIPIENTS:
        raise invalid('Recipient count exceeds %d (%d recipients).' % (MAX_RECIPIENTS, count))


def _check_quota(contract, count):
    sent = sent_since(project_messages(contract.messages, contract.project_id), contract.now() - DAY)
    if sent + count > _max_24hour_send(contract):
        raise ApiError(400, 'Throttling', 'Daily message quota exceeded.')


def _address(value, what):
    try:
        return parse_address(value, what)
    except AddressError as exc:
        raise invalid(str(exc)) from exc


def _charset(params, name):
    charset = params.get(name, DEFAULT_CHARSET)
    try:
        codecs.lookup(charset)
    except LookupError as exc:
        raise invalid('%s: unknown charset %r.' % (name, charset[:80])) from exc
    return charset


def _encoded(params, name, charset):
    try:
        return params[name].encode(charset)
    except UnicodeError as exc:
        raise invalid('%s cannot be encoded in the charset %s: %s' % (name, charset, exc)) from exc


def _store(contract, action_name, message_id, mail_from, rcpt_tos, raw, subject):
    record = {
        'source': 'api', 'action': action_name, 'auth_user': None, 'project_id': contract.project_id,
        'mail_from': mail_from, 'rcpt_tos': rcpt_tos, 'data': raw.decode('utf-8', 'replace'),
        'message_id': message_id, 'subject': subject,
    }
    if contract.messages is not None:
        contract.messages.add(record)
    return [('MessageId', message_id)]


@action('SendEmail')
def send_email(contract, params):
    """Build a message from its parts, check sender, recipients and size, store it like the SMTP relay does."""
    destinations = ('Destination.ToAddresses', 'Destination.CcAddresses', 'Destination.BccAddresses')
    check_params(params, ('Source', 'Message.Subject.Data', 'Message.Subject.Charset', 'Message.Body.Text.Data',
                          'Message.Body.Text.Charset', 'Message.Body.Html.Data', 'Message.Body.Html.Charset'), destinations)
    source = required(params, 'Source')
    lists = [member_values(params, prefix) for prefix in destinations]
    count = sum(len(values) for values in lists)
    if not count:
        raise ApiError(400, 'MissingParameter', 'The request must contain at least one recipient '
                       '(Destination.ToAddresses.member.N, Destination.CcAddresses.member.N or Destination.BccAddresses.member.N).')
    subject = required(params, 'Message.Subject.Data')
    if 'Message.Body.Text.Data' not in params and 'Message.Body.Html.Data' not in params:
        raise ApiError(400, 'MissingParameter', 'The request must contain Message.Body.Text.Data or Message.Body.Html.Data (or both).')
    _check_recipient_count(count)
    source, mail_from = _address(source, 'Source')
    parsed = [[_address(value, '%s.member.%d' % (prefix, index + 1)) for index, value in enumerate(values)]
              for prefix, values in zip(destinations, lists)]
    if any(ord(char) < 32 for char in subject):
        raise invalid('Message.Subject.Data must not contain line breaks or control characters.')
    subject_charset = _charset(params, 'Message.Subject.Charset')
    _encoded(params, 'Message.Subject.Data', subject_charset)
    parts, size = {}, 0
    for kind in ('Text', 'Html'):
        data_name, charset_name = 'Message.Body.%s.Data' % kind, 'Message.Body.%s.Charset' % kind
        if data_name not in params:
            if charset_name in params:
                raise invalid('%s is given without %s.' % (charset_name, data_name))
            continue
        charset = _charset(params, charset_name)
        size += len(_encoded(params, data_name, charset))
        parts[kind] = (params[data_name], charset)
    _check_size(size)
    _check_sender(contract, [mail_from])
    rcpt_tos = [addr for values in parsed for dummy, addr in values]
    _check_quota(contract, len(rcpt_tos))
    message_id = new_message_id()
    raw = build_message(source, [full for full, dummy in parsed[0]], [full for full, dummy in parsed[1]], subject, subject_charset,
                        parts.get('Text'), parts.get('Html'), message_id)
    return _store(contract, 'SendEmail', message_id, mail_from, rcpt_tos, raw, subject)


def _decode_raw(value):
    data = value.replace('\r', '').replace('\n', '')
    try:
        raw = base64.b64decode(data.encode('ascii'), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise invalid('RawMessage.Data is not valid base64: %s' % exc) from exc
    if not raw:
        raise invalid('RawMessage.Data is empty.')
    return raw


def _header_addresses(headers, names):
    try:
        found = header_addresses(headers, names)
        return [normalize_email(addr) for addr in found]
    except IdentityError as exc:
        raise invalid('Illegal address in the %s header(s): %s' % ('/'.join(names), exc)) from exc
    except (TypeError, IndexError, AttributeError, LookupError, ValueError) as exc:
        raise invalid('The %s header(s) cannot be parsed: %s' % ('/'.join(names), exc)) from exc


@action('SendRawEmail')
def send_raw_email(contract, params):
    """Store a complete message (base64); ``Destinations`` replace the header recipients; sender(s) must be verified."""
    check_params(params, ('Source', 'RawMessage.Data'), ('Destinations',))
    raw = _decode_raw(required(params, 'RawMessage.Data'))
    _check_size(len(raw))
    destinations = member_values(params, 'Destinations')
    _check_recipient_count(len(destinations))
    rcpt_tos = [_address(value, 'Destinations.member.%d' % (index + 1))[1] for index, value in enumerate(destinations)]
    try:
        headers = raw_headers(raw)
        subject = headers.get('Subject')
        subject = None if subject is None else str(subject)
    except (TypeError, IndexError, AttributeError, LookupError, ValueError) as exc:
        raise invalid('The message headers cannot be parsed: %s' % exc) from exc
    senders = _header_addresses(headers, ('From',))
    if not senders:
        raise invalid("Missing required header 'From'.")
    if not rcpt_tos:
        rcpt_tos = _header_addresses(headers, ('To', 'Cc', 'Bcc'))
        if not rcpt_tos:
            raise invalid('The message has no recipient: give Destinations.member.N or To, Cc or Bcc headers.')
        _check_recipient_count(len(rcpt_tos))
    mail_from = senders[0]
    if 'Source' in params:
        mail_from = _address(params['Source'], 'Source')[1]
    _check_sender(contract, list(dict.fromkeys([mail_from] + senders)))
    _check_quota(contract, len(rcpt_tos))
    return _store(contract, 'SendRawEmail', new_message_id(), mail_from, rcpt_tos, raw, subject)


@action('GetSendQuota')
def get_send_quota(contract, params):
    """Return the daily quota, the rate and the emails (recipients) sent in the last 24 hours (API and SMTP)."""
    check_params(params)
    sent = sent_since(project_messages(contract.messages, contract.project_id), contract.now() - DAY)
    return [
        ('SentLast24Hours', _double(sent)),
        ('Max24HourSend', _double(_max_24hour_send(contract))),
        ('MaxSendRate', _double(getattr(contract.settings, 'max_send_rate', 1.0))),
    ]


@action('GetSendStatistics')
def get_send_statistics(contract, params):
    """Return the 15-minute data points of the last two weeks that have data, newest first."""
    check_params(params)
    points = statistics(project_messages(contract.messages, contract.project_id), send_events(contract), contract.now())
    return [('SendDataPoints', [('member', [
        ('DeliveryAttempts', counters['delivery_attempts']),
        ('Timestamp', timestamp(start)),
        ('Rejects', counters['rejects']),
        ('Bounces', counters['bounces']),
        ('Complaints', counters['complaints']),
    ]) for start, counters in points])]
