# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Sending one message: checks, encoding and the parameters of SendEmail and SendRawEmail.

Everything here is a pure function of the module's options, so that every
check runs, and every error is known, before the one request is made.

- ``build_request(options)`` returns ``(SendRequest, errors)``: the action,
  its form parameters and the number of recipients, or the list of every
  problem found, each naming the option and what is wrong.
- ``send(client, request)`` makes the call and returns ``(message_id, request_id)``.

Decisions:

- Addresses are checked and formatted by addresses.py (never with DNS).
- Subjects and addresses must be one line: a CR or LF in them could add headers.
- A raw message is sent as it is: its headers are never rewritten. Raw
  non-ASCII characters in its header section are rejected with a message that
  tells how to encode them, because encoding them here would need to know
  which parts of each header are words, addresses or structure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import codecs
import re
from email.parser import Parser
from email.utils import getaddresses

from ansible_collections.fjcloud.mail.plugins.module_utils.addresses import CONTROL, LINE_BREAK, check_addresses, format_address, is_ascii

MAX_RECIPIENTS = 50
# "Messages <= 2 MB": read as 2 MiB, the count of bytes before base64 encoding.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
DEFAULT_CHARSET = 'UTF-8'

SEND_EMAIL = 'SendEmail'
SEND_RAW_EMAIL = 'SendRawEmail'

RECIPIENT_OPTIONS = ('to', 'cc', 'bcc')
_DESTINATION_KEYS = {'to': 'ToAddresses', 'cc': 'CcAddresses', 'bcc': 'BccAddresses'}
_RECIPIENT_HEADERS = ('To', 'Cc', 'Bcc')

_HEADER_END = re.compile(r'\r?\n\r?\n')
_FIELD_NAME = re.compile(r'^([!-9;-~]+)[ \t]*:')


class SendRequest:
    """What to send: the action, its form parameters, and how many recipients the message has."""

    def __init__(self, action, params, recipients):
        self.action = action
        self.params = params
        self.recipients = recipients


# ---------------------------------------------------------------------------
# Checks shared by both forms
# ---------------------------------------------------------------------------

def _size_text(size):
    return '{0:,} bytes'.format(size)


def _limit_text():
    return 'the service accepts at most 2 MB (%s) per message' % _size_text(MAX_MESSAGE_BYTES)


def _check_recipient_count(count, where, errors=None):
    """Append (and return) the error of more than MAX_RECIPIENTS recipients."""
    found = []
    if count > MAX_RECIPIENTS:
        found.append('too many recipients: %d in %s, the service accepts at most %d per message'
                     % (count, where, MAX_RECIPIENTS))
    if errors is not None:
        errors.extend(found)
    return found


def _recipient_options(options):
    return dict((option, options.get(option) or []) for option in RECIPIENT_OPTIONS)


# ---------------------------------------------------------------------------
# SendEmail
# ---------------------------------------------------------------------------

def _check_charset(charset, errors):
    if not charset or CONTROL.search(charset):
        errors.append('charset %r is not a character set name' % (charset,))
        return None
    try:
        return codecs.lookup(charset).name
    except LookupError:
        errors.append('charset %r is not a known character set (for example UTF-8, ISO-2022-JP, ISO-8859-1)' % charset)
        return None


def _encoded_size(option, text, charset, codec, errors):
    """Bytes of ``text`` in ``charset``; records an error when the charset cannot encode it."""
    if not text:
        return 0
    try:
        return len(codecs.encode(text, codec))
    except UnicodeEncodeError as exc:
        errors.append('%s cannot be encoded in charset %s: %r at position %d, choose a charset that holds it, '
                      'such as UTF-8' % (option, charset, exc.object[exc.start:exc.end], exc.start))
    return len(text.encode('utf-8'))


def build_simple(options):
    """``(SendRequest, errors)`` for the simple form (``SendEmail``)."""
    errors = []
    sender = options.get('sender')
    subject = options.get('subject')
    body_text = options.get('body_text')
    body_html = options.get('body_html')
    charset = options.get('charset') or DEFAULT_CHARSET

    if not sender:
        errors.append('sender (from) is required when raw_message is not given: the address of a verified '
                      'identity to send from')
        sender_parsed = []
    else:
        sender_parsed = check_addresses('sender', [sender], errors)

    recipients = _recipient_options(options)
    parsed = dict((option, check_addresses(option, recipients[option], errors)) for option in RECIPIENT_OPTIONS)
    count = sum(len(values) for values in recipients.values())
    if count == 0:
        errors.append('no recipient: give at least one address in to, cc or bcc')
    _check_recipient_count(count, 'to, cc and bcc', errors)

    if subject is None or subject == '':
        errors.append('subject is required (and not empty) when raw_message is not given')
    elif LINE_BREAK.search(subject):
        errors.append('subject must be one line: it contains a line break (CR or LF), which could add mail headers')
    elif CONTROL.search(subject):
        errors.append('subject contains a control character')
    if not body_text and not body_html:
        errors.append('no body: give body_text, body_html or both')

    codec = _check_charset(charset, errors)
    if codec is not None:
        if subject:
            _encoded_size('subject', subject, charset, codec, errors)
        size = (_encoded_size('body_text', body_text, charset, codec, errors)
                + _encoded_size('body_html', body_html, charset, codec, errors))
        if size > MAX_MESSAGE_BYTES:
            errors.append('the message is too large: body_text and body_html are %s in %s together, %s'
                          % (_size_text(size), charset, _limit_text()))

    if errors:
        return None, errors
    params = {'Source': format_address(*sender_parsed[0])}
    for option in RECIPIENT_OPTIONS:
        for number, (name, addr) in enumerate(parsed[option], 1):
            params['Destination.%s.member.%d' % (_DESTINATION_KEYS[option], number)] = format_address(name, addr)
    params['Message.Subject.Data'] = subject
    params['Message.Subject.Charset'] = charset
    if body_text:
        params['Message.Body.Text.Data'] = body_text
        params['Message.Body.Text.Charset'] = charset
    if body_html:
        params['Message.Body.Html.Data'] = body_html
        params['Message.Body.Html.Charset'] = charset
    return SendRequest(SEND_EMAIL, params, count), errors


# ---------------------------------------------------------------------------
# SendRawEmail
# ---------------------------------------------------------------------------

def header_section(raw):
    """The header lines of ``raw`` (up to the first empty line)."""
    match = _HEADER_END.search(raw)
    head = raw[:match.start()] if match else raw
    if head.startswith('\n') or head.startswith('\r\n'):
        return []
    return head.splitlines()


def non_ascii_headers(raw):
    """Names of the header fields of ``raw`` that hold raw non-ASCII characters, in order."""
    found = []
    field = None
    for line in header_section(raw):
        match = _FIELD_NAME.match(line)
        if match:
            field = match.group(1)
        if not is_ascii(line):
            name = field if field and (match or line[:1] in (' ', '\t')) else 'line %r' % line[:40]
            if name not in found:
                found.append(name)
    return found


def build_raw(options):
    """``(SendRequest, errors)`` for the raw form (``SendRawEmail``)."""
    errors = []
    raw = options.get('raw_message')
    sender = options.get('sender')
    sender_parsed = check_addresses('sender', [sender], errors) if sender else []
    recipients = _recipient_options(options)
    parsed = dict((option, check_addresses(option, recipients[option], errors)) for option in RECIPIENT_OPTIONS)
    destinations = [addr for option in RECIPIENT_OPTIONS for dummy, addr in parsed[option]]
    given = sum(len(values) for values in recipients.values())

    if not raw or not raw.strip():
        errors.append('raw_message is empty')
        return None, errors + _check_recipient_count(given, 'to, cc and bcc')

    data = raw.encode('utf-8')
    if len(data) > MAX_MESSAGE_BYTES:
        errors.append('raw_message is too large: %s in UTF-8, %s' % (_size_text(len(data)), _limit_text()))

    encode_hint = ('encode them as RFC 2047 encoded words (=?UTF-8?B?...?=, for example with Python\'s '
                   'email.header.Header(text, "utf-8").encode()), or use the simple form (subject, body_text), '
                   'which encodes them for you')
    bad_headers = non_ascii_headers(raw)
    if bad_headers:
        errors.append('raw_message: the header %s contain%s raw non-ASCII characters: %s'
                      % (', '.join(bad_headers), 's' if len(bad_headers) == 1 else '', encode_hint))

    headers = Parser().parsestr(raw, headersonly=True)
    if not header_section(raw) or not list(headers.keys()):
        errors.append('raw_message has no header section: an RFC 5322 message starts with header lines '
                      '(From:, To:, Subject:), then an empty line, then the body')
    elif not sender:
        header_from = headers.get_all('From') or []
        if not header_from:
            errors.append('raw_message has no From header: add one, or give sender (from)')
        elif not any(addr for dummy, addr in getaddresses([str(value) for value in header_from])):
            errors.append('raw_message: the From header holds no address: fix it, or give sender (from)')

    if given:
        count, where = given, 'to, cc and bcc'
    else:
        values = [str(value) for name in _RECIPIENT_HEADERS for value in (headers.get_all(name) or [])]
        count = len([addr for dummy, addr in getaddresses(values) if addr])
        where = 'the To, Cc and Bcc headers of raw_message'
        if count == 0:
            errors.append('no recipient: raw_message has no To, Cc or Bcc header with an address, '
                          'and none of to, cc or bcc is given')
    _check_recipient_count(count, where, errors)

    if errors:
        return None, errors
    params = {'RawMessage.Data': base64.b64encode(data).decode('ascii')}
    if sender_parsed:
        params['Source'] = format_address(*sender_parsed[0])
    for number, addr in enumerate(destinations, 1):
        params['Destinations.member.%d' % number] = addr
    return SendRequest(SEND_RAW_EMAIL, params, count), errors


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

def build_request(options):
    """``(SendRequest or None, errors)`` for the module's options (keys as in the argument spec)."""
    if options.get('raw_message') is not None:
        return build_raw(options)
    return build_simple(options)


def send(client, request):
    """Make the call; return ``(message_id, request_id)``."""
    response = client.call(request.action, request.params, idempotent=False)
    return response.require_text('MessageId'), response.request_id
