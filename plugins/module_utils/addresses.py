# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Mail addresses and domain names: the checks the service's rules call for, and the form it wants.

Used by send_email (sender and recipients, through sending.py), by identity (the identity
to verify) and by fjcloud-mail-external; connection.py checks host names with ``DNS_LABEL``.

- Addresses are checked with ``email.utils`` plus a plain structural check
  (one address per item, one ``@``, a local part of allowed ASCII characters,
  a domain of dot-separated labels), never with DNS.
- Display names that are not ASCII are RFC 2047 encoded (UTF-8) before they
  are sent, as the service requires; ASCII display names are quoted when needed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from email.utils import formataddr, parseaddr, unquote

MAX_ADDRESS_LENGTH = 256
MAX_DOMAIN_LENGTH = 255
MAX_LOCAL_PART_LENGTH = 64

# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators.
CONTROL = re.compile(u'[\x00-\x1f\x7f-\x9f\u2028\u2029]')
LINE_BREAK = re.compile(u'[\r\n\u2028\u2029]')
# One label of a DNS name: 1 to 63 ASCII letters, digits and inner dashes.
DNS_LABEL = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z')
_ANGLE_FORM = re.compile(r'^(?P<name>[^<>]*?)\s*<(?P<addr>[^<>]*)>\s*\Z')
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


def is_ascii(text):
    """Whether ``text`` holds only ASCII characters."""
    try:
        text.encode('ascii')
    except UnicodeEncodeError:
        return False
    return True


def address_problem(addr):
    """Why ``addr`` (the part between < and >) is not an address the service takes, or None."""
    if not addr:
        return 'no address'
    if len(addr) > MAX_ADDRESS_LENGTH:
        return 'the address is %d characters long, the service accepts at most %d' % (len(addr), MAX_ADDRESS_LENGTH)
    if any(char.isspace() for char in addr):
        return 'the address contains white space'
    if addr.count('@') != 1:
        return 'an address has exactly one @, found %d' % addr.count('@')
    local, domain = addr.split('@')
    if not local:
        return 'the part before @ is empty'
    if not domain:
        return 'the domain after @ is empty'
    if not is_ascii(addr):
        return ('the address contains non-ASCII characters (a domain must be given in its ASCII form, '
                'xn--..., and the part before @ must be ASCII)')
    if len(local) > MAX_LOCAL_PART_LENGTH:
        return 'the part before @ is %d characters long, at most %d are allowed' % (len(local), MAX_LOCAL_PART_LENGTH)
    if not _LOCAL_PART.match(local):
        return ('the part before @ may hold letters, digits, dots (not first, last or doubled) '
                "and !#$%&'*+/=?^_`{|}~-")
    return domain_problem(domain)


def domain_problem(domain):
    """Why ``domain`` is not a domain name the service takes, or None."""
    if len(domain) > MAX_DOMAIN_LENGTH:
        return 'the domain is %d characters long, the service accepts at most %d' % (len(domain), MAX_DOMAIN_LENGTH)
    if not is_ascii(domain):
        return 'the domain %s contains non-ASCII characters (give its ASCII form, xn--...)' % domain
    labels = domain.split('.')
    if len(labels) < 2:
        return 'the domain %s has no dot' % domain
    if not all(DNS_LABEL.match(label) for label in labels):
        return ('the domain %s is not dot-separated labels of letters, digits and inner dashes '
                '(1 to 63 characters each)' % domain)
    if labels[-1].isdigit():
        return 'the domain %s ends with a numeric label, which is not a top-level domain' % domain
    return None


def _unquoted_separator(text):
    """Whether ``text`` holds a , or ; outside a quoted string: RFC 5322 separates addresses with them."""
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == '\\':
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in ',;':
            return True
    return False


def parse_address(value):
    """Split ``value`` (``a@example.com`` or ``Name <a@example.com>``) into ``(name, addr)``.

    Raise ValueError with the reason when it is not exactly one well-formed address.
    """
    if not isinstance(value, str):
        raise ValueError('an address is a string')
    if LINE_BREAK.search(value):
        raise ValueError('it contains a line break (CR or LF), which could add mail headers')
    if CONTROL.search(value):
        raise ValueError('it contains a control character')
    text = value.strip()
    if not text:
        raise ValueError('it is empty')
    if _unquoted_separator(text):
        # Decided here, not by email.utils.getaddresses: how it reads a list differs between
        # Python patch releases (3.11.2 and 3.11.7 read 'a@x;b@y' differently).
        raise ValueError('it holds more than one address (an unquoted , or ;): give one address per list item, '
                         'and quote a display name that contains a comma ("Ops, Team" <ops@example.com>)')
    match = _ANGLE_FORM.match(text)
    if match:
        name, addr = match.group('name').strip(), match.group('addr').strip()
        if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
            name = unquote(name)
        elif '"' in name:
            raise ValueError('the display name has an unbalanced double quote')
    elif '<' in text or '>' in text:
        raise ValueError('the < and > around the address do not match, or text follows the >')
    else:
        name, addr = '', text
    problem = address_problem(addr)
    if problem:
        raise ValueError(problem)
    # The standard library must read it the same way, or the service may not.
    if parseaddr(text)[1] != addr:
        raise ValueError('it is not read as the address %s by an RFC 5322 parser' % addr)
    return name, addr


def format_address(name, addr):
    """The address as the service wants it: a non-ASCII display name RFC 2047 encoded in UTF-8."""
    if not name:
        return addr
    # formataddr quotes an ASCII name when needed, and encodes a non-ASCII one
    # as =?utf-8?b?...?= (what email.header.Header(name, 'utf-8').encode() gives).
    return formataddr((name, addr), charset='utf-8')


def check_addresses(option, values, errors):
    """Append the problems of the addresses of ``option`` to ``errors``; return ``[(name, addr)]`` of the good ones."""
    parsed = []
    for index, value in enumerate(values or []):
        where = option if option == 'sender' else '%s[%d]' % (option, index)
        try:
            parsed.append(parse_address(value))
        except ValueError as exc:
            errors.append('%s %r is not a valid email address: %s' % (where, value, exc))
    return parsed
