# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Client of the K5 / FJcloud-O Email Delivery Service query API.

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
from ansible_collections.fjcloud.mail.plugins.module_utils.keystone import clean_token
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import SharedPacer
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import Response, describe_non_xml, error_from_reply, find_text, parse_xml
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import IDEMPOTENT, SEND, Backoff, run_with_retries
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import Transport

USER_AGENT = 'FGCP-OS-API-CLIENT'
API_VERSION = 'v1.0'
FORM_TYPE = 'application/x-www-form-urlencoded; charset=utf-8'
# The defaults of the api_timeout and retries options. connection.DEFAULTS (and through it the
# argument spec of every module and fjcloud-mail-external) takes them from here; the k5 doc
# fragment repeats them, and ansible-test validate-modules checks that it matches the spec.
DEFAULT_API_TIMEOUT = 30
DEFAULT_RETRIES = 5


class K5MailClient:
    """One client per module run: one HTTP session, one pacer, one token."""

    def __init__(self, endpoint, token=None, keystone=None, validate_certs=True, ca_cert=None,
                 timeout=DEFAULT_API_TIMEOUT, retries=DEFAULT_RETRIES, session=None, pacer=None, backoff=None, sleep=None):
        if not token and keystone is None:
            raise ValueError('a token or Keystone credentials are required')
        self.endpoint = endpoint.rstrip('/') + '/'
        self.token = clean_token(token)
        self.keystone = keystone
        session = session if session is not None else requests.Session()
        session.headers['User-Agent'] = USER_AGENT
        # verify is passed with every request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self.transport = Transport(session, timeout, (ca_cert or True) if validate_certs else False)
        self.sleep = sleep or time.sleep
        self.pacer = pacer or SharedPacer(self.endpoint, sleep=self.sleep)
        self.backoff = backoff or Backoff(retries)

    def authenticate(self):
        """Get a token with the Keystone password; return the Token."""
        token = self.keystone.authenticate(self.transport, self.backoff, self.sleep)
        self.token = token.value
        return token

    def call(self, action, params=None, accept=(), idempotent=True):
        """Run ``action``; return a Response for 200 and the statuses in ``accept``, raise K5MailError otherwise.

        A call that is not ``idempotent`` (sending a mail) is repeated only when the service cannot
        have acted on it; retries.should_retry decides. The Response tells whether an earlier
        attempt may have been processed (``earlier_attempt_may_have_acted``).
        """
        if not self.token:
            self.authenticate()
        form = [('Action', action), ('Version', API_VERSION)] + sorted((params or {}).items())
        first_token = self.token
        outcome = run_with_retries(IDEMPOTENT if idempotent else SEND,
                                   lambda: self._attempt(action, form, accept, first_token), self.backoff, self.sleep)
        response = outcome.result
        response.earlier_attempt_may_have_acted = outcome.earlier_attempt_may_have_acted
        return response

    def _attempt(self, action, form, accept, first_token):
        reply = self._post(action, form)
        if reply.status_code == 401 and self.keystone is not None and self.token == first_token:
            # The token expired: get a new one, once per call, and repeat. The service
            # checks the token before anything else, so the 401 request did nothing.
            self.authenticate()
            reply = self._post(action, form)
        status = reply.status_code
        if status == 200 or status in accept:
            return self._accepted(action, reply)
        error = error_from_reply(action, status, reply.headers, reply.content, url=self.endpoint)
        if status == 401 and self.keystone is None:
            error.hint = 'Give a fresh auth_token, or auth (Keystone password) so the module can get one'
        raise error

    def _post(self, action, form):
        with self.pacer.slot():
            return self.transport.post(action, self.endpoint, form, {
                'Content-Type': FORM_TYPE,
                'X-Auth-Token': self.token,
            })

    def _accepted(self, action, reply):
        request_id = (reply.headers.get('x-fj-request-id') or '').strip() or None
        root = None
        if reply.content and reply.content.strip():
            try:
                root = parse_xml(reply.content)
            except ValueError as exc:
                raise K5MailError(action, describe_non_xml(reply.headers, reply.content, exc), status=reply.status_code,
                                  request_id=request_id, url=self.endpoint)
        if root is not None:
            request_id = request_id or find_text(root, 'RequestId')
        return Response(action, reply.status_code, root, request_id)
