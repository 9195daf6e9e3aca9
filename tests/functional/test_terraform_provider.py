# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edge cases of the provider fjcloud/k5mail, without Terraform: its configuration, its session and its wait.

test_terraform.py runs it under real Terraform; here its Python objects are
called directly, with a scripted client where a service is needed.
"""

from __future__ import annotations

import threading

import pytest

pytest.importorskip('tf', reason="tf, the provider's plugin protocol, is not installed (tests/requirements.txt, Python 3.11+)")

# pylint: disable=wrong-import-position; after the skip
from tf.types import Unknown  # noqa: E402
from tf.utils import Diagnostics  # noqa: E402

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError  # noqa: E402
from ansible_collections.fjcloud.mail.plugins.module_utils.replies import Response, parse_xml  # noqa: E402
from terraform_provider_k5mail.provider import K5MailProvider, Session  # noqa: E402
from terraform_provider_k5mail.resources import Keepers, identity_problem, wait_for_verification  # noqa: E402

NS = 'http://mail.k5.fujitsu.com/doc/2010-12-01/'
DEMO = dict(auth_url='https://127.0.0.1:9/v3', username='demo-user', password='demo-password', user_domain_name='ct1',
            project_id='p1', endpoint='https://127.0.0.1:9/')


def configure(config, environ=None):
    """``(provider, diagnostics)`` of a ConfigureProvider with ``config`` (unset arguments null, as Terraform sends them)."""
    provider = K5MailProvider(environ=environ or {})
    diags = Diagnostics()
    full = dict.fromkeys(attribute.name for attribute in provider.get_provider_schema(diags).attributes)
    full.update(config)
    provider.configure_provider(diags, full)
    return provider, diags


def errors_by_path(diags):
    return dict((tuple(d.path or ()), d.detail) for d in diags.diagnostics if d.severity == 'error')


@pytest.mark.parametrize('config, path, text', [
    (dict(DEMO, region_name='JP East'), 'region_name', "region_name 'JP East' is not a region name"),
    (dict(DEMO, endpoint='ftp://x.example/'), 'endpoint', 'is not an http(s) URL'),
    (dict(DEMO, auth_url='http://127.0.0.1/v3'), 'auth_url', 'uses http://'),
    (dict(DEMO, api_timeout=0), 'api_timeout', 'api_timeout must be between 1 and 3600 seconds, got 0'),
    (dict(DEMO, retries=21), 'retries', 'retries must be between 0 and 20, got 21'),
    (dict(DEMO, ca_cert='/nonexistent/ca.pem'), 'ca_cert', 'ca_cert /nonexistent/ca.pem is not a readable file'),
    (dict(DEMO, password=None), 'password', 'auth is incomplete: missing password'),
    (dict(DEMO, project_id=None), 'project_id', 'auth is incomplete: missing project_id or project_name'),
    (dict(DEMO, api_timeout=2.5), 'api_timeout', 'api_timeout must be a whole number, got 2.5'),
    (dict(DEMO, username=Unknown), 'username', 'The provider needs username during the plan'),
])
def test_a_bad_argument_is_an_error_on_its_path_and_no_client_is_built(config, path, text):
    provider, diags = configure(config)
    errors = errors_by_path(diags)
    assert list(errors) == [(path,)], errors
    assert text in errors[(path,)]
    with pytest.raises(K5MailError, match='not configured'):
        provider.session  # pylint: disable=pointless-statement


def test_arguments_fall_back_to_the_environment_and_say_so():
    environ = dict(OS_AUTH_URL=DEMO['auth_url'], OS_USERNAME='demo-user', OS_PASSWORD='demo-password',
                   OS_USER_DOMAIN_NAME='ct1', OS_PROJECT_ID='p1', FJCLOUD_MAIL_ENDPOINT=DEMO['endpoint'])
    provider, diags = configure({}, environ)
    assert diags.diagnostics == []
    assert provider.session is not None
    # An empty string is unset, as for a variable that defaults to "".
    provider, diags = configure({'region_name': ''}, dict(environ, OS_REGION_NAME='Bad Region'))
    assert errors_by_path(diags)[('region_name',)].endswith('(from OS_REGION_NAME)')


def test_no_secret_reaches_a_diagnostic():
    secret = 'pa55-w0rd'
    _provider, diags = configure(dict(DEMO, endpoint='https://user:%s@127.0.0.1/' % secret, password=secret))
    assert errors_by_path(diags)
    for diagnostic in diags.diagnostics:
        assert secret not in '%s %s' % (diagnostic.summary, diagnostic.detail)
    provider, diags = configure(dict(DEMO, password=secret))
    provider.report(diags, K5MailError('Keystone authentication', 'rejected %s' % secret, hint='see %s' % secret))
    (diagnostic,) = diags.diagnostics
    assert (diagnostic.summary, diagnostic.detail) == ('Keystone authentication failed', 'rejected ********. see ********')


def reply(action, result):
    body = '<%sResponse xmlns="%s"><%sResult>%s</%sResult></%sResponse>' % (action, NS, action, result, action, action)
    return Response(action, 200, parse_xml(body), 'request-id')


class ScriptedService:
    """A client whose ``call`` answers ListIdentities (pages of 100) and GetIdentityVerificationAttributes."""

    def __init__(self, identities, fail=False):
        self.identities = identities
        self.fail = fail
        self.calls = []
        self.lock = threading.Lock()

    def call(self, action, params=None, accept=(), idempotent=True):  # pylint: disable=unused-argument
        with self.lock:
            self.calls.append((action, len(params or {})))
        if self.fail:
            raise K5MailError(action, 'HTTP 500 from the service')
        if action == 'ListIdentities':
            start = int(params.get('NextToken', 0))
            page = self.identities[start:start + 100]
            token = '<NextToken>%d</NextToken>' % (start + 100) if start + 100 < len(self.identities) else ''
            members = ''.join('<member>%s</member>' % name for name in page)
            return reply(action, '<Identities>%s</Identities>%s' % (members, token))
        if action == 'GetIdentityVerificationAttributes':
            entries = ''.join('<entry><key>%s</key><value><VerificationStatus>Success</VerificationStatus></value></entry>'
                              % name for name in params.values())
            return reply(action, '<VerificationAttributes>%s</VerificationAttributes>' % entries)
        raise AssertionError('unexpected call of %s' % action)


def read_all_at_once(session, names):
    """Read every name from its own thread, as Terraform's refresh does; return {name: attributes or the error}."""
    results = {}

    def read(name):
        try:
            results[name] = session.identity(name)
        except K5MailError as exc:
            results[name] = exc

    threads = [threading.Thread(target=read, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_one_process_reads_the_identities_once_in_batches_of_a_hundred():
    names = ['sender%03d@example.com' % index for index in range(150)]
    service = ScriptedService(names)
    results = read_all_at_once(Session(service, []), names + ['gone@example.com'])
    assert results['gone@example.com'] is None
    assert all(results[name] == {'status': 'Success', 'token': None} for name in names)
    # ListIdentities: MaxItems (+ NextToken); the attributes: 100 names, then 50.
    assert service.calls == [('ListIdentities', 1), ('ListIdentities', 2),
                             ('GetIdentityVerificationAttributes', 100), ('GetIdentityVerificationAttributes', 50)]


def test_a_failed_read_is_not_repeated_for_every_resource():
    service = ScriptedService(['a@example.com'], fail=True)
    results = read_all_at_once(Session(service, []), ['a@example.com', 'b@example.com', 'c@example.com'])
    assert all(isinstance(result, K5MailError) for result in results.values())
    assert service.calls == [('ListIdentities', 1)]


def test_the_read_gate_refuses_every_change_before_any_request():
    service = ScriptedService([])
    session = Session(service, [])
    for action in ('CreateSMTPUser', 'DeleteSMTPUser', 'VerifyEmailIdentity', 'VerifyDomainIdentity', 'DeleteIdentity',
                   'SendEmail'):
        with pytest.raises(K5MailError, match='not sent: a refresh, a plan, an import or a data source only reads'):
            session.reader.call(action)
    assert service.calls == []


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class PendingDomain:
    """A session whose domain stays at ``status``."""

    def __init__(self, status):
        self.status = status
        self.reads = 0
        self.reader = self

    def call(self, action, params=None, accept=(), idempotent=True):  # pylint: disable=unused-argument
        self.reads += 1
        if self.status is None:
            return reply(action, '<VerificationAttributes/>')
        return reply(action, '<VerificationAttributes><entry><key>example.org</key><value><VerificationStatus>%s'
                             '</VerificationStatus><VerificationToken>tok</VerificationToken></value></entry>'
                             '</VerificationAttributes>' % self.status)

    def identity_changed(self, identity, attributes):
        pass


def test_the_wait_ends_at_its_timeout_with_the_record_to_publish():
    clock, session = FakeClock(), PendingDomain('Pending')
    with pytest.raises(K5MailError) as failure:
        wait_for_verification(session, 'example.org', 100, clock=clock, sleep=clock.sleep)
    assert str(failure.value) == ('Waiting for the verification failed: the verification of example.org is still Pending '
                                  'after 100 seconds; publish the TXT record _niftycloudess.example.org with the value tok')
    assert clock.sleeps == [2, 4, 8, 16, 30, 30, 10]
    assert session.reads == 8


@pytest.mark.parametrize('status, message', [
    ('Failed', 'the verification of example.org failed; publish the TXT record'),
    (None, 'example.org is not an identity of the contract: create it with k5mail_domain_identity first'),
])
def test_the_wait_stops_at_a_failure_or_a_missing_identity(status, message):
    clock = FakeClock()
    with pytest.raises(K5MailError, match=message):
        wait_for_verification(PendingDomain(status), 'example.org', 900, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_keepers_recorded_where_there_were_none_do_not_replace():
    keepers = Keepers()
    assert keepers.semantically_equal(None, {'rotation': '1'})
    assert keepers.semantically_equal({'rotation': '1'}, {'rotation': '1'})
    assert not keepers.semantically_equal({'rotation': '1'}, {'rotation': '2'})
    assert not keepers.semantically_equal({'rotation': '1'}, None)


@pytest.mark.parametrize('argument, value, problem', [
    ('email', 'ops@Example.com', 'write the domain in lower case (example.com)'),
    ('email', 'example.com', "'example.com' is not an email address"),
    ('domain', 'Example.com', 'write the domain in lower case (example.com)'),
    ('domain', 'ops@example.com', "'ops@example.com' is an email address, not a domain"),
    ('domain', 'localhost', 'has no dot'),
    ('email', 'Ops@example.com', None),
    ('domain', 'mail.example.com', None),
])
def test_identity_names_are_checked_before_any_request(argument, value, problem):
    found = identity_problem(argument, value)
    assert (found is None) if problem is None else (problem in found), found
