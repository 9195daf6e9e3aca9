# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Keystone v3 password authentication, and the token it gives (or that the user gives as auth_token)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import (
    FINAL,
    K5MailError,
    NOT_PROCESSED,
    SERVER_ERROR,
    bounded_text,
    without_userinfo,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.login_guard import LoginGuard, project_scope
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import html_title
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import LOGIN, run_with_retries
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import DEFAULT_URLS, retry_after


# What to do after Keystone refused the login, by status.
REJECTED_HINT = ('Check the password, the user name, user_domain_name (the contract number) and the project '
                 '(project_id or project_name): any of them wrong gives this answer. Not retried: five failed '
                 'logins within 15 minutes lock the account')
KEYSTONE_HINTS = {
    403: 'The user may not use this project: check project_id or project_name, and the user\'s roles in the K5 portal',
    404: 'Check auth_url: it must be the Keystone v3 of the region, ending in /v3, e.g. %s' % DEFAULT_URLS['auth_url'],
}


def clean_token(token):
    """A token fit for the X-Auth-Token header: no CR or LF (a header injection), no surrounding blanks; None if empty."""
    if not token:
        return None
    return token.replace('\r', '').replace('\n', '').strip() or None


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
                if not isinstance(endpoint, dict):
                    continue
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
                 project_id=None, project_name=None, project_domain_name=None, login_guard=LoginGuard):
        self.auth_url = auth_url.rstrip('/')
        if not self.auth_url.endswith('/v3'):
            self.auth_url += '/v3'
        self.username = username
        self.password = password
        self.user_domain_name = user_domain_name
        self.project_id = project_id
        self.project_name = project_name
        self.project_domain_name = project_domain_name or user_domain_name
        self.login_guard = login_guard

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

    def authenticate(self, transport, backoff, sleep):
        """Return a Token. Repeated only when Keystone cannot have checked the password (retries.should_retry)."""
        url = self.auth_url + '/auth/tokens'
        return run_with_retries(LOGIN, lambda: self._login_once(transport, url), backoff, sleep).result

    def _login_once(self, transport, url):
        # Every password check goes through the guard: one login of the account at a time on this
        # host, the same credentials never again after a rejection within the lockout window.
        scope = project_scope(self.project_id, self.project_name, self.project_domain_name)
        guard = self.login_guard(self.auth_url, self.username, self.user_domain_name,
                                 password=self.password, project_scope=scope)
        with guard.attempt() as outcome:
            reply = transport.post(self.ACTION, url, json.dumps(self.request_body()),
                                   {'Content-Type': 'application/json', 'Accept': 'application/json'},
                                   url_option='auth_url')
            if reply.status_code == 201:
                outcome.accepted()
                return self._token_from(reply, url)
            if reply.status_code == 401:
                outcome.rejected()
            raise self._error_from(reply)

    def _token_from(self, reply, url):
        token = clean_token(reply.headers.get('X-Subject-Token'))  # headers match names in any case
        if not token:
            raise K5MailError(self.ACTION, 'Keystone at %s answered 201 without an X-Subject-Token header'
                              % without_userinfo(url), status=201, hint='Check that auth_url is the Keystone v3 of the region')
        body = _json(reply).get('token')
        body = body if isinstance(body, dict) else {}
        return Token(token, body.get('expires_at'), body.get('catalog') or [])

    def _error_from(self, reply):
        status = reply.status_code
        url = without_userinfo(self.auth_url + '/auth/tokens')
        error = _json(reply).get('error')
        detail = error.get('message') if isinstance(error, dict) else html_title(reply.content)
        detail = ': %s' % bounded_text(detail) if detail else ''
        if status == 401:
            return K5MailError(
                self.ACTION, 'Keystone rejected the credentials of %s for %s at %s%s'
                % (self.describe(), self._scope(), url, detail), status=status, hint=REJECTED_HINT)
        if status in (429, 503):
            # Answered by a rate limiter or a proxy with no Keystone behind it: no password was checked.
            failure = NOT_PROCESSED
        elif status >= 500:
            failure = SERVER_ERROR
        else:
            failure = FINAL
        return K5MailError(self.ACTION, 'Keystone at %s answered %s%s' % (url, bounded_text(reply.reason or 'an error', 100), detail),
                           status=status, failure=failure, retry_after=retry_after(reply.headers),
                           hint=KEYSTONE_HINTS.get(status))

    def _scope(self):
        if self.project_id:
            return 'project_id %s' % self.project_id
        return 'project_name %s of domain %s' % (self.project_name, self.project_domain_name)


def _json(reply):
    """The reply's JSON object, or {} when it is not one."""
    try:
        data = json.loads(reply.content.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
