# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of SendEmail, SendRawEmail, GetSendQuota and GetSendStatistics.

Sending counts per recipient, as in SES: a message to three recipients is three
sent emails for ``SentLast24Hours``, the daily quota and ``DeliveryAttempts``.
The counts come from the message store (mail of the mail API *and* of the SMTP
relay of the same project) plus the send events that tests add through
``POST /_emulator/send-statistics`` (kept in the contract's ``send_events``).
"""

from __future__ import annotations

import email.policy
import email.utils
import time
import uuid
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser

from .identities import IdentityError, normalize_email
from .util import iso_utc

MAX_MESSAGE_SIZE = 2 * 1024 * 1024
MAX_RECIPIENTS = 50
DAY = 86400.0
STATISTICS_PERIOD = 14 * DAY
BUCKET = 900
MESSAGE_ID_DOMAIN = 'email.k5emu.localhost'
EVENT_COUNTERS = ('delivery_attempts', 'rejects', 'bounces', 'complaints')


class AddressError(ValueError):
    """An address (``Source``, a recipient, a header address) that is not valid."""


def parse_address(value, what):
    """Return ``(full value, normalised addr-spec)`` of one address: ``a@b``, ``Name <a@b>`` or ``=?utf-8?B?...?= <a@b>``."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise AddressError('Illegal address in %s: control characters or line breaks.' % what)
    if not value.isascii():
        raise AddressError('Illegal address in %s: non-ASCII characters must be RFC 2047 encoded (=?utf-8?B?...?=): %s' % (what, value[:80]))
    found = email.utils.getaddresses([value])
    if len(found) != 1 or not found[0][1]:
        raise AddressError('Illegal address in %s: %s (give exactly one address per parameter).' % (what, value[:80]))
    try:
        return value.strip(), normalize_email(found[0][1])
    except IdentityError as exc:
        raise AddressError('Illegal address in %s: %s' % (what, exc)) from exc


def new_message_id():
    """Return a new SES-style message id: 16 hex digits (milliseconds), a UUID and ``-000000``."""
    return '%016x-%s-000000' % (int(time.time() * 1000), uuid.uuid4())


def build_message(source, to_addresses, cc_addresses, subject, subject_charset, text, html, message_id):
    """Return the RFC 5322 message (bytes, CRLF line ends) of a SendEmail request.

    ``text`` and ``html`` are ``(data, charset)`` or None; at least one is given.
    """
    parts = []
    for subtype, part in (('plain', text), ('html', html)):
        if part is not None:
            parts.append(MIMEText(part[0], subtype, part[1]))
    if len(parts) == 1:
        message = parts[0]
    else:
        message = MIMEMultipart('alternative')
        for part in parts:
            del part['MIME-Version']
            message.attach(part)
    # the usual order: addresses, subject, date and id first, then the MIME fields
    mime_fields = sorted(message.items(), key=lambda item: item[0].lower() != 'mime-version')
    for name, dummy in mime_fields:
        del message[name]
    message['From'] = source
    if to_addresses:
        message['To'] = ', '.join(to_addresses)
    if cc_addresses:
        message['Cc'] = ', '.join(cc_addresses)
    if subject.isascii() and subject_charset.lower() in ('us-ascii', 'ascii', 'utf-8', 'utf8'):
        message['Subject'] = subject
    else:
        message['Subject'] = Header(subject, subject_charset)
    message['Date'] = email.utils.formatdate(usegmt=True)
    message['Message-ID'] = '<%s@%s>' % (message_id, MESSAGE_ID_DOMAIN)
    for name, value in mime_fields:
        message[name] = value
    return message.as_bytes(policy=email.policy.compat32.clone(linesep='\r\n'))


def raw_headers(raw):
    """Return the parsed header block of a raw message (policy default, decoded values)."""
    return BytesHeaderParser(policy=email.policy.default).parsebytes(raw)


def header_addresses(headers, names):
    """Return the addr-specs of the header fields ``names`` (all occurrences), in order."""
    values = []
    for name in names:
        for value in headers.get_all(name) or []:
            values.append(str(value))
    return [addr for dummy, addr in email.utils.getaddresses(values) if addr]


def project_messages(messages, project_id):
    """Return the stored messages of a project."""
    return [record for record in messages.list() if record.get('project_id') == project_id] if messages is not None else []


def _recipients(record):
    return len(record.get('rcpt_tos') or []) or 1


def sent_since(records, since):
    """Return how many emails (recipients) ``records`` sent at or after ``since``."""
    return sum(_recipients(record) for record in records if float(record.get('time', 0)) >= since)


def send_events(contract):
    """Return the contract's ``send_events`` list (empty if absent; the state is not changed)."""
    events = contract.data.get('send_events')
    return events if isinstance(events, list) else []


def add_send_event(contract, when, counters):
    """Append a send event ``{"time": when, "delivery_attempts": N, "rejects": N, ...}`` (admin); return it."""
    event = {'time': float(when)}
    for name in EVENT_COUNTERS:
        value = counters.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError('%s must be an integer >= 0' % name)
        event[name] = value
    events = contract.data.get('send_events')
    if not isinstance(events, list):
        events = contract.data['send_events'] = []
    events.append(event)
    return event


def statistics(records, events, now):
    """Return the data points of the last two weeks, newest first: ``[(bucket start, counters dict)]``."""
    buckets = {}
    since = now - STATISTICS_PERIOD

    def bucket(when):
        start = int(when // BUCKET) * BUCKET
        return buckets.setdefault(start, dict.fromkeys(EVENT_COUNTERS, 0))

    for record in records:
        when = float(record.get('time', 0))
        if since <= when <= now:
            bucket(when)['delivery_attempts'] += _recipients(record)
    for event in events:
        when = float(event.get('time', 0))
        if since <= when <= now:
            counters = bucket(when)
            for name in EVENT_COUNTERS:
                counters[name] += int(event.get(name) or 0)
    return sorted(buckets.items(), reverse=True)


def timestamp(epoch):
    """Format a bucket start as ``YYYY-MM-DDThh:mm:ss.SSSZ``."""
    return iso_utc(epoch, micro=False)[:-1] + '.000Z'
