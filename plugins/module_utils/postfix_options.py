# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The options of postfix_relay_config: the one place where their shapes are checked, and
what follows from them (the next hop, wrapper mode, the TLS level, the keys of main.cf).

The postfix_relay role has no checks of its own for these options: the module's action
plugin checks them on the controller (``validate_only: true``) before the API call, and the
module again on the host; the role passes its variable names in ``option_names`` so that
every message names what the role's user set. Standard library only: this runs on the
managed hosts too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# The map types the module can build an index for, and the suffix of that index.
INDEX_SUFFIXES = {'hash': '.db', 'btree': '.db', 'lmdb': '.lmdb', 'cdb': '.cdb'}
# The main.cf keys set from the module's own options (smtp_tls_CAfile removed without a CA file).
OWNED_KEYS = ('relayhost', 'smtp_sasl_auth_enable', 'smtp_sasl_password_maps', 'smtp_sasl_security_options',
              'smtp_sasl_tls_security_options', 'smtp_tls_security_level', 'smtp_tls_wrappermode', 'smtp_tls_CAfile')

HOSTNAME = re.compile(r'^(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
                      r'(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?\Z')
IPV6 = re.compile(r'^(?=.*:)[0-9A-Fa-f:.]{2,45}\Z')
# sasl_passwd holds "[host]:port user:password" on one line: no whitespace, no ':' in the user, no leading '#'.
USER = re.compile(r'^[^\s#:][^\s:]*\Z')
PASSWORD = re.compile(r'^[^\s#]\S*\Z')
SASL_OPTIONS = re.compile(r'^([A-Za-z_]+([ ,]+[A-Za-z_]+)*)?\Z')
PARAMETER = re.compile(r'^[A-Za-z][A-Za-z0-9_]*\Z')
ABSOLUTE_PATH = re.compile(r'^/\S*\Z')
# What ends a main.cf line (or the C string postconf gets).
LINE_END = re.compile('[\r\n\0]')
SMTPS_PORT = 465


# postfix_relay_config's options: the module checks them on the host, its action plugin on the controller.
ARGUMENT_SPEC = dict(
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
    validate_only=dict(type='bool', default=False),
    check_packages=dict(type='bool', default=False),
    packages=dict(type='list', elements='str'),
    pending_marker=dict(type='path'),
    option_names=dict(type='dict', default={}),
)


class PostfixRelayError(Exception):
    """A bad option, host state or command outcome; its text names what to fix and never holds a secret."""


class OptionNames:
    """How messages name an option: as the caller knows it (the role's variable), else by its own name."""

    def __init__(self, names=None):
        self.names = names or {}

    def __call__(self, option):
        return self.names.get(option, option)


def problems_text(problems):
    """One line for one or more problems, each a sentence of its own."""
    if len(problems) == 1:
        return problems[0]
    return '%d problems: %s' % (len(problems), ' '.join('(%d) %s' % item for item in enumerate(problems, 1)))


def validate(params, name=OptionNames()):
    """Every problem of the options that the argument spec cannot see, one sentence each.

    Each names its option with ``name``; none shows a credential.
    """
    problems = []
    host = params['relay_host']
    if not (HOSTNAME.match(host) or IPV6.match(host)):
        problems.append("%s must be the relay's host name or IP address alone, without brackets or port "
                        "(e.g. smtp.example.com, 192.0.2.25 or 2001:db8::25); got %r." % (name('relay_host'), host))
    port = params['relay_port']
    if not 1 <= port <= 65535:
        problems.append('%s must be a TCP port number from 1 to 65535; got %d.' % (name('relay_port'), port))
    elif port == SMTPS_PORT and params['tls_wrappermode'] is False:
        problems.append('%s 465 speaks TLS from the first byte (SMTPS): %s must be true there (omitted, it is true on '
                        'port 465 and false elsewhere); STARTTLS is for other ports such as 587.'
                        % (name('relay_port'), name('tls_wrappermode')))
    problems.extend(credential_problems(params, name))
    for option in ('sasl_security_options', 'sasl_tls_security_options'):
        if not SASL_OPTIONS.match(params[option]):
            problems.append("%s must be one line of SASL security option names (letters and '_') separated by commas "
                            "or spaces, e.g. noanonymous; got %r." % (name(option), params[option]))
    for option in ('config_dir', 'tls_ca_file', 'pending_marker'):
        path = params.get(option)  # pending_marker: set by callers that track reloads
        if path is not None and not ABSOLUTE_PATH.match(path):
            problems.append('%s must be an absolute path without whitespace; got %r.' % (name(option), path))
    problems.extend(main_cf_extra_problems(params['main_cf_extra'], name('main_cf_extra')))
    return problems


def credential_problems(params, name):
    """Both or neither, and each fit for its place in "[host]:port user:password"; never shows a value."""
    user, password = params['smtp_user'], params['smtp_password']
    if (user is None) != (password is None):
        return ['Set both %s and %s, or neither of them.' % (name('smtp_user'), name('smtp_password'))]
    problems = []
    if user is not None and not USER.match(user):
        problems.append("%s must not be empty, contain whitespace, line breaks or ':', or start with '#'." % name('smtp_user'))
    if password is not None and not PASSWORD.match(password):
        problems.append("%s must not be empty, contain whitespace or line breaks, or start with '#'." % name('smtp_password'))
    return problems


def main_cf_extra_problems(extra, option):
    """main_cf_extra maps parameter names to one-line strings, or to null; the owned keys are refused."""
    problems = []
    for key in sorted(extra, key=str):
        value = extra[key]
        if not isinstance(key, str) or not PARAMETER.match(key):
            problems.append('%s: %r is not a main.cf parameter name.' % (option, key))
        elif key in OWNED_KEYS:
            problems.append('%s must not hold %s: it is set from the relay options (%s).'
                            % (option, key, ', '.join(OWNED_KEYS)))
        elif value is not None and (not isinstance(value, str) or LINE_END.search(value)):
            problems.append('%s: the value of %s must be a one-line string (quote yes, no and numbers), or null to '
                            'remove the key.' % (option, key))
    return problems


def nexthop_of(host, port):
    """The text of relayhost and of the sasl_passwd key: [host]:port, [ipv6:address]:port."""
    return '[%s%s]:%d' % ('ipv6:' if ':' in host else '', host, port)


def wrapper_mode(params):
    """smtp_tls_wrappermode: as set, else on for port 465 (SMTPS)."""
    if params['tls_wrappermode'] is None:
        return params['relay_port'] == SMTPS_PORT
    return params['tls_wrappermode']


def tls_level(params):
    """The smtp_tls_security_level the relay needs."""
    return 'secure' if params['tls_verify'] else 'encrypt'


def tls_opt_out_warning(params, name, nexthop):
    """The one text of the warning every run with tls_verify false gives."""
    return ('%s is false: Postfix does not verify the certificate of %s, so anyone who intercepts the connection can '
            'present any certificate and receives the SMTP password. Set it to true (the default).'
            % (name('tls_verify'), nexthop))


def wanted_main_cf(params, nexthop, map_type, sasl_passwd, ca_file):
    """The main.cf keys this run manages and their values; None means the key is removed."""
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
    return wanted
