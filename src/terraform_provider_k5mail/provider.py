# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider ``fjcloud/k5mail``: its configuration, and the one client of a provider process.

The provider block takes the modules' connection options under the same names,
each falling back to the same environment variable (``OS_*``,
``FJCLOUD_MAIL_ENDPOINT``), and checks them with the modules' own
``ConnectionSettings`` before any request. One provider process builds one
client: one login (made at the first call), one token, the shared pacing and
login guard. Terraform calls a provider from several threads at once, so the
:class:`Session` makes one call at a time and reads the SMTP user and the
identities once per process for every resource that asks (see ``Session``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import functools
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from tf import runner
from tf.iface import Provider
from tf.schema import Attribute, Schema
from tf.types import Bool, Number, String, Unknown

from ansible_collections.fjcloud.mail.plugins.module_utils.connection import AUTH_KEYS, DEFAULTS, ENV_FALLBACKS, ConnectionSettings
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.identities import list_identities, verification_attributes
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import KeystonePassword
from ansible_collections.fjcloud.mail.plugins.module_utils.smtp_user import get_smtp_user
from fjcloud_mail_external.program import one_line
from terraform_provider_k5mail.mirror import PROG, PROVIDER_SOURCE

MODEL_PREFIX = 'k5mail_'
# The mail API actions that change nothing: the only ones a refresh, a plan, a data source or an import may call.
READ_ACTIONS = frozenset(('GetSMTPUserInfo', 'GetIdentityVerificationAttributes', 'ListIdentities', 'GetSendQuota'))
# The provider block: the modules' connection options, with their types and descriptions.
STRING_OPTIONS = {
    'auth_url': 'Keystone v3 URL (default: that of region_name). Env: OS_AUTH_URL.',
    'username': 'Keystone user name. Env: OS_USERNAME.',
    'password': 'Keystone password (sensitive). Env: OS_PASSWORD.',
    'user_domain_name': 'The contract number, the user\'s Keystone domain. Env: OS_USER_DOMAIN_NAME.',
    'project_id': 'Project id of the token. Env: OS_PROJECT_ID.',
    'project_name': 'Project name of the token, instead of project_id. Env: OS_PROJECT_NAME.',
    'project_domain_name': 'Domain of project_name (default: user_domain_name). Env: OS_PROJECT_DOMAIN_NAME.',
    'auth_token': 'A Keystone token to use instead of the password (sensitive). Env: OS_TOKEN or OS_AUTH_TOKEN.',
    'region_name': 'Region of the default URLs (default: jp-east-1). Env: OS_REGION_NAME.',
    'endpoint': 'Mail API URL (default: https://mail.<region_name>.cloud.global.fujitsu.com). Env: FJCLOUD_MAIL_ENDPOINT.',
    'ca_cert': 'CA bundle that verifies the mail API and Keystone. Env: OS_CACERT.',
}
BOOL_OPTIONS = {
    'validate_certs': 'Verify TLS certificates (default: true).',
    'allow_http': 'Accept http:// URLs, for a local emulator only (default: false).',
}
NUMBER_OPTIONS = {
    'api_timeout': 'Seconds to wait for each reply (default: %d).' % DEFAULTS['api_timeout'],
    'retries': 'Repeats of a call that failed in a way that is safe to repeat (default: %d).' % DEFAULTS['retries'],
}
SENSITIVE_OPTIONS = ('password', 'auth_token')
OPTIONS = tuple(STRING_OPTIONS) + tuple(BOOL_OPTIONS) + tuple(NUMBER_OPTIONS)


def provider_schema():
    attributes = [Attribute(name, String(), description=text, optional=True, sensitive=name in SENSITIVE_OPTIONS)
                  for name, text in STRING_OPTIONS.items()]
    attributes += [Attribute(name, Bool(), description=text, optional=True) for name, text in BOOL_OPTIONS.items()]
    attributes += [Attribute(name, Number(), description=text, optional=True) for name, text in NUMBER_OPTIONS.items()]
    return Schema(attributes=attributes, description='The FUJITSU K5 Email Delivery Service (fjcloud.mail).')


def whole_number_problems(config):
    """``[(option, message)]`` for the number options that are set but not whole numbers."""
    problems = []
    for name in NUMBER_OPTIONS:
        value = config.get(name)
        if value is None or value is Unknown:
            continue
        if isinstance(value, float) and not value.is_integer():
            problems.append((name, '%s must be a whole number, got %r' % (name, value)))
    return problems


def connection_params(config, environ):
    """``(params, sources)``: the modules' parameters, each unset argument (null or "") from its environment variable.

    ``sources`` names the variable each value came from, for the messages.
    """
    values, sources = {}, {}
    for name in OPTIONS:
        value = config.get(name)
        if value is None or value == '':
            value = None
            for variable in ENV_FALLBACKS.get(name, ()):
                if environ.get(variable):
                    value, sources[name] = environ[variable], variable
                    break
        values[name] = int(value) if name in NUMBER_OPTIONS and value is not None else value
    if values['ca_cert']:
        values['ca_cert'] = os.path.expanduser(os.path.expandvars(values['ca_cert']))  # as the modules' type=path does
    params = dict((key, value) for key, value in values.items() if key not in AUTH_KEYS)
    params['auth'] = dict((key, values[key]) for key in AUTH_KEYS)
    for key, default in DEFAULTS.items():
        if params[key] is None:
            params[key] = default
    return params, sources


def error_option(message):
    """The provider argument a message of ConnectionSettings is about, or None."""
    for name in OPTIONS:
        if message.startswith((name + ' ', name + '=')):
            return name
    incomplete = 'auth is incomplete: missing '
    if message.startswith(incomplete):
        first = message[len(incomplete):].split(',')[0].split(' or ')[0].strip()
        return first if first in OPTIONS else None
    return None


class ProviderSettings(ConnectionSettings):
    """The modules' checks, with the names of the provider block."""

    URL_OPTION_NAMES = {'endpoint': 'endpoint', 'auth_url': 'auth_url'}


def failure_text(exc):
    """``(summary, detail)`` of a failure, before masking."""
    if isinstance(exc, K5MailError):
        summary = '%s failed' % exc.action
        detail = str(exc)
        return summary, detail[len(summary) + 2:] if detail.startswith(summary + ': ') else detail
    return 'Unexpected error in %s' % PROG, '%s: %s' % (type(exc).__name__, exc)


class _Gate:
    """The session's client as the action helpers take it; a read gate refuses every action that changes something."""

    def __init__(self, session, writes):
        self.session = session
        self.writes = writes

    def call(self, action, params=None, accept=(), idempotent=True):
        if not self.writes and action not in READ_ACTIONS:
            raise K5MailError(action, 'not sent: a refresh, a plan, an import or a data source only reads, and %s '
                              'changes the service' % action)
        return self.session.call(action, params, accept=accept, idempotent=idempotent)


class _Once:
    """A value read at most once per process, failure included (a hundred reads must not make a hundred failing calls)."""

    def __init__(self):
        self.done = False
        self.value = None
        self.error = None

    def get(self, read):
        if not self.done:
            try:
                self.value = read()
            except K5MailError as exc:
                self.error = exc
            self.done = True
        if self.error is not None:
            raise self.error
        return self.value

    def set(self, value):
        self.done, self.value, self.error = True, value, None


class Session:
    """The one client of a configured provider process.

    Terraform reads and changes resources from several threads at once. One
    call at a time: one login, one token, and the service's pace anyway; a
    login that failed is not tried again by this process. The SMTP user and
    the identities are read once per process and shared: the
    first identity a refresh asks about lists the contract's identities
    (ListIdentities, 100 a page) and reads their verification attributes in
    batches of 100 (GetIdentityVerificationAttributes), so a plan over a
    hundred identities costs two calls, not a hundred. Changes made through
    the session update what it read.
    """

    def __init__(self, client, secrets):
        self._client = client
        self._call_lock = threading.Lock()
        self._login_error = None
        self._read_lock = threading.Lock()
        self.secrets = set(secret for secret in secrets if secret)
        self._smtp_user = _Once()
        self._identities = _Once()
        self.reader = _Gate(self, writes=False)
        self.writer = _Gate(self, writes=True)

    def call(self, action, params=None, accept=(), idempotent=True):
        with self._call_lock:
            if self._login_error is not None:
                raise self._login_error  # every resource gets the one answer Keystone gave
            try:
                return self._client.call(action, params, accept=accept, idempotent=idempotent)
            except K5MailError as exc:
                if exc.action == KeystonePassword.ACTION:
                    self._login_error = exc
                raise

    def masked(self, text):
        return one_line(text, self.secrets)

    def smtp_user(self):
        """The contract's SMTP credentials (None when it has none), read once per process."""
        with self._read_lock:
            credentials = self._smtp_user.get(lambda: get_smtp_user(self.reader))
        self._remember(credentials)
        return credentials

    def smtp_user_changed(self, credentials):
        self._remember(credentials)
        with self._read_lock:
            self._smtp_user.set(credentials)

    def identity(self, identity):
        """``{'status', 'token'}`` of ``identity``, or None when the contract has no such identity."""
        with self._read_lock:
            return self._identities.get(self._read_identities).get(identity)

    def identity_changed(self, identity, attributes):
        with self._read_lock:
            if self._identities.done and self._identities.error is None:
                if attributes is None:
                    self._identities.value.pop(identity, None)
                else:
                    self._identities.value[identity] = attributes

    def _read_identities(self):
        return verification_attributes(self.reader, list_identities(self.reader))

    def _remember(self, credentials):
        if credentials is not None:
            self.secrets.add(credentials.password)  # masked in every later message of this process


def guarded(keep_prior=False):
    """Turn any failure of a resource or data source operation into one error diagnostic, with the secrets masked.

    The operation then returns what Terraform keeps: the prior state (the first
    argument) when ``keep_prior``, else nothing.
    """
    def decorate(method):
        @functools.wraps(method)
        def run(self, ctx, *args):
            try:
                return method(self, ctx, *args)
            except Exception as exc:  # pylint: disable=broad-exception-caught; tf would log a traceback
                self.provider.report(ctx.diagnostics, exc)
                return args[0] if keep_prior else None
        return run
    return decorate


class K5MailProvider(Provider):
    """``provider "k5mail" {}``: configured once per process; its session serves every resource."""

    def __init__(self, environ=None):
        self.environ = os.environ if environ is None else environ
        self._session = None
        self._secrets = set()

    @property
    def session(self):
        if self._session is None:
            raise K5MailError('Provider configuration', 'not sent: the provider is not configured')
        return self._session

    def report(self, diags, exc, path=None):
        summary, detail = failure_text(exc)
        secrets = self._session.secrets if self._session is not None else self._secrets
        diags.add_error(one_line(summary, secrets), one_line(detail, secrets), path=path)

    def get_model_prefix(self):
        return MODEL_PREFIX

    def full_name(self):
        return PROVIDER_SOURCE

    def get_provider_schema(self, diags):
        return provider_schema()

    def validate_config(self, diags, config):
        for name, message in whole_number_problems(config or {}):
            diags.add_error('Invalid provider argument %s' % name, message, path=[name])

    def configure_provider(self, diags, config):
        config = config or {}
        self._secrets = set(config.get(name) for name in SENSITIVE_OPTIONS if isinstance(config.get(name), str))
        self._secrets.update(self.environ.get(variable) for name in SENSITIVE_OPTIONS for variable in ENV_FALLBACKS[name])
        self._secrets.discard(None)
        unknown = [name for name in OPTIONS if config.get(name) is Unknown]
        for name in unknown:
            diags.add_error('Provider argument %s is not known yet' % name,
                            'The provider needs %s during the plan: give a value known before apply.' % name, path=[name])
        problems = whole_number_problems(config)
        for name, message in problems:
            diags.add_error('Invalid provider argument %s' % name, message, path=[name])
        if unknown or problems:
            return
        params, sources = connection_params(config, self.environ)
        settings = ProviderSettings(params)
        self._secrets.update(settings.secrets)
        for message in settings.errors:
            self._report_setting(diags.add_error, 'Invalid provider', message, sources)
        for message in settings.warnings:
            self._report_setting(diags.add_warning, 'Provider', message, sources)
        if settings.errors:
            return
        self._session = Session(settings.client(), self._secrets)

    def _report_setting(self, add, prefix, message, sources):
        """A diagnostic of the settings, on the argument it is about (and naming the variable it came from)."""
        name = error_option(message)
        source = ' (from %s)' % sources[name] if name in sources else ''
        summary = '%s argument %s' % (prefix, name) if name else '%s configuration' % prefix
        add(summary, one_line(message + source, self._secrets), path=[name] if name else None)

    def get_data_sources(self):
        from terraform_provider_k5mail.data_sources import DATA_SOURCES  # pylint: disable=import-outside-toplevel
        return list(DATA_SOURCES)

    def get_resources(self):
        from terraform_provider_k5mail.resources import RESOURCES  # pylint: disable=import-outside-toplevel
        return list(RESOURCES)


def _private_cert_cache_if_home_is_unusable():
    """tf caches the TLS certificate of its gRPC server under ~/.cache and fails when HOME is not writable:
    then keep it in a private temporary directory of this process instead."""
    try:
        runner._get_cert_cache_path()  # pylint: disable=protected-access; tf 1.2.0 is pinned exactly
        return
    except (OSError, RuntimeError, KeyError):
        pass
    directory = tempfile.mkdtemp(prefix='%s-' % PROG)  # 0700
    atexit.register(shutil.rmtree, directory, True)
    runner._get_cert_cache_path = lambda: Path(directory) / 'ssl_cert.json'  # pylint: disable=protected-access


def serve():
    """Serve Terraform until it stops the provider (the plugin handshake goes to stdout)."""
    _private_cert_cache_if_home_is_unusable()
    runner.run_provider(K5MailProvider(), [PROG])
    sys.stdout.flush()
