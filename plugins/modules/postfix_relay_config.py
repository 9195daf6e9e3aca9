#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postfix_relay_config
short_description: Configure Postfix on the managed host to relay through one SMTP relay with SMTP AUTH over TLS
version_added: 1.0.0
description:
  - Does the host side of the P(fjcloud.mail.postfix_relay#role) role in one execution, with the
    Python standard library only -- the relay's credentials line in C(sasl_passwd), its index, and the
    keys of C(main.cf) that make Postfix relay through O(relay_host) with SMTP AUTH over TLS.
  - Every option, the map type, the CA file (PEM), the O(main_cf_extra) keys (known to Postfix) and the TLS
    level that Postfix would use for the relay (policy tables, C(master.cf) overrides) are checked before anything
    changes, also with O(probe=true). Error messages name the option and never show the password.
  - The relay's line in C(sasl_passwd) is the line after the comment
    C(# managed by fjcloud.mail.postfix_relay). When the relay's host or port changes, that line is
    replaced; a line without the comment whose key is the relay's C([host]:port) (a line written by hand
    or by another tool) is taken over. A line whose key is the relay's in other letter case (C([SMTP.Example.COM]:587))
    is removed and reported in RV(sasl_passwd_removed), since Postfix's lookups fold case and the first line
    would win over the relay's. Other lines stay as they are; lines are split at newlines only, and continuation
    lines (starting with whitespace) go with their line.
  - C(sasl_passwd) and its index are built under temporary names in the same directory (C(.sasl_passwd.XXXXXXXX),
    root's, mode 0600 from creation, C(postmap) under umask 077), the new index is checked to answer the relay's
    key, and then both are moved into place. So neither is ever readable by anyone but root, and a C(postmap)
    that is killed or fails (a full disk) leaves the previous index in place, never a broken one.
  - Every run checks that the index answers the relay's key with the wanted credentials (one C(postmap -q)); a
    missing, older, empty, broken or outdated index is rebuilt and reported as a change (RV(index_rebuilt)).
  - Temporary files that a killed run left in O(config_dir) (root's C(.sasl_passwd.*) files older than 10 seconds
    that no running instance of the module holds locked) are removed, and reported in RV(stale_files_removed).
  - In C(main.cf) only the keys that differ are set (C(postconf -e)); keys that must go are removed
    (C(postconf -X)), that is C(smtp_tls_CAfile) when there is no CA file, and the keys of O(main_cf_extra)
    whose value is null. The rest of C(main.cf) stays as it is.
  - Postfix is not reloaded; RV(reload_needed) tells whether it must be.
  - With O(probe=true) it only checks the host and reports the packages it lacks, so that a role can validate every
    host before it calls the service's API, and install packages only when something is missing.
  - A missing C(/etc/postfix/main.cf) (Debian's C(No configuration) choice) is created from Debian's template.
author:
  - fjcloud.mail developers (@fjcloud)
attributes:
  check_mode:
    description: Reads only; the result says what would change.
    support: full
  diff_mode:
    description: Shows the C(main.cf) keys before and after, and the keys of the C(sasl_passwd) lines; values,
      comments and continuation lines are replaced by C(********).
    support: full
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
options:
  config_dir:
    description:
      - The configuration directory of the Postfix instance (C(postconf -c)). It must hold a C(main.cf).
        C(sasl_passwd) is kept there.
    type: path
    default: /etc/postfix
  relay_host:
    description:
      - Host name or IP address of the relay, without brackets or port. C(relayhost) and the key of the
        C(sasl_passwd) line are C([relay_host]:relay_port) (C([ipv6:ADDRESS]:port) for an IPv6 address).
    type: str
    required: true
  relay_port:
    description:
      - TCP port of the relay.
    type: int
    default: 587
  smtp_user:
    description:
      - SMTP AUTH user name. Must not be empty, contain whitespace or C(:), or start with C(#).
      - Without O(smtp_user) and O(smtp_password), C(sasl_passwd) is left unchecked and only C(main.cf) is managed.
    type: str
  smtp_password:
    description:
      - SMTP AUTH password, with O(smtp_user). Must not be empty, contain whitespace or start with C(#).
    type: str
  map_type:
    description:
      - Map type of C(sasl_passwd). Postfix must support it (C(postconf -m)).
      - Omitted, the instance's C(default_database_type) is used.
    type: str
    choices: [hash, btree, lmdb, cdb]
  tls_wrappermode:
    description:
      - V(true) speaks TLS from the first byte (SMTPS, C(smtp_tls_wrappermode = yes)), V(false) uses STARTTLS.
      - Omitted, V(true) when O(relay_port) is 465 and V(false) otherwise. V(false) with port 465 is refused.
    type: bool
  tls_verify:
    description:
      - V(true) sets C(smtp_tls_security_level = secure) -- Postfix sends the password only to a relay whose certificate
        is signed by a CA of O(tls_ca_file) and names O(relay_host).
      - V(false) sets C(smtp_tls_security_level = encrypt) -- the connection is encrypted, but anyone who intercepts it
        can present any certificate and receives the SMTP password. The module warns on every run, also with O(probe=true).
      - Before anything changes, the module checks that nothing lowers this level for the relay -- an entry for
        C([relay_host]:relay_port) in C(smtp_tls_policy_maps) (each table queried with C(postmap -q)), or a
        C(-o smtp_tls_security_level) of the C(master.cf) services of C(default_transport) and C(relay_transport)
        (C(postconf -P)). A level below C(secure) (V(true); C(verify), C(fingerprint) and C(dane-only) also verify)
        or below C(encrypt) (V(false)) is an error naming the table entry or service. A table that cannot be queried is an error too.
    type: bool
    default: true
  tls_ca_file:
    description:
      - PEM file on the managed host with the CAs that sign the relay's certificate (C(smtp_tls_CAfile)).
        It must hold at least one C(-----BEGIN CERTIFICATE-----) block, and OpenSSL must be able to load it;
        else the module fails before anything changes. The system CA bundle used by default is checked the same way.
      - Omitted with O(tls_verify=true), the first system CA bundle found is used
        (C(/etc/ssl/certs/ca-certificates.crt), C(/etc/pki/tls/certs/ca-bundle.crt), C(/etc/ssl/ca-bundle.pem),
        C(/etc/ssl/cert.pem)).
      - Omitted with O(tls_verify=false), C(smtp_tls_CAfile) is removed from C(main.cf).
    type: path
  sasl_security_options:
    description:
      - C(smtp_sasl_security_options); one line of option names separated by commas or spaces.
    type: str
    default: noanonymous
  sasl_tls_security_options:
    description:
      - C(smtp_sasl_tls_security_options), the same for TLS sessions.
    type: str
    default: noanonymous
  main_cf_extra:
    description:
      - More C(main.cf) parameters. A string value is set when it differs; a null value removes the key
        (C(postconf -X)). Values are one line. The keys this module sets from its other options are refused.
      - Every key with a value must be a parameter that Postfix knows once the keys are set (C(postconf -c DIR -o KEY=VALUE KEY)
        prints it) -- a built-in one (C(postconf -d) lists them), one of a C(master.cf) service (such as
        C(relay_destination_concurrency_limit)), or one of your own that another parameter or C(master.cf) uses (C($name)).
        An unknown key is an error before anything changes; Postfix would ignore it, and it would be set again on every run.
        A null value removes any key, also an unknown one.
    type: dict
    default: {}
  probe:
    description:
      - V(true) checks the options, C(main.cf), the map type and the CA file, and reports RV(missing_packages);
        it changes nothing (except creating a missing Debian C(/etc/postfix/main.cf)) and needs no credentials.
        When packages are missing it stops checking there, since Postfix may not be installed yet.
    type: bool
    default: false
  check_packages:
    description:
      - Report in RV(missing_packages) which of O(packages) are not installed, plus C(postfix-lmdb) when O(map_type)
        is C(lmdb) and Postfix lacks it.
    type: bool
    default: false
  packages:
    description:
      - The packages Postfix needs here. Omitted, those of the host's package manager
        (dpkg C(postfix), C(libsasl2-modules); rpm C(postfix), C(cyrus-sasl-plain)).
    type: list
    elements: str
notes:
  - Put C(no_log) on the task, since it receives the password. The module's messages and results never hold it.
seealso:
  - module: fjcloud.mail.smtp_user
  - name: Postfix SASL README
    description: SMTP AUTH in the Postfix SMTP client.
    link: https://www.postfix.org/SASL_README.html#client_sasl
'''

EXAMPLES = r'''
- name: Relay through the service with verified TLS (system CA bundle)
  fjcloud.mail.postfix_relay_config:
    relay_host: smtp.example.com
    smtp_user: "{{ vault_smtp_user }}"
    smtp_password: "{{ vault_smtp_password }}"
  register: relay
  no_log: true

- name: Reload Postfix when needed
  ansible.builtin.command: postfix reload
  changed_when: true
  when: relay.reload_needed

- name: Port 465, a private CA, and an extra key removed again
  fjcloud.mail.postfix_relay_config:
    relay_host: smtp.example.com
    relay_port: 465
    tls_wrappermode: true
    tls_ca_file: /etc/ssl/private-ca.pem
    smtp_user: "{{ vault_smtp_user }}"
    smtp_password: "{{ vault_smtp_password }}"
    main_cf_extra:
      smtp_host_lookup: native
      smtp_tls_loglevel: null
  no_log: true
'''

RETURN = r'''
nexthop:
  description: The text of C(relayhost) and of the key of the relay's C(sasl_passwd) line.
  returned: always
  type: str
  sample: "[smtp.example.com]:587"
map_type:
  description: The map type of C(sasl_passwd).
  returned: always
  type: str
  sample: hash
main_cf_set:
  description: The C(main.cf) keys set (or that would be set), with their new values.
  returned: always
  type: dict
  sample: {relayhost: "[smtp.example.com]:587"}
main_cf_removed:
  description: The C(main.cf) keys removed (or that would be removed).
  returned: always
  type: list
  elements: str
  sample: [smtp_tls_CAfile]
sasl_passwd_changed:
  description: Whether the relay's line in C(sasl_passwd) or the file's owner or mode changed (or would).
  returned: always
  type: bool
  sample: true
sasl_passwd_removed:
  description:
    - The keys of the lines the module removed from C(sasl_passwd) (or would remove) -- lines it had written for an
      earlier relay, and lines whose key is the relay's in other letter case, which would shadow the relay's line.
  returned: always
  type: list
  elements: str
  sample: ["[old-relay.example.com]:587"]
index_rebuilt:
  description:
    - Whether the index of C(sasl_passwd) was (or would be) rebuilt with C(postmap), because C(sasl_passwd) changed
      or the index did not answer the relay's key with the wanted credentials (missing, older than C(sasl_passwd),
      broken by a killed C(postmap), or outdated).
  returned: always
  type: bool
  sample: true
stale_files_removed:
  description: The names of the temporary files of an earlier, killed run removed (or that would be removed) from O(config_dir).
  returned: always
  type: list
  elements: str
  sample: [.sasl_passwd.k3j9x0qa, .sasl_passwd.k3j9x0qa.db]
reload_needed:
  description: Whether Postfix must be reloaded for the changes to take effect.
  returned: always
  type: bool
  sample: true
missing_packages:
  description: The packages that are not installed (with O(check_packages)); empty otherwise.
  returned: always
  type: list
  elements: str
  sample: [postfix-lmdb]
package_manager:
  description: C(apt) on hosts with dpkg, C(dnf) with rpm, else empty.
  returned: always
  type: str
  sample: apt
'''

import base64
import binascii
import fcntl
import os
import re
import shutil
import stat
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

try:
    import ssl
except ImportError:  # a Python built without OpenSSL: the PEM structure is still checked
    ssl = None

MARKER = '# managed by fjcloud.mail.postfix_relay'
MASK = '********'
INDEX_SUFFIXES = {'hash': '.db', 'btree': '.db', 'lmdb': '.lmdb', 'cdb': '.cdb'}
# Temporary files of this module in config_dir: .sasl_passwd.XXXXXXXX and its index (.sasl_passwd.XXXXXXXX.db).
TEMP_PREFIX = '.sasl_passwd.'
# A temporary file younger than this may belong to a run that has not locked it yet.
STALE_AFTER = 10
# Whitespace as Postfix's tables read it (C isspace): it ends a key and starts a continuation line.
POSTFIX_SPACE = ' \t\n\v\f\r'
KEY_END = re.compile('[%s]' % POSTFIX_SPACE)
SYSTEM_CA_FILES = ('/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt',
                   '/etc/ssl/ca-bundle.pem', '/etc/ssl/cert.pem')
DEBIAN_MAIN_CF = '/usr/share/postfix/main.cf.debian'
DEFAULT_PACKAGES = {'apt': ['postfix', 'libsasl2-modules'], 'dnf': ['postfix', 'cyrus-sasl-plain']}
OWNED_KEYS = ('relayhost', 'smtp_sasl_auth_enable', 'smtp_sasl_password_maps', 'smtp_sasl_security_options',
              'smtp_sasl_tls_security_options', 'smtp_tls_security_level', 'smtp_tls_wrappermode', 'smtp_tls_CAfile')

HOSTNAME = re.compile(r'^(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
                      r'(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?\Z')
IPV6 = re.compile(r'^(?=.*:)[0-9A-Fa-f:.]{2,45}\Z')
USER = re.compile(r'^[^\s#:][^\s:]*\Z')
PASSWORD = re.compile(r'^[^\s#]\S*\Z')
SASL_OPTIONS = re.compile(r'^([A-Za-z_]+([ ,]+[A-Za-z_]+)*)?\Z')
PARAMETER = re.compile(r'^[A-Za-z][A-Za-z0-9_]*\Z')
ABSOLUTE_PATH = re.compile(r'^/\S*\Z')
PEM_CERTIFICATE = re.compile(r'-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----')
# smtp_tls_security_level values by strength. dane counts as opportunistic (without usable TLSA
# records Postfix falls back to may); the levels ranked 4 verify the relay's identity.
TLS_LEVEL_RANK = {'none': 0, 'may': 1, 'dane': 2, 'encrypt': 3, 'dane-only': 4, 'fingerprint': 4, 'verify': 4, 'secure': 4}
# The main.cf keys naming the transports (master.cf services) that carry mail to relayhost.
RELAY_TRANSPORT_KEYS = ('default_transport', 'relay_transport')


class ConfigError(Exception):
    """A bad option or host state, found before anything changed."""


def validate(params):
    """Check the options that the argument spec cannot; messages name the option, never a secret."""
    host = params['relay_host']
    if not (HOSTNAME.match(host) or IPV6.match(host)):
        raise ConfigError("relay_host must be a host name or IP address without brackets or port; got '%s'." % host)
    if not 1 <= params['relay_port'] <= 65535:
        raise ConfigError("relay_port must be a TCP port number from 1 to 65535; got '%s'." % params['relay_port'])
    if params['smtp_user'] is not None and not USER.match(params['smtp_user']):
        raise ConfigError("smtp_user must not be empty, contain whitespace, line breaks or ':', or start with '#'.")
    if params['smtp_password'] is not None and not PASSWORD.match(params['smtp_password']):
        raise ConfigError("smtp_password must not be empty, contain whitespace or line breaks, or start with '#'.")
    for name in ('sasl_security_options', 'sasl_tls_security_options'):
        if not SASL_OPTIONS.match(params[name]):
            raise ConfigError("%s must be one line of option names (letters and '_') separated by commas or spaces, "
                              "e.g. noanonymous; got %r." % (name, params[name]))
    for name in ('config_dir', 'tls_ca_file'):
        if params[name] is not None and not ABSOLUTE_PATH.match(params[name]):
            raise ConfigError("%s must be an absolute path without whitespace; got %r." % (name, params[name]))
    if params['relay_port'] == 465 and params['tls_wrappermode'] is False:
        raise ConfigError("relay_port 465 speaks TLS from the first byte (SMTPS): tls_wrappermode must be true there "
                          "(omitted, it is true on port 465 and false elsewhere); STARTTLS is for other ports such as 587.")
    for key, value in params['main_cf_extra'].items():
        if not PARAMETER.match(key):
            raise ConfigError("main_cf_extra: %r is not a main.cf parameter name." % key)
        if key in OWNED_KEYS:
            raise ConfigError("main_cf_extra must not hold %s: the module sets it from its own options." % key)
        if value is not None and (not isinstance(value, str) or re.search(r'[\r\n\0]', value)):
            raise ConfigError("main_cf_extra: the value of %s must be a one-line string, or null to remove the key." % key)


def nexthop_of(host, port):
    return '[%s%s]:%d' % ('ipv6:' if ':' in host else '', host, port)


def wrapper_mode(params):
    """smtp_tls_wrappermode: as set, else on for port 465 (SMTPS), as the role does."""
    if params['tls_wrappermode'] is None:
        return params['relay_port'] == 465
    return params['tls_wrappermode']


def tls_level(params):
    """The smtp_tls_security_level the relay needs."""
    return 'secure' if params['tls_verify'] else 'encrypt'


def check_ca_file(path):
    """Refuse a CA file that Postfix could not use: not PEM, no certificate, or one OpenSSL cannot load."""
    try:
        with open(path, 'rb') as handle:
            text = handle.read().decode('ascii', 'replace')
    except (IOError, OSError) as error:
        raise ConfigError('tls_ca_file: %s cannot be read: %s.' % (path, error.strerror or error))
    blocks = PEM_CERTIFICATE.findall(text)
    if not blocks:
        raise ConfigError('tls_ca_file: %s holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block); '
                          'Postfix needs the CA certificates in PEM format.' % path)
    for number, block in enumerate(blocks, 1):
        try:
            base64.b64decode(''.join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError('tls_ca_file: certificate %d of %s is not valid base64 PEM.' % (number, path))
    if ssl is not None:
        try:
            ssl.create_default_context(cafile=path)
        except (ssl.SSLError, ValueError) as error:
            raise ConfigError('tls_ca_file: OpenSSL cannot load the certificates of %s (%s).' % (path, error))


def postconf_overrides(postfix, extra):
    """postconf -o arguments that show main.cf as this run leaves it: the extra keys set, or back at their defaults."""
    values = dict((key, value) for key, value in extra.items() if value is not None)
    removed = [key for key, value in extra.items() if value is None]
    if removed:
        defaults = postfix.values('-d', *removed)
        values.update((key, defaults[key]) for key in removed if key in defaults)
    arguments = []
    for key in sorted(values):
        arguments.extend(['-o', '%s=%s' % (key, values[key])])
    return arguments


def check_known_keys(postfix, extra, planned):
    """Refuse extra keys that Postfix, with them set, does not know.

    postconf prints nothing for a parameter it does not know (a misspelling, or a parameter of
    one's own that nothing uses), so such a key would look missing and be set on every run.
    """
    unknown = sorted(key for key, value in extra.items() if value is not None and key not in planned)
    if unknown:
        raise ConfigError('main_cf_extra: Postfix in %s does not know the parameter(s) %s (postconf: "unknown parameter"), '
                          'so they would be set again on every run. Check the spelling (postconf -d lists the parameters '
                          'Postfix knows); a parameter of your own must be used by another one ($name) or in master.cf; '
                          'set a key to null to remove it.' % (postfix.config_dir, ', '.join(unknown)))


def keys_in_main_cf(path):
    """The parameter names set in a main.cf (a line 'name = value' starting in the first column)."""
    with open(path, 'rb') as handle:
        text = handle.read().decode('utf-8', 'surrogateescape')
    return set(re.findall(r'^([A-Za-z0-9_]+)[ \t]*=', text, re.MULTILINE))


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


def postmap_query(postfix, table, key):
    """Ask Postfix's table for key (postmap -q): (value or None when absent, the error when the table cannot be read)."""
    rc, out, err = postfix.module.run_command(['postmap', '-c', postfix.config_dir, '-q', key, table])
    if rc == 0:
        return (out[:-1] if out.endswith('\n') else out), None
    if rc == 1 and 'fatal:' not in err:
        return None, None
    return None, (err.strip().splitlines() or ['exit code %d' % rc])[-1]


def lookup(postfix, table, key):
    """The value of key in a TLS policy table, or None; a table that cannot be read is an error."""
    if table.startswith('proxy:'):
        table = table[len('proxy:'):]  # proxymap would look up the same table; postmap asks it directly
    value, error = postmap_query(postfix, table, key)
    if error:
        raise ConfigError('smtp_tls_policy_maps: %s cannot be queried (postmap: %s), so the TLS level for %s cannot be '
                          'checked.' % (table, error, key))
    return value.strip() if value is not None else None


def relay_transports(planned):
    """The master.cf services that carry mail to relayhost (default_transport, relay_transport)."""
    names = []
    for key in RELAY_TRANSPORT_KEYS:
        name = planned.get(key, '').split(':', 1)[0].strip()
        if name and name not in names:
            names.append(name)
    return names


def check_tls_level(postfix, nexthop, wanted, planned, overrides):
    """Refuse a policy table entry or master.cf override that lowers the relay's TLS level below the wanted one.

    Per transport, as Postfix decides: an entry for the next hop in smtp_tls_policy_maps wins,
    else the service's -o smtp_tls_security_level, else main.cf's level (the wanted one).
    """
    # Without a master.cf (a configuration directory not yet used by a running instance) no service overrides anything.
    has_master_cf = os.path.isfile(os.path.join(postfix.config_dir, 'master.cf'))
    services = postfix.values('-P', '-x', *overrides) if has_master_cf else {}
    for transport in relay_transports(planned):
        service = '%s/unix' % transport
        level, source = wanted, None
        override = services.get(service + '/smtp_tls_security_level')
        if override is not None:
            level = override or 'none'
            source = 'master.cf (%s/master.cf, service %s: -o smtp_tls_security_level=%s)' % (
                postfix.config_dir, service, override)
        maps = services.get(service + '/smtp_tls_policy_maps', planned.get('smtp_tls_policy_maps', ''))
        for table in map_list(maps):
            entry = lookup(postfix, table, nexthop)
            if entry is not None:
                level = (entry.split() or [''])[0]
                source = 'smtp_tls_policy_maps (%s: %s %s, used by service %s)' % (table, nexthop, entry, service)
                break
        if source and TLS_LEVEL_RANK.get(level.lower(), -1) < TLS_LEVEL_RANK[wanted]:
            raise ConfigError(
                "The TLS security level for the relay %s is lowered to '%s' by %s. %s needs '%s' or stronger (%s), "
                "else Postfix may send the SMTP password over an %s connection: remove that setting or raise its level." % (
                    nexthop, level, source, 'tls_verify=true' if wanted == 'secure' else 'tls_verify=false', wanted,
                    'verify, fingerprint, dane-only' if wanted == 'secure' else 'secure, verify, fingerprint, dane-only',
                    'unverified' if wanted == 'secure' else 'unencrypted'))


def check_planned_config(postfix, params, nexthop):
    """Check main.cf as this run leaves it, before anything changes: every extra key known, the relay's TLS level kept."""
    extra = params['main_cf_extra']
    overrides = postconf_overrides(postfix, extra)
    keys = [key for key, value in extra.items() if value is not None] + ['smtp_tls_policy_maps'] + list(RELAY_TRANSPORT_KEYS)
    planned = postfix.values('-x', *(overrides + keys))
    check_known_keys(postfix, extra, planned)
    check_tls_level(postfix, nexthop, tls_level(params), planned, overrides)


class Postfix:
    """The postconf and postmap commands of one instance."""

    def __init__(self, module, config_dir):
        self.module = module
        self.config_dir = config_dir

    def run(self, *args, **kwargs):
        rc, out, err = self.module.run_command([args[0], '-c', self.config_dir] + list(args[1:]), **kwargs)
        if rc != 0:
            self.module.fail_json(msg='%s failed (exit code %d): %s' % (' '.join(args[:2]), rc, (err or out).strip()))
        return out

    def values(self, *args):
        """``key = value`` lines of postconf as a dict."""
        values = {}
        for line in self.run('postconf', *args).splitlines():
            key, sep, value = line.partition(' =')
            if sep:
                values[key] = value[1:] if value.startswith(' ') else value
        return values


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


def map_lookup(postfix, map_type, path, key):
    """What Postfix's map answers for key, or None: no such key, or no readable index. Never shown."""
    return postmap_query(postfix, '%s:%s' % (map_type, path), key)[0]


def index_answers(postfix, map_type, path, key, value):
    """True when the index of path is not older than path and answers key with value.

    One postmap -q per run: an empty or half-written index (a postmap killed, a full disk)
    fails it whatever its date says, and so do a stale value and a missing index.
    """
    try:
        if os.stat(path + INDEX_SUFFIXES[map_type]).st_mtime < os.stat(path).st_mtime:
            return False
    except OSError:
        return False
    return map_lookup(postfix, map_type, path, key) == value


def install_sasl_passwd(postfix, map_type, path, content, key, value, replace_source):
    """Build the index beside sasl_passwd under a temporary name, check it, then move it (and the file) into place.

    postmap rewrites an index in place: killed, or out of disk space, it leaves a broken index
    that Postfix reads. Built from a temporary copy, the live index is always the previous one or
    the new, checked one. The temporary files are root's, 0600 from creation, and locked while
    this run uses them, so that a later run can tell those of a killed run (stale_temp_files).
    """
    directory = os.path.dirname(path)
    index = path + INDEX_SUFFIXES[map_type]
    descriptor, temp_path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)  # created 0600
    temp_index = temp_path + INDEX_SUFFIXES[map_type]
    try:
        with os.fdopen(descriptor, 'wb') as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            handle.write(content.encode('utf-8', 'surrogateescape'))
            handle.flush()
            os.fchown(handle.fileno(), 0, 0)
            os.fchmod(handle.fileno(), 0o600)
            os.fsync(handle.fileno())
            previous_umask = os.umask(0o077)
            try:
                rc, out, err = postfix.module.run_command(['postmap', '-c', postfix.config_dir, '%s:%s' % (map_type, temp_path)])
            finally:
                os.umask(previous_umask)
            if rc != 0:
                outcome = 'killed by signal %d' % -rc if rc < 0 else 'exit code %d' % rc
                postfix.module.fail_json(msg='postmap could not build the index of %s (%s): %s The previous index '
                                         'is left in place.' % (path, outcome, (err or out).strip() or 'no message.'))
            if map_lookup(postfix, map_type, temp_path, key) != value:
                postfix.module.fail_json(msg="postmap built an index of %s that does not answer %s with the relay's "
                                         "credentials; the previous index is left in place." % (path, key))
            os.chown(temp_index, 0, 0)
            os.chmod(temp_index, 0o600)
            sync_path(temp_index)
            os.replace(temp_index, index)  # the index first: Postfix reads only the index
            if replace_source:
                os.replace(temp_path, path)
        sync_path(directory)
    finally:
        remove_files(directory, [name for name in os.listdir(directory)
                                 if name == os.path.basename(temp_path) or name.startswith(os.path.basename(temp_path) + '.')])


def sync_path(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def stale_temp_files(directory, now):
    """The names of this module's temporary files in directory that a killed run left behind.

    Those are root's regular files named TEMP_PREFIX..., older than STALE_AFTER seconds, whose
    temporary sasl_passwd no live run holds locked (a run locks it right after creating it,
    and holds the lock until its files are renamed or removed).
    """
    stale = []
    for name in sorted(os.listdir(directory)):
        if not name.startswith(TEMP_PREFIX):
            continue
        try:
            status = os.lstat(os.path.join(directory, name))
        except OSError:
            continue
        if not stat.S_ISREG(status.st_mode) or status.st_uid != 0 or now - status.st_mtime < STALE_AFTER:
            continue
        source = TEMP_PREFIX + name[len(TEMP_PREFIX):].split('.', 1)[0]  # .sasl_passwd.XXXX of .sasl_passwd.XXXX.db
        if not locked(os.path.join(directory, source)):
            stale.append(name)
    return stale


def locked(path):
    """True when another process holds a lock on path (a regular file)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return False
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # EWOULDBLOCK: held by a live run; ENOLCK (NFS): cannot tell, so leave the file be
        return True
    finally:
        os.close(descriptor)
    return False


def remove_files(directory, names):
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # removed meanwhile, by another run


def root_only(path):
    """True when path is root's, mode 0600 (a missing file is nobody's business)."""
    if not os.path.exists(path):
        return True
    status = os.stat(path)
    return status.st_uid == 0 and status.st_gid == 0 and status.st_mode & 0o7777 == 0o600


def package_manager(module):
    if module.get_bin_path('dpkg-query'):
        return 'apt'
    if module.get_bin_path('rpm'):
        return 'dnf'
    return ''


def missing_packages(module, manager, names):
    """The packages of ``names`` that the package database does not list as installed."""
    if manager == 'apt':
        dummy_rc, out, dummy_err = module.run_command(['dpkg-query', '-W', '-f', '${Package} ${db:Status-Status}\\n'] + names)
        installed = set(line.split()[0] for line in out.splitlines() if line.endswith(' installed'))
    elif manager == 'dnf':
        dummy_rc, out, dummy_err = module.run_command(['rpm', '-q', '--qf', '%{NAME}\\n'] + names)
        installed = set(line.strip() for line in out.splitlines() if ' ' not in line.strip())
    else:
        return []
    return [name for name in names if name not in installed]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config_dir=dict(type='path', default='/etc/postfix'),
            relay_host=dict(type='str', required=True),
            relay_port=dict(type='int', default=587),
            smtp_user=dict(type='str'),
            smtp_password=dict(type='str', no_log=True),
            map_type=dict(type='str', choices=sorted(INDEX_SUFFIXES)),
            tls_wrappermode=dict(type='bool'),
            tls_verify=dict(type='bool', default=True),
            tls_ca_file=dict(type='path'),
            sasl_security_options=dict(type='str', default='noanonymous'),
            sasl_tls_security_options=dict(type='str', default='noanonymous'),
            main_cf_extra=dict(type='dict', default={}),
            probe=dict(type='bool', default=False),
            check_packages=dict(type='bool', default=False),
            packages=dict(type='list', elements='str'),
        ),
        required_together=[('smtp_user', 'smtp_password')],
        supports_check_mode=True,
    )
    params = module.params
    try:
        validate(params)
    except ConfigError as error:
        module.fail_json(msg=str(error))

    config_dir = params['config_dir'].rstrip('/') or '/'
    manager = package_manager(module)
    missing = []
    if params['check_packages']:
        missing = missing_packages(module, manager, params['packages'] or DEFAULT_PACKAGES.get(manager, ['postfix']))
    if missing and params['probe']:
        module.exit_json(changed=False, missing_packages=missing, package_manager=manager)

    main_cf = os.path.join(config_dir, 'main.cf')
    created_main_cf = False
    if not os.path.isfile(main_cf) and config_dir == '/etc/postfix' and os.path.isfile(DEBIAN_MAIN_CF):
        # Postfix installed with "No configuration": start from Debian's template, as its installer would.
        created_main_cf = True
        if module.check_mode:
            module.exit_json(changed=True, msg='%s would be created from %s.' % (main_cf, DEBIAN_MAIN_CF),
                             missing_packages=missing, package_manager=manager)
        shutil.copyfile(DEBIAN_MAIN_CF, main_cf)
        os.chmod(main_cf, 0o644)
    if not os.path.isfile(main_cf):
        module.fail_json(msg='%s/main.cf does not exist: config_dir must be the directory of a Postfix instance.' % config_dir)
    postfix = Postfix(module, config_dir)

    # Read the host: the values of the keys to manage, and the map types Postfix supports.
    wanted_keys = list(OWNED_KEYS) + list(params['main_cf_extra'])
    effective = postfix.values(*(wanted_keys + ['default_database_type']))
    map_type = params['map_type'] or effective.get('default_database_type', '')
    sasl_passwd = os.path.join(config_dir, 'sasl_passwd')
    # postconf -m takes a fifth of a second: a map type that Postfix already uses, with its
    # index in place, needs no second look outside a probe (the role probes every run).
    in_use = map_type in INDEX_SUFFIXES and effective.get('smtp_sasl_password_maps') == '%s:%s' % (map_type, sasl_passwd) \
        and os.path.exists(sasl_passwd + INDEX_SUFFIXES[map_type])
    supported = [map_type] if in_use and not params['probe'] else postfix.run('postconf', '-m').split()
    if params['check_packages'] and map_type == 'lmdb' and 'lmdb' not in supported:
        missing.append('postfix-lmdb')
        if params['probe']:
            module.exit_json(changed=created_main_cf, missing_packages=missing, package_manager=manager)
    if map_type not in INDEX_SUFFIXES or map_type not in supported:
        module.fail_json(msg="The map type '%s' (%s) cannot be used: this module supports %s, and Postfix in %s supports %s. "
                         "Install the map type's package (e.g. postfix-lmdb) or choose another map type." % (
                             map_type, 'map_type' if params['map_type'] else 'default_database_type',
                             ', '.join(sorted(INDEX_SUFFIXES)), config_dir, ', '.join(supported)))

    ca_file = params['tls_ca_file']
    if ca_file is None and params['tls_verify']:
        ca_file = next((path for path in SYSTEM_CA_FILES if os.path.isfile(path)), None)
        if ca_file is None:
            module.fail_json(msg='tls_verify needs trust anchors: no system CA bundle found (%s); set tls_ca_file.'
                             % ', '.join(SYSTEM_CA_FILES))
    if ca_file is not None and not os.path.isfile(ca_file):
        module.fail_json(msg='tls_ca_file: %s is not a file on this host.' % ca_file)

    nexthop = nexthop_of(params['relay_host'], params['relay_port'])
    try:
        if ca_file is not None:
            check_ca_file(ca_file)
        check_planned_config(postfix, params, nexthop)
    except ConfigError as error:
        module.fail_json(msg=str(error))
    if not params['tls_verify']:
        # The one place of this warning: the role's probe and configuration tasks run this module.
        module.warn('tls_verify is false (postfix_relay_tls_verify in the role): Postfix does not verify the certificate '
                    'of %s, so anyone who intercepts the connection can present any certificate and receives the SMTP '
                    'password. Set it to true (the default).' % nexthop)
    if params['probe']:
        module.exit_json(changed=created_main_cf, nexthop=nexthop, map_type=map_type, missing_packages=missing,
                         package_manager=manager)
    explicit = postfix.values('-n')
    index = sasl_passwd + INDEX_SUFFIXES[map_type]

    wanted = {
        'relayhost': nexthop,
        'smtp_sasl_auth_enable': 'yes',
        'smtp_sasl_password_maps': '%s:%s' % (map_type, sasl_passwd),
        'smtp_sasl_security_options': params['sasl_security_options'],
        'smtp_sasl_tls_security_options': params['sasl_tls_security_options'],
        'smtp_tls_security_level': tls_level(params),
        'smtp_tls_wrappermode': 'yes' if wrapper_mode(params) else 'no',
        'smtp_tls_CAfile': ca_file,
    }
    wanted.update(params['main_cf_extra'])
    to_set = dict((key, value) for key, value in wanted.items() if value is not None and effective.get(key) != value)
    # postconf -n leaves out parameters that Postfix does not know: those are found in main.cf itself.
    in_main_cf = set(explicit) | keys_in_main_cf(main_cf)
    to_remove = sorted(key for key, value in wanted.items() if value is None and key in in_main_cf)

    # sasl_passwd: the plan, from what is there now.
    result = dict(changed=False, nexthop=nexthop, map_type=map_type, main_cf_set=to_set, main_cf_removed=to_remove,
                  sasl_passwd_changed=False, sasl_passwd_removed=[], index_rebuilt=False, reload_needed=False,
                  stale_files_removed=stale_temp_files(config_dir, time.time()),
                  missing_packages=missing, package_manager=manager)
    diffs = []
    new_text = planned = value = None
    index_fix = False
    if params['smtp_user'] is not None:
        old_text = ''
        if os.path.exists(sasl_passwd):
            with open(sasl_passwd, 'rb') as handle:
                old_text = handle.read().decode('utf-8', 'surrogateescape')
        value = '%s:%s' % (params['smtp_user'], params['smtp_password'])
        planned, result['sasl_passwd_removed'] = sasl_plan(old_text, nexthop, '%s %s' % (nexthop, value))
        if planned != old_text:
            new_text = planned
            before, after = masked(old_text), masked(planned)
            if before == after:
                after += '# (the credentials change)\n'
            diffs.append(dict(before_header=sasl_passwd, after_header=sasl_passwd, before=before, after=after))
        result['sasl_passwd_changed'] = new_text is not None or not root_only(sasl_passwd)
        # Checked on every run: whatever left the index missing, stale or broken, it is rebuilt.
        result['index_rebuilt'] = (new_text is not None or 'smtp_sasl_password_maps' in to_set
                                   or not index_answers(postfix, map_type, sasl_passwd, nexthop, value))
        index_fix = os.path.exists(index) and not root_only(index)
    if to_set or to_remove:
        keys = sorted(set(to_set) | set(to_remove))
        diffs.append(dict(
            before_header='%s/main.cf' % config_dir, after_header='%s/main.cf' % config_dir,
            before=''.join('%s = %s\n' % (key, effective[key]) for key in keys if key in effective),
            after=''.join('%s = %s\n' % (key, to_set[key]) for key in keys if key in to_set)))

    result['reload_needed'] = bool(to_set or to_remove or result['sasl_passwd_changed'] or result['index_rebuilt'])
    result['changed'] = result['reload_needed'] or index_fix or created_main_cf or bool(result['stale_files_removed'])
    if module._diff and diffs:
        result['diff'] = diffs
    if module.check_mode or not result['changed']:
        module.exit_json(**result)

    # Apply: sasl_passwd and its index first, so that main.cf never points at a missing index.
    remove_files(config_dir, result['stale_files_removed'])
    if result['index_rebuilt']:
        install_sasl_passwd(postfix, map_type, sasl_passwd, planned, nexthop, value, replace_source=new_text is not None)
    if result['sasl_passwd_changed'] and new_text is None:
        os.chown(sasl_passwd, 0, 0)
        os.chmod(sasl_passwd, 0o600)
    if os.path.exists(index) and not root_only(index):
        os.chown(index, 0, 0)
        os.chmod(index, 0o600)
    if to_set:
        postfix.run('postconf', '-e', *['%s=%s' % item for item in sorted(to_set.items())])
    if to_remove:
        postfix.run('postconf', '-X', *to_remove)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
