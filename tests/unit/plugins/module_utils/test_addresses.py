# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mail addresses: which the service takes, and the form they are sent in (pure functions)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import email
from email.header import decode_header, make_header

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.addresses import format_address, parse_address


@pytest.mark.parametrize('value, expected', [
    ('ops@example.com', ('', 'ops@example.com')),
    ('  ops@example.com  ', ('', 'ops@example.com')),
    ('<ops@example.com>', ('', 'ops@example.com')),
    ('Ops <ops@example.com>', ('Ops', 'ops@example.com')),
    ('"Ops, Team" <ops@example.com>', ('Ops, Team', 'ops@example.com')),
    ('"Ops \\"night\\"" <ops@example.com>', ('Ops "night"', 'ops@example.com')),
    (u'Jörg Müller <joerg@example.de>', (u'Jörg Müller', 'joerg@example.de')),
    (u'運用チーム <ops@example.jp>', (u'運用チーム', 'ops@example.jp')),
    ('=?utf-8?q?J=C3=B6rg?= <joerg@example.de>', ('=?utf-8?q?J=C3=B6rg?=', 'joerg@example.de')),
    ("o'brien+tag@mail.example.co.uk", ('', "o'brien+tag@mail.example.co.uk")),
    ('ops@xn--bcher-kva.de', ('', 'ops@xn--bcher-kva.de')),
])
def test_good_addresses(value, expected):
    assert parse_address(value) == expected


@pytest.mark.parametrize('value, reason', [
    ('', 'it is empty'),
    ('   ', 'it is empty'),
    ('ops', 'exactly one @, found 0'),
    ('ops@@example.com', 'exactly one @, found 2'),
    ('a@b@example.com', 'exactly one @, found 2'),
    ('@example.com', 'the part before @ is empty'),
    ('ops@', 'the domain after @ is empty'),
    ('ops @example.com', 'white space'),
    ('foo bar', 'white space'),
    ('ops@localhost', 'the domain localhost has no dot'),
    ('ops@example..com', 'dot-separated labels'),
    ('ops@-example.com', 'dot-separated labels'),
    ('ops@example.com.', 'dot-separated labels'),
    ('ops@10.0.0.1', 'numeric label'),
    ('.ops@example.com', 'the part before @ may hold'),
    ('o..ps@example.com', 'the part before @ may hold'),
    ('"o ps"@example.com', 'white space'),
    ('o(ps)@example.com', 'the part before @ may hold'),
    (u'jörg@example.de', 'non-ASCII'),
    (u'ops@bücher.de', 'a domain must be given in its ASCII form, xn--'),
    ('a@example.com, b@example.com', 'more than one address'),
    ('a@example.com;b@example.com', 'more than one address'),
    ('Ops, Team <ops@example.com>', 'quote a display name that contains a comma'),
    ('Ops <ops@example.com', 'do not match'),
    ('ops@example.com>', 'do not match'),
    ('Ops <ops@example.com> extra', 'text follows'),
    ('Ops <a@example.com> <b@example.com>', 'do not match'),
    ('Ops "x <ops@example.com>', 'unbalanced double quote'),
    ('Ops <>', 'no address'),
    ('x' * 64 + '@' + 'd' * 60 + '.' + 'e' * 60 + '.' + 'f' * 60 + '.' + 'g' * 60 + '.com',
     'is 312 characters long, the service accepts at most 256'),
    ('x' * 65 + '@example.com', 'the part before @ is 65 characters long'),
    ('ops@' + 'a' * 64 + '.com', 'dot-separated labels'),
])
def test_bad_addresses(value, reason):
    with pytest.raises(ValueError) as caught:
        parse_address(value)
    assert reason in str(caught.value)


def test_address_length_limit_is_256():
    local = 'x' * 60
    domain = '.'.join(['d' * 60, 'e' * 60, 'f' * 60]) + '.' + 'g' * (256 - 60 - 1 - 183)
    assert len(local + '@' + domain) == 256
    assert parse_address(local + '@' + domain)[1] == local + '@' + domain
    with pytest.raises(ValueError, match='257 characters long'):
        parse_address(local + '@' + domain + 'g')


@pytest.mark.parametrize('value', [
    'ops@example.com\r\nBcc: victim@example.org',
    'ops@example.com\nBcc: victim@example.org',
    'Ops\r\nBcc: victim@example.org <ops@example.com>',
    'ops@example.com\r',
    'ops@example.com\n',
    u'ops@example.com\u2028Bcc: victim@example.org',
])
def test_line_breaks_in_addresses_are_refused(value):
    with pytest.raises(ValueError, match='line break'):
        parse_address(value)


@pytest.mark.parametrize('value', ['ops@example.com\t', 'Ops\x00 <ops@example.com>', 'Ops\x1b <ops@example.com>'])
def test_control_characters_in_addresses_are_refused(value):
    with pytest.raises(ValueError, match='control character'):
        parse_address(value)


def test_format_address():
    assert format_address('', 'ops@example.com') == 'ops@example.com'
    assert format_address('Ops', 'ops@example.com') == 'Ops <ops@example.com>'
    assert format_address('Ops, Team', 'ops@example.com') == '"Ops, Team" <ops@example.com>'


@pytest.mark.parametrize('name', [u'Jörg Müller', u'運用チーム', u'Ops — night shift, "on call"'])
def test_non_ascii_display_names_are_rfc2047_encoded(name):
    formatted = format_address(name, 'ops@example.com')
    assert formatted.isascii() and formatted.startswith('=?utf-8?b?') and formatted.endswith('?= <ops@example.com>')
    encoded_name = formatted[:-len(' <ops@example.com>')]
    assert str(make_header(decode_header(encoded_name))) == name
    # What the service's parser will read back.
    assert email.utils.parseaddr(formatted)[1] == 'ops@example.com'
