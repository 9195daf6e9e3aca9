# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake of Postfix's postconf and postmap for the unit tests of postfix_relay_config's code.

``FakePostfix(config_dir)`` is a ``run_command(argv) -> (rc, out, err)`` as PostfixHost takes
it. It keeps main.cf as a real file in config_dir (``postconf -e``/``-X`` edit it) and writes
each index as a real file beside its source, created under the process's umask as postmap
does, so that the tests see the modes and files the code leaves. What it does not model
(master.cf, dynamic maps, postconf's expansion) the functional tests prove with the real
Postfix (tests/functional/test_postfix_*.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_host import PostfixHost

MAIN_CF_LINE = re.compile(r'^([A-Za-z0-9_]+)[ \t]*=[ \t]*(.*)$')
SUFFIXES = {'hash': '.db', 'btree': '.db', 'lmdb': '.lmdb', 'cdb': '.cdb'}
DEFAULTS = {
    'default_database_type': 'hash', 'default_transport': 'smtp', 'relay_transport': 'relay', 'relayhost': '',
    'smtp_sasl_auth_enable': 'no', 'smtp_sasl_password_maps': '', 'smtp_sasl_security_options': 'noplaintext, noanonymous',
    'smtp_sasl_tls_security_options': '$smtp_sasl_security_options', 'smtp_tls_security_level': '',
    'smtp_tls_wrappermode': 'no', 'smtp_tls_CAfile': '', 'smtp_tls_policy_maps': '', 'smtp_host_lookup': 'dns',
    'smtp_tls_loglevel': '0',
}


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


class FakePostfix:
    """postconf and postmap of one instance; ``builds`` records (source mode, umask) of every postmap build."""

    def __init__(self, config_dir, map_types=('btree', 'hash'), services=None, parameters=()):
        self.config_dir = str(config_dir)
        self.map_types = list(map_types)
        self.parameters = set(parameters)  # known beyond DEFAULTS (a master.cf service's, one's own that is used)
        self.services = dict(services or {})  # postconf -P: 'smtp/unix/smtp_tls_security_level' -> 'may'
        self.calls = []
        self.builds = []
        self.postmap_exit, self.postmap_error = 0, ''  # how the next builds end
        self.running = True  # postfix status

    def host(self):
        """The PostfixHost the code under test gets: its commands run by this fake, no package manager."""
        return PostfixHost(self.config_dir, self, lambda name: None)

    @property
    def main_cf(self):
        return os.path.join(self.config_dir, 'main.cf')

    def __call__(self, argv):
        self.calls.append(list(argv))
        assert argv[1:3] == ['-c', self.config_dir], argv
        if argv[0] == 'postconf':
            return self.postconf(argv[3:])
        if argv[0] == 'postmap':
            return self.postmap(argv[3:])
        if argv[0:1] + argv[3:] == ['postfix', 'status']:
            return (0, '', '') if self.running else (1, '', 'postfix/postfix-script: the Postfix mail system is not running\n')
        return 127, '', '%s: not found' % argv[0]

    # ------------------------------------------------------------ postconf

    def settings(self):
        settings = {}
        with open(self.main_cf, encoding='utf-8') as handle:
            for line in handle:
                match = MAIN_CF_LINE.match(line.rstrip('\n'))
                if match:
                    settings[match.group(1)] = match.group(2)
        return settings

    def postconf(self, args):
        flags, overrides, names = set(), {}, []
        while args:
            arg = args.pop(0)
            if arg == '-o':
                key, _sep, value = args.pop(0).partition('=')
                overrides[key] = value
            elif arg.startswith('-'):
                flags.add(arg)
            else:
                names.append(arg)
        if '-m' in flags:
            return 0, ''.join(name + '\n' for name in self.map_types), ''
        if '-e' in flags:
            return self.edit(dict(name.split('=', 1) for name in names))
        if '-X' in flags:
            return self.edit(dict((name, None) for name in names))
        if '-P' in flags:
            return 0, ''.join('%s = %s\n' % item for item in sorted(self.services.items())), ''
        if '-d' in flags:
            values = dict(DEFAULTS)
        elif '-n' in flags:
            values = self.settings()
            names = names or sorted(values)
        else:
            values = dict(DEFAULTS, **self.settings())
            values.update(overrides)
        # Like Postfix, it prints nothing for a parameter it does not know, even one set in main.cf.
        known = [name for name in names if name in values and (name in DEFAULTS or name in self.parameters)]
        out = ''.join('%s = %s\n' % (name, values[name]) for name in known)
        err = ''.join('postconf: warning: %s: unknown parameter\n' % name for name in names if name not in known)
        return 0, out, err

    def edit(self, changes):
        with open(self.main_cf, encoding='utf-8') as handle:
            lines = handle.read().splitlines()
        kept = []
        for line in lines:
            match = MAIN_CF_LINE.match(line)
            if match and match.group(1) in changes:
                value = changes.pop(match.group(1))
                if value is not None:
                    kept.append('%s = %s' % (match.group(1), value))
            else:
                kept.append(line)
        kept.extend('%s = %s' % item for item in sorted(changes.items()) if item[1] is not None)
        with open(self.main_cf, 'w', encoding='utf-8') as handle:
            handle.write(''.join(line + '\n' for line in kept))
        return 0, '', ''

    # ------------------------------------------------------------- postmap

    def postmap(self, args):
        if args[0] == '-q':
            return self.query(args[1], args[2])
        map_type, _sep, source = args[0].partition(':')
        self.builds.append((os.stat(source).st_mode & 0o7777, current_umask()))
        if self.postmap_exit:
            return self.postmap_exit, '', self.postmap_error
        entries = {}
        key = None
        with open(source, encoding='utf-8', errors='surrogateescape') as handle:
            for line in handle.read().split('\n'):
                if not line.strip() or line.strip().startswith('#'):
                    continue
                if line[0].isspace() and key is not None:
                    entries[key] += ' ' + line.strip()
                    continue
                fields = line.split(None, 1)
                key = fields[0].lower()
                if key in entries:  # the first line wins, as in Postfix
                    key = None
                    continue
                entries[key] = fields[1].strip() if len(fields) > 1 else ''
        with open(source + SUFFIXES[map_type], 'w', encoding='utf-8') as handle:  # created under the umask
            json.dump(entries, handle)
        return 0, '', ''

    def query(self, key, table):
        map_type, _sep, source = table.partition(':')
        try:
            with open(source + SUFFIXES[map_type], encoding='utf-8') as handle:
                entries = json.load(handle)
        except (OSError, ValueError) as error:
            return 1, '', 'postmap: fatal: open database %s%s: %s\n' % (source, SUFFIXES[map_type], error)
        if key.lower() in entries:
            return 0, entries[key.lower()] + '\n', ''
        return 1, '', ''
