# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Connection settings: the checks of the shared connection options, and the client they build.

Kept free of ansible imports so that programs other than modules (the
``fjcloud-mail-external`` Terraform entry point) validate their settings
exactly as the modules do and build the same client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re
from urllib.parse import urlsplit

from ansible_collections.fjcloud.mail.plugins.module_utils.addresses import DNS_LABEL
from ansible_collections.fjcloud.mail.plugins.module_utils.client import DEFAULT_API_TIMEOUT, DEFAULT_RETRIES, K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import userinfo_secrets, without_userinfo
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import KeystonePassword
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import DEFAULT_AUTH_URL, DEFAULT_ENDPOINT

DEFAULT_REGION = 'jp-east-1'
_REGION_PATTERN = re.compile(r'^[a-z0-9]+(?:-[a-z0-9]+)*\Z')
MAX_REGION_LENGTH = 63  # it becomes one label of the default host names
MAX_HOST_LENGTH = 253
MAX_API_TIMEOUT = 3600
MAX_RETRIES = 20


# The environment variables each connection option falls back to, first set wins.
ENV_FALLBACKS = {
    'auth_url': ('OS_AUTH_URL',),
    'username': ('OS_USERNAME',),
    'password': ('OS_PASSWORD',),
    'user_domain_name': ('OS_USER_DOMAIN_NAME',),
    'project_id': ('OS_PROJECT_ID',),
    'project_name': ('OS_PROJECT_NAME',),
    'project_domain_name': ('OS_PROJECT_DOMAIN_NAME',),
    'auth_token': ('OS_TOKEN', 'OS_AUTH_TOKEN'),
    'region_name': ('OS_REGION_NAME',),
    'endpoint': ('FJCLOUD_MAIL_ENDPOINT',),
    'ca_cert': ('OS_CACERT',),
}
# The defaults of the options that have no environment variable.
DEFAULTS = {'validate_certs': True, 'allow_http': False, 'api_timeout': DEFAULT_API_TIMEOUT, 'retries': DEFAULT_RETRIES}
# The keys of the ``auth`` option; the others are top-level options.
AUTH_KEYS = ('auth_url', 'username', 'password', 'user_domain_name', 'project_id', 'project_name', 'project_domain_name')


class ConnectionSettings:
    """The validated connection options of one module run: ``errors`` refuse the run, ``warnings`` are shown."""

    # How messages name the URL options; a program with other option names overrides these.
    URL_OPTION_NAMES = {'endpoint': 'endpoint', 'auth_url': 'auth.auth_url'}
    client_class = K5MailClient

    def __init__(self, params):
        self.errors = []
        self.warnings = []
        self.secrets = set()  # values the module must mask in everything it returns
        self.allow_http = params.get('allow_http')
        self.region = params.get('region_name') or DEFAULT_REGION
        self.region_ok = self._check_region(self.region)
        # The one endpoint rule of every module and of fjcloud-mail-external: the endpoint option, else
        # FJCLOUD_MAIL_ENDPOINT (the option's fallback, already in params), else the default of the region.
        # Never the token's catalog: a token given as auth_token has none, and one rule must give one URL.
        self.endpoint = params.get('endpoint') or DEFAULT_ENDPOINT.format(region=self.region)
        if params.get('endpoint') or self.region_ok:  # else the region's error says it all
            self._check_url(self.URL_OPTION_NAMES['endpoint'], self.endpoint)
        self.validate_certs = params.get('validate_certs')
        if self.validate_certs is False:
            self.warnings.append(
                'validate_certs=false: the certificates of the mail API and of Keystone are not verified, so '
                'anyone on the network path can pose as them and read the password, the token and the SMTP '
                'credentials; give ca_cert instead')
        self.ca_cert = params.get('ca_cert')
        if self.ca_cert and not os.path.isfile(self.ca_cert):
            self.errors.append('ca_cert %s is not a readable file' % self.ca_cert)
        self.timeout = params.get('api_timeout')
        if self.timeout is not None and not 0 < self.timeout <= MAX_API_TIMEOUT:
            self.errors.append('api_timeout must be between 1 and %d seconds, got %d' % (MAX_API_TIMEOUT, self.timeout))
        self.retries = params.get('retries')
        if self.retries is not None and not 0 <= self.retries <= MAX_RETRIES:
            self.errors.append('retries must be between 0 and %d, got %d' % (MAX_RETRIES, self.retries))
        self.token = params.get('auth_token')
        self.keystone = self._keystone(params.get('auth') or {})
        if not self.token and self.keystone is None and not self.errors:
            self.errors.append(
                'no credentials: give auth_token (or OS_TOKEN), or auth with username, password, '
                'user_domain_name (the contract number) and project_id or project_name '
                '(or the OS_USERNAME, OS_PASSWORD, OS_USER_DOMAIN_NAME, OS_PROJECT_ID variables)')

    def _check_region(self, region):
        if len(region) > MAX_REGION_LENGTH:
            self.errors.append('region_name is %d characters long, at most %d are allowed' % (len(region), MAX_REGION_LENGTH))
            return False
        if not _REGION_PATTERN.match(region):
            self.errors.append('region_name %r is not a region name (lower-case letters, digits and dashes, e.g. jp-east-1)'
                               % region)
            return False
        return True

    def _check_url(self, name, url):
        """Append what is wrong with ``url`` to the errors; never echo a URL that holds credentials."""
        secrets = userinfo_secrets(url)
        if secrets:
            # Found without parsing, so a URL no parser accepts (a bad port or IPv6 bracket) is caught too.
            self.secrets.update(secrets)
            self.errors.append('%s must not hold a user name or password (user:password@host): it would show in '
                               'messages and logs; give the credentials in auth or auth_token' % name)
            return
        try:
            parsed = urlsplit(url)
            host = parsed.hostname
            parsed.port  # pylint: disable=pointless-statement; raises ValueError on a bad port
        except ValueError as exc:
            self.errors.append('%s %s is not a URL: %s' % (name, _shown(url), exc))
            return
        if parsed.scheme not in ('https', 'http') or not host:
            self.errors.append('%s %s is not an http(s) URL with a host name' % (name, _shown(url)))
            return
        problem = _host_problem(host)
        if problem:
            self.errors.append('%s %s: %s' % (name, _shown(url), problem))
        elif parsed.scheme == 'http' and not self.allow_http:
            self.errors.append('%s %s uses http://, which sends the password and the token in clear text: use '
                               'https://, or set allow_http=true for a local emulator' % (name, _shown(url)))
        elif parsed.scheme == 'http':
            self.warnings.append('%s %s uses plain http:// (allow_http=true): the password and the token cross '
                                 'the network in clear text' % (name, _shown(url)))

    def _keystone(self, auth):
        given = dict((key, value) for key, value in auth.items() if value)
        password_keys = ('username', 'password', 'user_domain_name')
        if not any(given.get(key) for key in password_keys):
            return None
        missing = [key for key in password_keys if not given.get(key)]
        if not given.get('project_id') and not given.get('project_name'):
            missing.append('project_id or project_name')
        if missing:
            self.errors.append('auth is incomplete: missing %s' % ', '.join(missing))
            return None
        auth_url = given.get('auth_url') or DEFAULT_AUTH_URL.format(region=self.region)
        if given.get('auth_url') or self.region_ok:
            self._check_url(self.URL_OPTION_NAMES['auth_url'], auth_url)
        return KeystonePassword(
            auth_url=auth_url,
            username=given['username'],
            password=given['password'],
            user_domain_name=given['user_domain_name'],
            project_id=given.get('project_id'),
            project_name=given.get('project_name'),
            project_domain_name=given.get('project_domain_name'),
        )

    def client(self):
        return self.client_class(
            endpoint=self.endpoint,
            token=self.token,
            keystone=self.keystone,
            validate_certs=self.validate_certs,
            ca_cert=self.ca_cert,
            timeout=self.timeout,
            retries=self.retries,
        )


def _shown(url):
    """A URL fit for a message: without user info, bounded, so a huge value does not flood the output."""
    url = without_userinfo(url)
    return repr(url if len(url) <= 100 else url[:100] + '...')


def _host_problem(host):
    """Why ``host`` (from urlsplit: lower case, no brackets) is not a host name or IP address, or None."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if len(host) > MAX_HOST_LENGTH:
        return 'the host name is %d characters long, at most %d are allowed' % (len(host), MAX_HOST_LENGTH)
    name = host[:-1] if host.endswith('.') else host  # a fully qualified name may end with a dot
    if not all(DNS_LABEL.match(label) for label in name.split('.')):
        return ('the host name is not dot-separated labels of 1 to 63 ASCII letters, digits and inner dashes '
                '(give an internationalised name in its xn-- form)')
    return None
