# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Postfix's text formats, read as Postfix reads them (pure functions, no I/O): the lines of
sasl_passwd and where the relay's line goes, that file masked for diffs, the keys set in
main.cf and the tables of a table list. Used by postfix_relay_config through postfix_plan.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MARKER = '# managed by fjcloud.mail.postfix_relay'
MASK = '********'
# Whitespace as Postfix's tables read it (C isspace): it ends a key and starts a continuation line.
POSTFIX_SPACE = ' \t\n\v\f\r'
KEY_END = re.compile('[%s]' % POSTFIX_SPACE)
MAIN_CF_KEY = re.compile(r'^([A-Za-z0-9_]+)[ \t]*=', re.MULTILINE)


def table_lines(text):
    """The lines of a Postfix table, split on newlines only: a form feed or \\x1c stays inside its line."""
    lines = text.split('\n')
    if lines[-1] == '':
        lines.pop()
    return lines


def line_kind(line):
    """How Postfix reads a table line: 'ignored' (blank or comment), 'continuation' (starts with whitespace), or 'entry'."""
    stripped = line.strip(POSTFIX_SPACE)
    if not stripped or stripped.startswith('#'):
        return 'ignored'
    return 'continuation' if line[0] in POSTFIX_SPACE else 'entry'


def entry_key(line):
    return KEY_END.split(line, 1)[0]


def entry_lines(lines, start):
    """The indexes of the logical line starting at ``start``: it and its continuation lines."""
    indexes = [start]
    for index in range(start + 1, len(lines)):
        kind = line_kind(lines[index])
        if kind == 'entry':
            break
        if kind == 'continuation':
            indexes.append(index)
    return indexes


def sasl_plan(text, nexthop, line):
    """The new sasl_passwd text and the keys of the lines removed (other than nexthop's own).

    The relay's line follows MARKER. A marked line of an earlier relay goes; a bare line for
    this nexthop (written by hand or by another tool) is taken over; a line whose key is nexthop in other letter
    case goes too (reported), since Postfix's hash and lmdb lookups fold case and the first
    line would win. Continuation lines go with their line; other lines stay in place.
    """
    lines = table_lines(text)
    dropped, removed = set(), []
    for index, current in enumerate(lines):
        if index in dropped:
            continue
        if current.strip() == MARKER:
            dropped.add(index)
            following = index + 1
            if following < len(lines) and line_kind(lines[following]) == 'entry':
                removed.append(entry_key(lines[following]))
                dropped.update(entry_lines(lines, following))
        elif line_kind(current) == 'entry' and entry_key(current).lower() == nexthop.lower():
            removed.append(entry_key(current))
            dropped.update(entry_lines(lines, index))
    kept = [current for index, current in enumerate(lines) if index not in dropped]
    position = min(dropped) if dropped else len(kept)  # every line before the first dropped one is kept
    new_lines = kept[:position] + [MARKER, line] + kept[position:]
    return '\n'.join(new_lines) + '\n', [key for key in removed if key != nexthop]


def masked(text):
    """sasl_passwd for diffs: the keys only; values, comments and continuation lines become MASK."""
    out = []
    for line in table_lines(text):
        stripped = line.strip()
        if not stripped or stripped in (MARKER, '#'):
            out.append(stripped)
        elif stripped.startswith('#'):
            out.append('# ' + MASK)  # a comment may hold an old line, with its password
        elif line[0].isspace():
            out.append('    ' + MASK)  # continues the value of the line above
        else:
            fields = line.split(None, 1)
            out.append(fields[0] if len(fields) == 1 else '%s %s' % (fields[0], MASK))
    return ''.join(line + '\n' for line in out)


def main_cf_keys(text):
    """The parameter names set in main.cf text (a line 'name = value' starting in the first column)."""
    return set(MAIN_CF_KEY.findall(text))


def map_list(value):
    """The tables of a Postfix table list (commas or whitespace between them, a {...} group kept whole)."""
    tables, current, depth = [], '', 0
    for char in value:
        depth += {'{': 1, '}': -1}.get(char, 0)
        if depth <= 0 and char in ', \t\r\n':
            depth = 0
            if current:
                tables.append(current)
            current = ''
        else:
            current += char
    if current:
        tables.append(current)
    return tables


def postconf_values(text):
    """``key = value`` lines of postconf as a dict."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(' =')
        if sep:
            values[key] = value[1:] if value.startswith(' ') else value
    return values
