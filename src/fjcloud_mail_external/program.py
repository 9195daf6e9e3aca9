# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Terraform ``external`` data source protocol, for read-only data of the mail service.

Terraform runs the program on every refresh and plan, writes its ``query`` (a
JSON object of strings) to stdin, and reads one JSON object of strings from
stdout; on failure it shows stderr. So:

* success: one JSON object of strings on stdout, exit 0 (warnings may go to stderr);
* failure: exactly one line on stderr, nothing on stdout, exit 2 for a bad query or
  bad settings, 1 when the service or the network failed;
* no side effects: only the read actions in :data:`READ_ACTIONS` can be called
  (:class:`ReadOnlyClient` refuses any other before a request is made).

The connection settings are those of the modules: the same ``OS_*`` environment
variables, the same options (as query keys), checked by the same
``ConnectionSettings``, with the same client, pacing, state directory and login
guard. Secrets come only from the environment: the query lands in Terraform's
plan and state in plain text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import sys

from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.connection import AUTH_KEYS, DEFAULTS, ENV_FALLBACKS, ConnectionSettings
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.identities import describe, verification_attributes
from ansible_collections.fjcloud.mail.plugins.module_utils.quota import get_send_quota
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import HAS_LXML
from ansible_collections.fjcloud.mail.plugins.module_utils.addresses import address_problem, domain_problem
from ansible_collections.fjcloud.mail.plugins.module_utils.smtp_user import get_smtp_user
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import HAS_REQUESTS
from fjcloud_mail_external import __version__

PROG = 'fjcloud-mail-external'
# The only mail API actions this program may call: none of them changes anything.
READ_ACTIONS = frozenset(('GetSMTPUserInfo', 'GetIdentityVerificationAttributes', 'GetSendQuota'))
DATA_KINDS = ('smtp_user', 'identity', 'send_quota')
# Query keys that only one data kind uses.
DATA_KEYS = {'include_password': 'smtp_user', 'identity': 'identity'}
# The connection options a query may set; the secrets (password, auth_token) are not among them.
CONNECTION_KEYS = ('auth_url', 'username', 'user_domain_name', 'project_id', 'project_name', 'project_domain_name',
                   'region_name', 'endpoint', 'ca_cert', 'validate_certs', 'allow_http', 'api_timeout', 'retries')
SECRET_KEYS = {'password': 'OS_PASSWORD', 'auth_token': 'OS_TOKEN'}
QUERY_KEYS = ('data',) + tuple(sorted(DATA_KEYS)) + CONNECTION_KEYS
BOOLEAN_KEYS = ('validate_certs', 'allow_http', 'include_password')
INTEGER_KEYS = ('api_timeout', 'retries')
# The strings Ansible takes for a boolean option.
TRUE_STRINGS = ('true', 'yes', 'on', '1', 't', 'y')
FALSE_STRINGS = ('false', 'no', 'off', '0', 'f', 'n')
BAD_QUERY, FAILED = 2, 1
HELP = '''usage: %(prog)s [--help] [--version]

Read-only data of the FUJITSU K5 Email Delivery Service for Terraform's "external"
data source: reads one JSON object of strings (the query) on stdin, writes one JSON
object of strings on stdout.

query keys:
  data              %(kinds)s
  identity          the address or domain (data "identity")
  include_password  also return the SMTP password (data "smtp_user")
  connection        %(connection)s
                    (as the modules' options; unset ones come from OS_* and FJCLOUD_MAIL_*)

secrets come only from the environment: OS_PASSWORD or OS_TOKEN.
exit status: 0 success, 2 bad query or settings, 1 service or network failure
(one line on stderr).

options:
  -h, --help        show this help and exit
  --version         show the version (the collection's) and exit
'''


def command_line(argv, stdout, stderr):
    """Answer ``--help`` and ``--version``; None when there is no option and the query is to be read."""
    if not argv:
        return None
    if argv in (['--help'], ['-h']):
        stdout.write(HELP % dict(prog=PROG, kinds=', '.join(DATA_KINDS), connection=', '.join(CONNECTION_KEYS)))
        return 0
    if argv == ['--version']:
        stdout.write('%s %s\n' % (PROG, __version__))
        return 0
    stderr.write('%s: takes no arguments but --help or --version: the query comes on stdin (see --help)\n' % PROG)
    return BAD_QUERY


class UsageError(Exception):
    """A bad query or bad settings: nothing was sent."""


class ReadOnlyClient(K5MailClient):
    """The collection's client, limited to :data:`READ_ACTIONS`."""

    def call(self, action, params=None, accept=(), idempotent=True):
        if action not in READ_ACTIONS:
            raise K5MailError(action, 'not sent: %s only reads, and %s is not a read action' % (PROG, action))
        return super(ReadOnlyClient, self).call(action, params, accept=accept, idempotent=idempotent)


class ExternalSettings(ConnectionSettings):
    """The modules' checks, with the names a Terraform user writes."""

    URL_OPTION_NAMES = {'endpoint': 'endpoint (FJCLOUD_MAIL_ENDPOINT)', 'auth_url': 'auth_url (OS_AUTH_URL)'}
    client_class = ReadOnlyClient


def _shown(text):
    """A query value or key fit for a message: bounded, quoted, control characters escaped."""
    return repr(text if len(text) <= 100 else text[:100] + '...')


def _type_name(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, dict):
        return 'an object'
    return type(value).__name__


def _no_duplicates(pairs):
    keys = [key for key, _value in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise UsageError('the query has the key %s twice' % _shown(key))
    return dict(pairs)


def read_query(text):
    """The query as a dict of non-empty strings; raise UsageError for anything Terraform would not send."""
    if not text.strip():
        raise UsageError('no query on stdin: expected one JSON object of strings such as {"data": "smtp_user"}')
    try:
        query = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise UsageError('the query on stdin is not JSON: %s' % exc)
    if not isinstance(query, dict):
        raise UsageError('the query must be a JSON object of strings, got %s' % _type_name(query))
    for key, value in query.items():
        if not isinstance(value, str):
            raise UsageError("query key %s must be a string (Terraform's query is a map of strings), got %s"
                             % (_shown(key), _type_name(value)))
    for key in query:
        if key in SECRET_KEYS:
            raise UsageError('%s must not be in the query: Terraform keeps the query in its plan and state in plain '
                             'text; set %s in the environment of terraform instead' % (key, SECRET_KEYS[key]))
        if key not in QUERY_KEYS:
            raise UsageError('unknown query key %s: the keys are %s' % (_shown(key), ', '.join(QUERY_KEYS)))
    # An empty string stands for "not set", so that a Terraform variable may default to "".
    return dict((key, value) for key, value in query.items() if value != '')


def _boolean(key, text):
    if text.lower() in TRUE_STRINGS:
        return True
    if text.lower() in FALSE_STRINGS:
        return False
    raise UsageError('%s must be "true" or "false", got %s' % (key, _shown(text)))


def _integer(key, text):
    if not re.match(r'^-?[0-9]+\Z', text.strip()):
        raise UsageError('%s must be a whole number, got %s' % (key, _shown(text)))
    return int(text)


def _from_env(option, environ):
    for name in ENV_FALLBACKS.get(option, ()):
        if environ.get(name):
            return environ[name]
    return None


def connection_params(query, environ):
    """The modules' parameters: query keys first, then the environment variables the modules read."""
    values = {}
    for option in CONNECTION_KEYS + tuple(SECRET_KEYS):
        value = query.get(option)
        if value is None:
            value = _from_env(option, environ)
        values[option] = value
    for key in BOOLEAN_KEYS:
        if values.get(key) is not None:
            values[key] = _boolean(key, values[key])
    for key in INTEGER_KEYS:
        if values[key] is not None:
            values[key] = _integer(key, values[key])
    if values['ca_cert']:
        values['ca_cert'] = os.path.expanduser(os.path.expandvars(values['ca_cert']))  # as type=path does
    params = dict((key, value) for key, value in values.items() if key not in AUTH_KEYS)
    params['auth'] = dict((key, values[key]) for key in AUTH_KEYS)
    for key, default in DEFAULTS.items():  # the modules' defaults
        if params[key] is None:
            params[key] = default
    if not params['auth_token'] and not params['auth']['password']:
        raise UsageError('OS_PASSWORD is not set: give the Keystone password in the environment (OS_PASSWORD with '
                         'OS_USERNAME, OS_USER_DOMAIN_NAME and OS_PROJECT_ID or OS_PROJECT_NAME), or a token in '
                         'OS_TOKEN; never in the query, which Terraform stores in plain text')
    return params


def check_data(query):
    """The data kind and its arguments; raise UsageError when the query does not say one clearly."""
    kind = query.get('data')
    if kind is None:
        raise UsageError('the query has no data key: give data = %s' % ' | '.join(DATA_KINDS))
    if kind not in DATA_KINDS:
        raise UsageError('data %s is not one of %s' % (_shown(kind), ', '.join(DATA_KINDS)))
    for key, owner in sorted(DATA_KEYS.items()):
        if key in query and owner != kind:
            raise UsageError('query key %s is only used with data = %s, not with data = %s' % (key, owner, kind))
    if 'include_password' in query:
        _boolean('include_password', query['include_password'])  # refused before any request
    if kind == 'identity':
        identity = query.get('identity')
        if identity is None:
            raise UsageError('data = identity needs the identity key: an email address or a domain')
        problem = address_problem(identity) if '@' in identity else domain_problem(identity)
        if problem:
            raise UsageError('identity %s is not valid: %s' % (_shown(identity), problem))
    return kind


def read_smtp_user(client, query):
    credentials = get_smtp_user(client)
    result = {'exists': 'true' if credentials else 'false', 'smtp_user': credentials.user if credentials else ''}
    if _boolean('include_password', query.get('include_password', 'false')):
        result['smtp_password'] = credentials.password if credentials else ''
    return result


def read_identity(client, query):
    identity = query['identity']
    attributes = verification_attributes(client, [identity]).get(identity)
    view = describe(identity, attributes)
    record = view.get('dns_record') or {}
    return {
        'identity': identity,
        'identity_type': view['identity_type'],
        'exists': 'true' if attributes is not None else 'false',
        'verification_status': view['verification_status'] or '',
        'verification_token': view.get('verification_token') or '',
        'dns_record_name': record.get('name', ''),
        'dns_record_type': record.get('type', ''),
        'dns_record_value': record.get('value', ''),
    }


def read_send_quota(client, _query):
    return dict((key, '' if value is None else repr(value)) for key, value in get_send_quota(client).items())


READERS = {'smtp_user': read_smtp_user, 'identity': read_identity, 'send_quota': read_send_quota}


def run(stdin_text, environ):
    """Return ``(result dict of strings, warnings)``; raise UsageError or K5MailError."""
    query = read_query(stdin_text)
    kind = check_data(query)
    params = connection_params(query, environ)
    settings = ExternalSettings(params)
    if settings.errors:
        # The messages never quote user info; masking what the settings found is the second line of defence.
        raise UsageError(one_line('; '.join(settings.errors), settings.secrets))
    return READERS[kind](settings.client(), query), [one_line(warning, settings.secrets) for warning in settings.warnings]


def one_line(text, secrets):
    """``text`` as a single line without any of ``secrets``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, '********')
    return ' '.join(text.split())


def main(stdin=None, stdout=None, stderr=None, environ=None, argv=None):
    """Console script entry point; returns the exit status."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    status = command_line(sys.argv[1:] if argv is None else list(argv), stdout, stderr)
    if status is not None:
        return status
    environ = os.environ if environ is None else environ
    secrets = [environ.get(name) for names in (ENV_FALLBACKS['password'], ENV_FALLBACKS['auth_token']) for name in names]
    missing = [name for name, present in (('requests', HAS_REQUESTS), ('lxml', HAS_LXML)) if not present]
    try:
        if missing:
            raise UsageError('the Python libraries %s are missing: pip install %s' % (', '.join(missing), ' '.join(missing)))
        try:
            text = stdin.read()
        except UnicodeDecodeError as exc:
            raise UsageError('the query on stdin is not UTF-8: %s' % exc)
        result, warnings = run(text, environ)
    except UsageError as exc:
        stderr.write('%s: %s\n' % (PROG, one_line(str(exc), secrets)))
        return BAD_QUERY
    except K5MailError as exc:
        stderr.write('%s: %s\n' % (PROG, one_line(str(exc), secrets)))
        return FAILED
    except Exception as exc:  # pylint: disable=broad-exception-caught; the protocol allows one line, not a traceback
        stderr.write('%s: unexpected %s: %s\n' % (PROG, type(exc).__name__, one_line(str(exc), secrets)))
        return FAILED
    for warning in warnings:
        stderr.write('%s: warning: %s\n' % (PROG, one_line(warning, secrets)))
    stdout.write(json.dumps(result, sort_keys=True) + '\n')
    return 0
