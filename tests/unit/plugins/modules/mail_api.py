# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process against a scripted mail API and Keystone.

A test lists the exact HTTP calls it expects with their canned replies
(``expect`` and ``expect_login``), then runs the module with ``run``, which
returns the module's result (the keyword arguments of exit_json or fail_json).
A call that is not expected, or an expected one that never happens, fails
the test. After every run, ``run`` also checks what each test would
otherwise repeat: every mail API call carried the run's token, and no
password or token given to the module appears in its result or warnings.

The replies have the shapes of the service's reference pages
(/work/shared/spec) and of the emulator's replies (k5emu.mailapi): a default
namespace, ``{Action}Result`` and ``ResponseMetadata/RequestId``, the
``x-fj-request-id`` header, an empty 401 and ``AccessDeniedException`` for 403.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
from unittest import mock

from ansible.module_utils import basic

from ansible_collections.fjcloud.mail.plugins.module_utils.client import K5MailClient
from ansible_collections.fjcloud.mail.plugins.module_utils.connection import ENV_FALLBACKS, ConnectionSettings
from ansible_collections.fjcloud.mail.plugins.module_utils.pacing import Pacer
from ansible_collections.fjcloud.mail.plugins.module_utils.retries import Backoff
from fake_http import Reply, form

ENDPOINT = 'https://mail.jp-east-1.cloud.global.fujitsu.com'
AUTH_URL = 'https://identity.jp-east-1.cloud.global.fujitsu.com/v3'
# Secrets the tests give to the modules; ``run`` checks that none of them comes back.
TOKEN = 'gAAAAABk-given-token-SECRET'
PASSWORD = 'k5-password-SECRET'
NAMESPACE = 'http://mail.k5.fujitsu.com/doc/2010-12-01/'
REQUEST_ID = '65ce6f91-4e8d-44a1-b33e-5ba3de2f528b'
KEYSTONE_AUTH = dict(username='alice', password=PASSWORD, user_domain_name='ct0001', project_id='p1')


# ----------------------------------------------------------------- replies

def _xml(status, document, request_id):
    return Reply(status, '<?xml version="1.0" encoding="UTF-8"?>\n' + document,
                 {'Content-Type': 'application/xml', 'x-fj-request-id': request_id})


def ok(action, result='', request_id=REQUEST_ID):
    """The 200 reply of ``action``; ``result`` is the XML inside ``{action}Result``."""
    return _xml(200, '<{0}Response xmlns="{1}">\n  <{0}Result>{2}</{0}Result>\n  <ResponseMetadata>\n'
                     '    <RequestId>{3}</RequestId>\n  </ResponseMetadata>\n</{0}Response>\n'.format(
                         action, NAMESPACE, result, request_id), request_id)


def error(status, code, message, request_id=REQUEST_ID):
    """An ``ErrorResponse`` (every error status but 401 and 403)."""
    error_type = 'Receiver' if status >= 500 else 'Sender'
    return _xml(status, '<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
                        '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
                % (NAMESPACE, error_type, code, message, request_id), request_id)


def unauthorized():
    """401: no body."""
    return Reply(401, b'', {'x-fj-request-id': REQUEST_ID})


def access_denied():
    return Reply(403, b'<AccessDeniedException><Message>Access Denied</Message></AccessDeniedException>',
                 {'Content-Type': 'application/xml', 'x-fj-request-id': REQUEST_ID})


def keystone_token(token, expires_at='2026-11-24T13:00:00.000000Z', mail_url=ENDPOINT):
    """Keystone's 201: the token in X-Subject-Token, its expiry and catalog in the body."""
    catalog = [{'type': 'mail', 'name': 'mail', 'endpoints': [
        {'interface': 'public', 'region': 'jp-east-1', 'region_id': 'jp-east-1', 'url': mail_url}]}]
    body = {'token': {'methods': ['password'], 'expires_at': expires_at, 'catalog': catalog}}
    return Reply(201, json.dumps(body), {'Content-Type': 'application/json', 'X-Subject-Token': token})


def keystone_rejected():
    body = {'error': {'code': 401, 'title': 'Unauthorized', 'message': 'The request you have made requires authentication.'}}
    return Reply(401, json.dumps(body), {'Content-Type': 'application/json'}, reason='Unauthorized')


# ------------------------------------------------------------ module runs

class AnsibleExitJson(Exception):
    """exit_json was called; args[0] is the result."""


class AnsibleFailJson(Exception):
    """fail_json was called; args[0] is the result."""


@contextlib.contextmanager
def module_args(args):
    """Give ``args`` to the AnsibleModule created inside, on every ansible-core from 2.16."""
    try:
        from ansible.module_utils.testing import patch_module_args  # ansible-core 2.19 and later
    except ImportError:
        patch_module_args = None
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
    else:
        serialized = json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode('utf-8')
        with mock.patch.object(basic, '_ANSIBLE_ARGS', serialized):
            yield


class ModuleRunner:
    """The scripted mail API and Keystone of one test, and the runs of modules against them."""

    def __init__(self, session, clock, monkeypatch):
        self.session = session
        self.clock = clock
        self.warnings = []
        self._tokens = []  # the token each expected call must carry, None for a Keystone login
        for names in ENV_FALLBACKS.values():
            for name in names:
                monkeypatch.delenv(name, raising=False)

        class ScriptedClient(K5MailClient):
            """The real client over the scripted session; pacing and backoff wait on the fake clock."""

            def __init__(self, **kwargs):
                super().__init__(session=session, pacer=Pacer(clock=clock, sleep=clock.sleep), sleep=clock.sleep,
                                 backoff=Backoff(kwargs['retries'], rng=lambda: 0.5), **kwargs)

        monkeypatch.setattr(ConnectionSettings, 'client_class', ScriptedClient)
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', _exit_json)
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', _fail_json)
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda module, warning, **kwargs: self.warnings.append(warning))

    def expect(self, action, reply=None, token=TOKEN, raises=None, **params):
        """Expect a call of ``action`` with exactly ``params``, answered with ``reply`` (or ``raises`` raised)."""
        self.session.expect(ENDPOINT + '/', reply, raises=raises, form=form(action, **params))
        self._tokens.append(token)
        return self

    def expect_login(self, reply, auth_url=AUTH_URL):
        """Expect a Keystone password login (its body is checked by ``run``)."""
        self.session.expect(auth_url + '/auth/tokens', reply)
        self._tokens.append(None)
        return self

    def run(self, main, check_mode=False, diff=False, **options):
        """Run ``main`` with ``options`` (default: auth_token and endpoint); return the result.

        A failed run returns the result of fail_json, with ``failed`` true and ``msg``.
        """
        args = dict(auth_token=TOKEN, endpoint=ENDPOINT)
        args.update(options)
        args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
        first_call = len(self.session.calls)
        result = None
        with module_args(args):
            try:
                main()
            except (AnsibleExitJson, AnsibleFailJson) as exc:
                result = exc.args[0]
        assert result is not None, 'the module returned without exit_json or fail_json'
        self.session.assert_done()
        self._check_calls(self.session.calls[first_call:], self._tokens[first_call:], args)
        self._check_no_secret(result, args)
        return result

    def _check_calls(self, calls, tokens, args):
        """Each mail API call carried the expected token, each login the given password."""
        for number, (call, token) in enumerate(zip(calls, tokens), 1):
            # Compared into a bool first, so that a failure does not print a secret.
            if token is None:
                sent = json.loads(call['data'])['auth']['identity']['password']['user']['password']
                same = sent == (args.get('auth') or {}).get('password')
                assert same, 'call %d: the login does not carry the password of auth' % number
                assert 'X-Auth-Token' not in call['headers'], 'call %d: a login carries an X-Auth-Token' % number
            else:
                same = call['headers'].get('X-Auth-Token') == token
                assert same, 'call %d: X-Auth-Token is missing or not the expected token' % number

    def _check_no_secret(self, result, args):
        text = json.dumps([result, self.warnings])
        secrets = [args.get('auth_token'), (args.get('auth') or {}).get('password')]
        for secret in secrets:
            if secret:
                assert secret not in text, 'a password or token given to the module is in its result or warnings'

    @property
    def actions(self):
        """The actions called so far, in order (Keystone logins as 'login')."""
        return [dict(call['data']).get('Action') if isinstance(call['data'], list) else 'login'
                for call in self.session.calls]


def _exit_json(module, **kwargs):
    raise AnsibleExitJson(kwargs)


def _fail_json(module, msg, **kwargs):
    kwargs.update(failed=True, msg=msg)
    raise AnsibleFailJson(kwargs)
