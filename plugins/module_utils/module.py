# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec every module shares and the base class that runs a module.

A module subclasses ``K5MailModule``, declares its own options in
``module_spec`` and writes ``run()``, which returns the result dict. The base
class validates the connection options before any request, builds the one
client of the run, and turns ``K5MailError`` into a single ``fail_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import KeystonePassword
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import HAS_LXML, LXML_IMPORT_ERROR
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import HAS_REQUESTS, REQUESTS_IMPORT_ERROR

DEFAULT_REGION = 'jp-east-1'
DEFAULT_AUTH_URL = 'https://identity.{region}.cloud.global.fujitsu.com/v3'
DEFAULT_ENDPOINT = 'https://mail.{region}.cloud.global.fujitsu.com'
_REGION_PATTERN = re.compile(r'^[a-z0-9]+(?:-[a-z0-9]+)*\Z')
_HOST_LABEL = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z')
MAX_REGION_LENGTH = 63  # it becomes one label of the default host names
MAX_HOST_LENGTH = 253
MAX_API_TIMEOUT = 3600
MAX_RETRIES = 20


def k5_argument_spec():
    """Connection options shared by every module (documented in the fjcloud.mail.k5 doc fragment)."""
    return dict(
        auth=dict(
            type='dict',
            apply_defaults=True,
            options=dict(
                auth_url=dict(type='str', fallback=(env_fallback, ['OS_AUTH_URL'])),
                username=dict(type='str', fallback=(env_fallback, ['OS_USERNAME'])),
                password=dict(type='str', no_log=True, fallback=(env_fallback, ['OS_PASSWORD'])),
                user_domain_name=dict(type='str', fallback=(env_fallback, ['OS_USER_DOMAIN_NAME'])),
                project_id=dict(type='str', fallback=(env_fallback, ['OS_PROJECT_ID'])),
                project_name=dict(type='str', fallback=(env_fallback, ['OS_PROJECT_NAME'])),
                project_domain_name=dict(type='str', fallback=(env_fallback, ['OS_PROJECT_DOMAIN_NAME'])),
            ),
        ),
        auth_token=dict(type='str', no_log=True, fallback=(env_fallback, ['OS_TOKEN', 'OS_AUTH_TOKEN'])),
        # No spec default: a default would win over the environment variable.
        region_name=dict(type='str', fallback=(env_fallback, ['OS_REGION_NAME'])),
        endpoint=dict(type='str', fallback=(env_fallback, ['FJCLOUD_MAIL_ENDPOINT'])),
        validate_certs=dict(type='bool', default=True),
        allow_http=dict(type='bool', default=False),
        ca_cert=dict(type='path', aliases=['cacert'], fallback=(env_fallback, ['OS_CACERT'])),
        api_timeout=dict(type='int', default=30),
        retries=dict(type='int', default=5),
    )


class ConnectionSettings:
    """The validated connection options of one module run: ``errors`` refuse the run, ``warnings`` are shown."""

    def __init__(self, params):
        self.errors = []
        self.warnings = []
        self.secrets = set()  # values the module must mask in everything it returns
        self.allow_http = params.get('allow_http')
        self.region = params.get('region_name') or DEFAULT_REGION
        self.region_ok = self._check_region(self.region)
        self.endpoint = params.get('endpoint') or DEFAULT_ENDPOINT.format(region=self.region)
        if params.get('endpoint') or self.region_ok:  # else the region's error says it all
            self._check_url('endpoint', self.endpoint)
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
        try:
            parsed = urlsplit(url)
            host = parsed.hostname
            parsed.port  # pylint: disable=pointless-statement; raises ValueError on a bad port
        except ValueError as exc:
            self.errors.append('%s %s is not a URL: %s' % (name, _shown(url), exc))
            return
        if parsed.username is not None or parsed.password is not None:
            # A lone user part (https://TOKEN@host) may be a secret too.
            self.secrets.update(part for part in (parsed.password, parsed.username) if part)
            self.errors.append('%s must not hold a user name or password (user:password@host): it would show in '
                               'messages and logs; give the credentials in auth or auth_token' % name)
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
            self._check_url('auth.auth_url', auth_url)
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
        return K5MailClient(
            endpoint=self.endpoint,
            token=self.token,
            keystone=self.keystone,
            validate_certs=self.validate_certs,
            ca_cert=self.ca_cert,
            timeout=self.timeout,
            retries=self.retries,
        )


def _shown(url):
    """A URL fit for a message: bounded, so a huge value does not flood the output."""
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
    if not all(_HOST_LABEL.match(label) for label in name.split('.')):
        return ('the host name is not dot-separated labels of 1 to 63 ASCII letters, digits and inner dashes '
                '(give an internationalised name in its xn-- form)')
    return None


class K5MailModule:
    """Base of every module: shared options, one client, one way to fail."""

    module_spec = {}
    module_kwargs = {}

    def __init__(self):
        argument_spec = k5_argument_spec()
        argument_spec.update(self.module_spec)
        self.module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **self.module_kwargs)
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)
        if not HAS_LXML:
            self.module.fail_json(msg=missing_required_lib('lxml'), exception=LXML_IMPORT_ERROR)
        self.params = self.module.params
        self.settings = ConnectionSettings(self.params)
        # Ansible then masks them in the result, including the echo of the arguments.
        self.module.no_log_values.update(self.settings.secrets)
        errors = self.settings.errors or self.validate()
        if errors:
            self.module.fail_json(msg='; '.join(errors))
        for warning in self.settings.warnings:
            self.module.warn(warning)
        self.client = self.settings.client()

    @property
    def check_mode(self):
        return self.module.check_mode

    def validate(self):
        """Module-specific checks run before any request; return a list of error messages."""
        return []

    def run(self):
        raise NotImplementedError

    def execute(self):
        try:
            result = self.run()
        except K5MailError as exc:
            self.module.fail_json(msg=str(exc), **exc.to_result())
        self.module.exit_json(**result)
