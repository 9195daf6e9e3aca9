# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

One Postfix instance as postfix_relay_config reads it: its postconf and postmap commands
(through the caller's runner, AnsibleModule.run_command or a test's), the packages it needs,
and the checks of the host that come before any change: the map type, the CA file, the
main_cf_extra keys Postfix knows, and the TLS level Postfix would use for the relay.
Reads only; standard library only (this runs on the managed hosts).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import os
import re

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import (
    INDEX_SUFFIXES, PostfixRelayError, tls_level,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_tables import map_list, postconf_values

try:
    import ssl
except ImportError:  # a Python built without OpenSSL: the PEM structure is still checked
    ssl = None

SYSTEM_CA_FILES = ('/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt',
                   '/etc/ssl/ca-bundle.pem', '/etc/ssl/cert.pem')
DEFAULT_CONFIG_DIR = '/etc/postfix'
DEBIAN_MAIN_CF = '/usr/share/postfix/main.cf.debian'
DEFAULT_PACKAGES = {'apt': ['postfix', 'libsasl2-modules'], 'dnf': ['postfix', 'cyrus-sasl-plain']}
PEM_CERTIFICATE = re.compile(r'-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----')
# smtp_tls_security_level values by strength. dane counts as opportunistic (without usable TLSA
# records Postfix falls back to may); the levels ranked 4 verify the relay's identity.
TLS_LEVEL_RANK = {'none': 0, 'may': 1, 'dane': 2, 'encrypt': 3, 'dane-only': 4, 'fingerprint': 4, 'verify': 4, 'secure': 4}
# The main.cf keys naming the transports (master.cf services) that carry mail to relayhost.
RELAY_TRANSPORT_KEYS = ('default_transport', 'relay_transport')
# The main.cf keys that decide the TLS level Postfix uses for the relay, besides smtp_tls_security_level.
TLS_ROUTE_KEYS = ('smtp_tls_policy_maps',) + RELAY_TRANSPORT_KEYS
# The service parameters (master.cf -o) that can lower it.
SERVICE_TLS_KEYS = ('smtp_tls_security_level', 'smtp_tls_policy_maps')


class PostfixHost:
    """The postconf and postmap commands of one instance, run with ``run_command(argv) -> (rc, out, err)``."""

    def __init__(self, config_dir, run_command, get_bin_path):
        self.config_dir = config_dir.rstrip('/') or '/'
        self.run_command = run_command
        self.get_bin_path = get_bin_path
        self.main_cf = os.path.join(self.config_dir, 'main.cf')
        self.sasl_passwd = os.path.join(self.config_dir, 'sasl_passwd')

    def run(self, *args):
        """Run postconf/postmap with -c config_dir; its output, or an error with its message."""
        rc, out, err = self.run_command([args[0], '-c', self.config_dir] + list(args[1:]))
        if rc != 0:
            raise PostfixRelayError('%s -c %s failed (exit code %d): %s' % (args[0], self.config_dir, rc, (err or out).strip()))
        return out

    def values(self, *args):
        """postconf's ``key = value`` lines as a dict."""
        return postconf_values(self.run('postconf', *args))

    def query(self, table, key):
        """Ask a table for key (postmap -q): (value or None when absent, the error when the table cannot be read)."""
        rc, out, err = self.run_command(['postmap', '-c', self.config_dir, '-q', key, table])
        if rc == 0:
            return (out[:-1] if out.endswith('\n') else out), None
        if rc == 1 and 'fatal:' not in err:
            return None, None
        return None, (err.strip().splitlines() or ['exit code %d' % rc])[-1]

    def map_lookup(self, map_type, path, key):
        """What Postfix's map answers for key, or None: no such key, or no readable index. Never shown."""
        return self.query('%s:%s' % (map_type, path), key)[0]

    def index_answers(self, map_type, key, value):
        """True when the index of sasl_passwd is not older than it and answers key with value.

        One postmap -q per run: an empty or half-written index (a postmap killed, a full disk)
        fails it whatever its date says, and so do a stale value and a missing index.
        """
        try:
            if os.stat(self.sasl_passwd + INDEX_SUFFIXES[map_type]).st_mtime < os.stat(self.sasl_passwd).st_mtime:
                return False
        except OSError:
            return False
        return self.map_lookup(map_type, self.sasl_passwd, key) == value

    def running(self):
        """Whether this instance's master process runs (postfix status)."""
        return self.run_command(['postfix', '-c', self.config_dir, 'status'])[0] == 0

    def debian_main_cf_missing(self):
        """True for Debian's "No configuration" choice: /etc/postfix without main.cf, the template at hand."""
        return (self.config_dir == DEFAULT_CONFIG_DIR and not os.path.isfile(self.main_cf)
                and os.path.isfile(DEBIAN_MAIN_CF))

    def package_manager(self):
        if self.get_bin_path('dpkg-query'):
            return 'apt'
        if self.get_bin_path('rpm'):
            return 'dnf'
        return ''

    def missing_packages(self, manager, names):
        """The packages of ``names`` (default: those Postfix needs here) that the package database lacks."""
        names = names or DEFAULT_PACKAGES.get(manager, ['postfix'])
        if manager == 'apt':
            dummy_rc, out, dummy_err = self.run_command(['dpkg-query', '-W', '-f', '${Package} ${db:Status-Status}\\n'] + names)
            installed = set(line.split()[0] for line in out.splitlines() if line.endswith(' installed'))
        elif manager == 'dnf':
            dummy_rc, out, dummy_err = self.run_command(['rpm', '-q', '--qf', '%{NAME}\\n'] + names)
            installed = set(line.strip() for line in out.splitlines() if ' ' not in line.strip())
        else:
            return []
        return [name for name in names if name not in installed]


def map_type_problem(map_type, supported, config_dir, option):
    """Why Postfix here cannot use map_type for sasl_passwd, or None."""
    if map_type in INDEX_SUFFIXES and map_type in supported:
        return None
    return ("The map type '%s' (%s) cannot be used: this module supports %s, and Postfix in %s supports %s. "
            "Install the map type's package (e.g. postfix-lmdb) or choose another map type." % (
                map_type, option, ', '.join(sorted(INDEX_SUFFIXES)), config_dir, ', '.join(supported)))


def ca_file_problem(path, option):
    """Why Postfix could not use the CA file (missing, not PEM, no certificate, not loadable by OpenSSL), or None."""
    if not os.path.isfile(path):
        return '%s: %s is not a file on this host.' % (option, path)
    try:
        with open(path, 'rb') as handle:
            text = handle.read().decode('ascii', 'replace')
    except (IOError, OSError) as error:
        return '%s: %s cannot be read: %s.' % (option, path, error.strerror or error)
    blocks = PEM_CERTIFICATE.findall(text)
    if not blocks:
        return ('%s: %s holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block); Postfix needs the CA '
                'certificates in PEM format.' % (option, path))
    for number, block in enumerate(blocks, 1):
        try:
            base64.b64decode(''.join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            return '%s: certificate %d of %s is not valid base64 PEM.' % (option, number, path)
    if ssl is not None:
        try:
            ssl.create_default_context(cafile=path)
        except (ssl.SSLError, ValueError) as error:
            return '%s: OpenSSL cannot load the certificates of %s (%s).' % (option, path, error)
    return None


def planned_config_problems(host, params, nexthop, name, current):
    """Check main.cf as this run leaves it, before anything changes: every extra key known, the relay's TLS level kept.

    ``current`` holds postconf's values of TLS_ROUTE_KEYS as main.cf has them: without main_cf_extra and
    without a $name to expand, they are what Postfix uses, and no second postconf is needed (a steady run).
    """
    extra = params['main_cf_extra']
    overrides = postconf_overrides(host, extra)
    if extra or any('$' in current.get(key, '') for key in TLS_ROUTE_KEYS):
        keys = [key for key, value in extra.items() if value is not None] + list(TLS_ROUTE_KEYS)
        planned = host.values('-x', *(overrides + keys))
    else:
        planned = current
    problems = unknown_keys_problems(host, extra, planned, name('main_cf_extra'))
    problems.extend(tls_level_problems(host, nexthop, tls_level(params), planned, overrides, name('tls_verify')))
    return problems


def postconf_overrides(host, extra):
    """postconf -o arguments that show main.cf as this run leaves it: the extra keys set, or back at their defaults."""
    values = dict((key, value) for key, value in extra.items() if value is not None)
    removed = [key for key, value in extra.items() if value is None]
    if removed:
        defaults = host.values('-d', *removed)
        values.update((key, defaults[key]) for key in removed if key in defaults)
    arguments = []
    for key in sorted(values):
        arguments.extend(['-o', '%s=%s' % (key, values[key])])
    return arguments


def unknown_keys_problems(host, extra, planned, option):
    """Extra keys that Postfix, with them set, does not know.

    postconf prints nothing for a parameter it does not know (a misspelling, or a parameter of
    one's own that nothing uses), so such a key would look missing and be set on every run.
    """
    unknown = sorted(key for key, value in extra.items() if value is not None and key not in planned)
    if not unknown:
        return []
    return ['%s: Postfix in %s does not know the parameter(s) %s (postconf: "unknown parameter"), so they would be set '
            'again on every run. Check the spelling (postconf -d lists the parameters Postfix knows); a parameter of '
            'your own must be used by another one ($name) or in master.cf; set a key to null to remove it.'
            % (option, host.config_dir, ', '.join(unknown))]


def relay_transports(planned):
    """The master.cf services that carry mail to relayhost (default_transport, relay_transport)."""
    names = []
    for key in RELAY_TRANSPORT_KEYS:
        transport = planned.get(key, '').split(':', 1)[0].strip()
        if transport and transport not in names:
            names.append(transport)
    return names


def master_cf_sets_tls(host):
    """Whether a service of master.cf may set SERVICE_TLS_KEYS (-o): only then is postconf -P asked.

    Without a master.cf (a configuration directory not yet used by a running instance) no service overrides anything.
    """
    try:
        with open(os.path.join(host.config_dir, 'master.cf'), 'rb') as handle:
            text = handle.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return False
    return any(key in text for key in SERVICE_TLS_KEYS)


def tls_level_problems(host, nexthop, wanted, planned, overrides, option):
    """Policy table entries and master.cf overrides that lower the relay's TLS level below the wanted one.

    Per transport, as Postfix decides: an entry for the next hop in smtp_tls_policy_maps wins,
    else the service's -o smtp_tls_security_level, else main.cf's level (the wanted one).
    A table that cannot be queried is a problem too: the level cannot be known.
    """
    services = host.values('-P', '-x', *overrides) if master_cf_sets_tls(host) else {}
    problems = []
    for transport in relay_transports(planned):
        service = '%s/unix' % transport
        level, source = wanted, None
        override = services.get(service + '/smtp_tls_security_level')
        if override is not None:
            level = override or 'none'
            source = 'master.cf (%s/master.cf, service %s: -o smtp_tls_security_level=%s)' % (
                host.config_dir, service, override)
        maps = services.get(service + '/smtp_tls_policy_maps', planned.get('smtp_tls_policy_maps', ''))
        for table in map_list(maps):
            # proxymap would look up the same table; postmap asks it directly
            queried = table[len('proxy:'):] if table.startswith('proxy:') else table
            entry, error = host.query(queried, nexthop)
            if error:
                problem = ('smtp_tls_policy_maps: %s cannot be queried (postmap: %s), so the TLS level for %s '
                           'cannot be checked.' % (queried, error, nexthop))
                if problem not in problems:  # a table both transports use
                    problems.append(problem)
                source = None
                break
            if entry is not None:
                entry = entry.strip()
                level = (entry.split() or [''])[0]
                source = 'smtp_tls_policy_maps (%s: %s %s, used by service %s)' % (queried, nexthop, entry, service)
                break
        if source and TLS_LEVEL_RANK.get(level.lower(), -1) < TLS_LEVEL_RANK[wanted]:
            problems.append(
                "The TLS security level for the relay %s is lowered to '%s' by %s. %s=%s needs '%s' or stronger (%s), "
                "else Postfix may send the SMTP password over an %s connection: remove that setting or raise its level." % (
                    nexthop, level, source, option, 'true' if wanted == 'secure' else 'false', wanted,
                    'verify, fingerprint, dane-only' if wanted == 'secure' else 'secure, verify, fingerprint, dane-only',
                    'unverified' if wanted == 'secure' else 'unencrypted'))
    return problems
