# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keystone v3 password authentication."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

try:
    import requests
except ImportError:
    pass  # transport.HAS_REQUESTS tells the module

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import html_title
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import retry_after
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import clean_token, network_error, nothing_sent, tls_error


class Token:
    """A Keystone token and what came with it."""

    def __init__(self, value, expires_at=None, catalog=None):
        self.value = value
        self.expires_at = expires_at
        self.catalog = catalog or []

    def endpoint(self, service_type, region=None):
        """The public URL of ``service_type`` in ``region`` from the catalog, or None."""
        for service in self.catalog:
            if not isinstance(service, dict) or service.get('type') != service_type:
                continue
            for endpoint in service.get('endpoints') or []:
                if endpoint.get('interface', 'public') != 'public':
                    continue
                if region and endpoint.get('region') not in (None, region) and endpoint.get('region_id') != region:
                    continue
                if endpoint.get('url'):
                    return endpoint['url']
        return None


class KeystonePassword:
    """Keystone v3 password authentication, scoped to a project.

    A rejected password is never retried: five failures within 15 minutes
    lock the K5 account for 15 minutes.
    """

    ACTION = 'Keystone authentication'

    def __init__(self, auth_url, username, password, user_domain_name,
                 project_id=None, project_name=None, project_domain_name=None):
        self.auth_url = auth_url.rstrip('/')
        if not self.auth_url.endswith('/v3'):
            self.auth_url += '/v3'
        self.username = username
        self.password = password
        self.user_domain_name = user_domain_name
        self.project_id = project_id
        self.project_name = project_name
        self.project_domain_name = project_domain_name or user_domain_name

    def request_body(self):
        if self.project_id:
            project = {'id': self.project_id}
        else:
            project = {'name': self.project_name, 'domain': {'name': self.project_domain_name}}
        return {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'domain': {'name': self.user_domain_name},
                'name': self.username,
                'password': self.password,
            }}},
            'scope': {'project': project},
        }}

    def describe(self):
        return 'user %s of contract %s' % (self.username, self.user_domain_name)

    def authenticate(self, transport, backoff):
        """Return a Token. Retries only failures that cannot be a password check."""
        url = self.auth_url + '/auth/tokens'
        attempt = 0
        while True:
            server_delay = None
            try:
                reply = transport.post(url, data=json.dumps(self.request_body()),
                                       headers={'Content-Type': 'application/json', 'Accept': 'application/json'})
            except requests.exceptions.SSLError as exc:
                raise tls_error(self.ACTION, url, exc)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                # Retry only when the request never reached Keystone: a repeated
                # password check could count twice towards the lockout.
                error = network_error(self.ACTION, url, exc, retryable=nothing_sent(exc))
            else:
                if reply.status_code == 201:
                    return self._token_from(reply, url)
                error = self._error_from(reply)
                server_delay = retry_after(reply.headers)
            if not error.retryable or attempt >= backoff.retries:
                error.attempts = attempt + 1
                raise error
            transport.sleep(backoff.delay(attempt, server_delay))
            attempt += 1

    def _token_from(self, reply, url):
        token = clean_token(reply.headers.get('X-Subject-Token'))  # requests matches header names in any case
        if not token:
            raise K5MailError(self.ACTION, 'Keystone at %s answered 201 without an X-Subject-Token header' % url,
                              status=201)
        try:
            body = reply.json().get('token') or {}
        except (ValueError, AttributeError):
            body = {}
        return Token(token, body.get('expires_at'), body.get('catalog') or [])

    def _error_from(self, reply):
        status = reply.status_code
        detail = None
        try:
            detail = reply.json().get('error', {}).get('message')
        except (ValueError, AttributeError):
            detail = html_title(reply.content)
        if status == 401:
            return K5MailError(
                self.ACTION, 'Keystone rejected the credentials of %s%s' % (self.describe(), ': %s' % detail if detail else ''),
                status=status, hint='Not retried: five failed logins within 15 minutes lock the account for 15 minutes')
        retryable = status >= 500 or status == 429
        return K5MailError(self.ACTION, 'Keystone answered %s%s' % (
            reply.reason or 'an error', ': %s' % detail if detail else ''), status=status, retryable=retryable)
