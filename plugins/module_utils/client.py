# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client of the K5 / FJcloud-O Email Delivery Service query API.

Every module of the collection talks to the service through ``K5MailClient``:
it authenticates with Keystone (or uses a given token), posts form-encoded
actions to the mail endpoint, paces calls to the service's one request per
second, retries what is safe to retry, parses the XML replies by local name
and turns every failure into one ``K5MailError``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

try:
    import requests
except ImportError:
    pass  # transport.HAS_REQUESTS tells the module

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import SharedPacer
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import (
    Response,
    describe_non_xml,
    error_from_reply,
    find_text,
    parse_xml,
    throttling_reply,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import Backoff, retry_after
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import clean_token, network_error, nothing_sent, tls_error

USER_AGENT = 'FGCP-OS-API-CLIENT'
API_VERSION = 'v1.0'


class K5MailClient:
    """One client per module run: one HTTP session, one pacer, one token."""

    def __init__(self, endpoint, token=None, keystone=None, validate_certs=True, ca_cert=None,
                 timeout=30, retries=5, session=None, pacer=None, backoff=None, sleep=None):
        if not token and keystone is None:
            raise ValueError('a token or Keystone credentials are required')
        self.endpoint = endpoint.rstrip('/') + '/'
        self.token = clean_token(token)
        self.keystone = keystone
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()
        self.session.headers['User-Agent'] = USER_AGENT
        # Passed with every request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self.verify = (ca_cert or True) if validate_certs else False
        self.sleep = sleep or time.sleep
        self.pacer = pacer or SharedPacer(self.endpoint, sleep=self.sleep)
        self.backoff = backoff or Backoff(retries)
        self.token_expires_at = None

    # The transport interface KeystonePassword uses.
    def post(self, url, data, headers):
        return self.session.post(url, data=data, headers=headers, timeout=self.timeout, verify=self.verify)

    def authenticate(self):
        """Get a token with the Keystone password; return the Token."""
        token = self.keystone.authenticate(self, self.backoff)
        self.token, self.token_expires_at = token.value, token.expires_at
        return token

    def call(self, action, params=None, accept=(), idempotent=True):
        """Run ``action``; return a Response for 200 and the statuses in ``accept``, raise K5MailError otherwise.

        A call that is not ``idempotent`` (sending a mail) is repeated only when the service cannot
        have acted on it: a throttling reply, or a connection that failed before anything was sent.
        """
        if not self.token:
            self.authenticate()
        form = [('Action', action), ('Version', API_VERSION)] + sorted((params or {}).items())
        reauthenticated = False
        attempt = 0
        while True:
            server_delay = None
            error = None
            with self.pacer.slot():
                try:
                    reply = self.session.post(self.endpoint, data=form, timeout=self.timeout, verify=self.verify, headers={
                        'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
                        'X-Auth-Token': self.token,
                    })
                except requests.exceptions.SSLError as exc:
                    raise tls_error(action, self.endpoint, exc)
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                    # Safe to repeat an idempotent call: creating twice answers 409, which means present.
                    error = network_error(action, self.endpoint, exc, retryable=idempotent or nothing_sent(exc))
            if error is None:
                status = reply.status_code
                if status == 200 or status in accept:
                    return self._accepted(action, reply)
                if status == 401 and self.keystone is not None and not reauthenticated:
                    # The token expired: get a new one once and repeat the call once.
                    reauthenticated = True
                    self.authenticate()
                    continue
                error = error_from_reply(action, status, reply.headers, reply.content)
                if not idempotent and not throttling_reply(status, error.code, error.reason):
                    # A 5xx may come after the service acted: never repeat a send on it.
                    error.retryable = False
                if status == 401 and self.keystone is None:
                    error.hint = 'Give a fresh auth_token, or auth (Keystone password) so the module can get one'
                server_delay = retry_after(reply.headers)
            if not error.retryable or attempt >= self.backoff.retries:
                error.attempts = attempt + 1
                raise error
            self.sleep(self.backoff.delay(attempt, server_delay))
            attempt += 1

    @staticmethod
    def _accepted(action, reply):
        request_id = (reply.headers.get('x-fj-request-id') or '').strip() or None
        root = None
        if reply.content and reply.content.strip():
            try:
                root = parse_xml(reply.content)
            except ValueError as exc:
                raise K5MailError(action, describe_non_xml(reply.headers, reply.content, exc), status=reply.status_code,
                                  request_id=request_id)
        if root is not None:
            request_id = request_id or find_text(root, 'RequestId')
        return Response(action, reply.status_code, root, request_id)
