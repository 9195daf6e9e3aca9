# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postfix_tables: Postfix's table syntax, edge case by edge case (no I/O).

The plan of the relay's sasl_passwd line, the masked diff text, the keys of main.cf and the
tables of a table list. tests/functional/test_postfix_index.py checks the same with the real postmap.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_tables import (
    MARKER, main_cf_keys, map_list, masked, postconf_values, sasl_plan,
)

NEXTHOP = '[smtp.example.com]:587'
LINE = NEXTHOP + ' user:NEW'


def plan(text):
    return sasl_plan(text, NEXTHOP, LINE)


def test_empty_file_gets_the_marked_line():
    assert plan('') == ('%s\n%s\n' % (MARKER, LINE), [])


@pytest.mark.parametrize('variant', ['[SMTP.Example.COM]:587', '[smtp.EXAMPLE.com]:587'])
def test_case_variants_are_replaced_and_reported(variant):
    text = '%s user:OLD\n[other]:25 u:p\n' % variant
    assert plan(text) == ('%s\n%s\n[other]:25 u:p\n' % (MARKER, LINE), [variant])


def test_bare_line_of_the_relay_is_taken_over_unreported():
    assert plan('[a]:1 u:p\n%s user:OLD\n' % NEXTHOP) == ('[a]:1 u:p\n%s\n%s\n' % (MARKER, LINE), [])


def test_marked_line_of_an_earlier_relay_goes_with_its_continuation_lines():
    text = '%s\n[old]:587\n  user:OLD\n# kept\n\tmore\n[b]:2 u:p\n' % MARKER
    assert plan(text) == ('%s\n%s\n# kept\n[b]:2 u:p\n' % (MARKER, LINE), ['[old]:587'])


def test_continuation_line_is_not_a_key():
    """An indented "[smtp.example.com]:587 ..." continues the line above: it is not the relay's line."""
    text = '[a]:1\n  %s x\n' % NEXTHOP
    assert plan(text) == (text + '%s\n%s\n' % (MARKER, LINE), [])


@pytest.mark.parametrize('odd', ['\x0c', '\x1c', '\x1d', '\x1e', '\x85', '\u2028', '\r'])
def test_lines_split_at_newline_only(odd):
    text = '[a]:1 u:p%sq\n' % odd
    assert plan(text)[0] == text + '%s\n%s\n' % (MARKER, LINE)


def test_missing_final_newline():
    assert plan('[a]:1 u:p')[0] == '[a]:1 u:p\n%s\n%s\n' % (MARKER, LINE)


def test_key_ends_at_postfix_whitespace():
    """Postfix's key ends at a form feed too: "[SMTP.example.com]:587\\x0cuser:OLD" would shadow the relay's line."""
    assert plan('[SMTP.example.com]:587\x0cuser:OLD\n') == ('%s\n%s\n' % (MARKER, LINE), ['[SMTP.example.com]:587'])


@pytest.mark.parametrize('line, shown', [
    ('[a]:1 user:SECRET', '[a]:1 ********'),
    ('[a]:1 SECRET', '[a]:1 ********'),
    ('[a]:1\tuser:SECRET more', '[a]:1 ********'),
    ('[a]:1\x0cuser:SECRET', '[a]:1 ********'),
    ('[a]:1\x1cSECRET', '[a]:1 ********'),
    ('  user:SECRET', '    ********'),
    ('\tSECRET', '    ********'),
    ('# [a]:1 user:SECRET', '# ********'),
    ('#SECRET', '# ********'),
    ('   # SECRET', '# ********'),
    ('#', '#'),
    ('', ''),
    ('   ', ''),
    (MARKER, MARKER),
    ('[lonely]:25', '[lonely]:25'),
])
def test_masked_shows_keys_only(line, shown):
    assert masked(line + '\n') == shown + '\n'
    assert 'SECRET' not in masked(line)


def test_masked_keeps_lines_and_form_feeds_apart():
    assert masked('[a]:1 u:p\x0cSECRET\n[b]:2 u:SECRET') == '[a]:1 ********\n[b]:2 ********\n'


def test_comments_and_blank_lines_stay_where_they_are():
    text = '# mine\n\n[a]:1 u:p\n# also mine\n'
    assert plan(text)[0] == text + '%s\n%s\n' % (MARKER, LINE)


def test_managed_line_is_replaced_in_place():
    text = '[a]:1 u:p\n%s\n%s user:OLD\n[b]:2 u:p\n' % (MARKER, NEXTHOP)
    assert plan(text) == ('[a]:1 u:p\n%s\n%s\n[b]:2 u:p\n' % (MARKER, LINE), [])


def test_planning_again_changes_nothing():
    text = plan('[a]:1 u:p\n')[0]
    assert plan(text) == (text, [])


def test_masked_diff_of_a_password_change_hides_both_passwords():
    before, after = masked('%s\n%s user:OLD\n' % (MARKER, NEXTHOP)), masked(plan('%s\n%s user:OLD\n' % (MARKER, NEXTHOP))[0])
    assert before == after == '%s\n%s ********\n' % (MARKER, NEXTHOP)


def test_main_cf_keys_start_in_the_first_column():
    text = 'relayhost = [a]:1\n  smtp_tls_loglevel = 1\n# smtp_host_lookup = native\nmy_own=1\nmynetworks =\n'
    assert main_cf_keys(text) == {'relayhost', 'my_own', 'mynetworks'}


@pytest.mark.parametrize('value, tables', [
    ('', []),
    ('hash:/etc/postfix/tls_policy', ['hash:/etc/postfix/tls_policy']),
    ('hash:/a, lmdb:/b\tproxy:hash:/c', ['hash:/a', 'lmdb:/b', 'proxy:hash:/c']),
    ('inline:{ {[a]:25 = secure}, {b = may} }, hash:/d', ['inline:{ {[a]:25 = secure}, {b = may} }', 'hash:/d']),
])
def test_map_list_keeps_brace_groups_whole(value, tables):
    assert map_list(value) == tables


def test_postconf_values():
    assert postconf_values('relayhost = [a]:1\nmynetworks =\nsmtp_helo_name = $myhostname\nnoise\n') == {
        'relayhost': '[a]:1', 'mynetworks': '', 'smtp_helo_name': '$myhostname'}
