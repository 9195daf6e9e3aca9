# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The argument spec every module shares and the base class that runs a module.

A module subclasses ``K5MailModule``, declares its own options in
``module_spec`` and writes ``run()``, which returns the result dict. The base
class validates the connection options before any request, builds the one
client of the run, and turns ``K5MailError`` into a single ``fail_json``.

The path from a module option to the HTTP request and back, one line per
file, is in README.md next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.fjcloud.mail.plugins.module_utils.connection import DEFAULTS, ENV_FALLBACKS, ConnectionSettings
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import HAS_LXML, LXML_IMPORT_ERROR
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import HAS_REQUESTS, REQUESTS_IMPORT_ERROR


def _env(option):
    return (env_fallback, list(ENV_FALLBACKS[option]))


def k5_argument_spec():
    """Connection options shared by every module (documented in the fjcloud.mail.k5 doc fragment)."""
    return dict(
        auth=dict(
            type='dict',
            apply_defaults=True,
            options=dict(
                auth_url=dict(type='str', fallback=_env('auth_url')),
                username=dict(type='str', fallback=_env('username')),
                password=dict(type='str', no_log=True, fallback=_env('password')),
                user_domain_name=dict(type='str', fallback=_env('user_domain_name')),
                project_id=dict(type='str', fallback=_env('project_id')),
                project_name=dict(type='str', fallback=_env('project_name')),
                project_domain_name=dict(type='str', fallback=_env('project_domain_name')),
            ),
        ),
        auth_token=dict(type='str', no_log=True, fallback=_env('auth_token')),
        # No spec default: a default would win over the environment variable.
        region_name=dict(type='str', fallback=_env('region_name')),
        endpoint=dict(type='str', fallback=_env('endpoint')),
        validate_certs=dict(type='bool', default=DEFAULTS['validate_certs']),
        allow_http=dict(type='bool', default=DEFAULTS['allow_http']),
        ca_cert=dict(type='path', aliases=['cacert'], fallback=_env('ca_cert')),
        api_timeout=dict(type='int', default=DEFAULTS['api_timeout']),
        retries=dict(type='int', default=DEFAULTS['retries']),
    )


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
