# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fjcloud-mail-external, run as a real subprocess against the emulator.

The contract of Terraform's ``external`` data source: one JSON object of strings
on stdin; one JSON object of strings on stdout and exit 0; on error exactly one
line on stderr, nothing on stdout and a non-zero exit; no side effects (the
emulator's request log shows only Keystone logins and read actions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness import DEMO_AUTH, LoopbackListener, smtp_user_of

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC_DIR = os.path.join(REPO_ROOT, 'src')
# tests/conftest.py links the checkout into a collections tree and names it here.
COLLECTIONS_ROOT = os.environ['ANSIBLE_COLLECTIONS_PATH']
if SRC_DIR not in sys.path:
    sys.path.insert(0, SRC_DIR)

from fjcloud_mail_external.program import READ_ACTIONS, ReadOnlyClient  # noqa: E402 (needs SRC_DIR)

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError  # noqa: E402

TOKEN_REQUESTS = {'authenticate'}


class Run:
    def __init__(self, completed, secrets):
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        for secret in secrets:
            assert secret not in self.stdout + self.stderr, 'a secret is in the output'

    @property
    def data(self):
        """The result, checked against the protocol: exit 0, one JSON object of strings."""
        assert self.rc == 0, self.stderr
        data = json.loads(self.stdout)
        assert isinstance(data, dict) and data
        assert all(isinstance(key, str) and isinstance(value, str) for key, value in data.items()), data
        return data

    @property
    def error(self):
        """The error line, checked against the protocol: non-zero exit, nothing on stdout, one line on stderr."""
        assert self.rc != 0
        assert self.stdout == ''
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and self.stderr.endswith('\n'), self.stderr
        assert lines[0].startswith('fjcloud-mail-external: ')
        return lines[0]


@pytest.fixture
def external(emu, tmp_path):
    """Run the program on a query (text or dict) with OS_* pointing at the emulator; ``env`` adds or removes (None);
    with ``private_dns`` (a resolver.PrivateResolver) only that name server answers the program's lookups."""

    def run(query, env=None, secrets=('demo-password',), private_dns=None):
        environ = dict((k, v) for k, v in os.environ.items() if not k.startswith('OS_') and k != 'FJCLOUD_MAIL_ENDPOINT')
        environ.update(
            PYTHONPATH=os.pathsep.join((SRC_DIR, COLLECTIONS_ROOT)),
            FJCLOUD_MAIL_STATE_DIR=str(tmp_path / 'state'),
            OS_AUTH_URL=emu.auth_url, OS_USERNAME=DEMO_AUTH['username'], OS_PASSWORD=DEMO_AUTH['password'],
            OS_USER_DOMAIN_NAME=DEMO_AUTH['user_domain_name'], OS_PROJECT_ID=DEMO_AUTH['project_id'],
            FJCLOUD_MAIL_ENDPOINT=emu.url, OS_CACERT=emu.ca_cert,
        )
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        text = query if isinstance(query, str) else json.dumps(query)
        argv = [sys.executable, '-m', 'fjcloud_mail_external']
        if private_dns:
            argv = private_dns.command(argv)
        completed = subprocess.run(argv, input=text, env=environ,
                                   capture_output=True, text=True, timeout=120, check=False)
        return Run(completed, secrets)

    return run


def requests_seen(emu):
    return [(record['service'], record['action']) for record in emu.log()]


def assert_only_reads(emu, *actions):
    seen = requests_seen(emu)
    assert [action for service, action in seen if service == 'mail'] == list(actions)
    assert set(action for service, action in seen if service == 'keystone') <= TOKEN_REQUESTS
    assert set(actions) <= READ_ACTIONS


def test_smtp_user_absent_then_present_without_the_password(emu, external):
    assert external({'data': 'smtp_user'}).data == {'exists': 'false', 'smtp_user': ''}
    token = emu.token()
    assert emu.mail('CreateSMTPUser', token).status_code == 200
    issued = smtp_user_of(emu)
    emu.clear_log()
    run = external({'data': 'smtp_user'}, secrets=('demo-password', issued['password']))
    assert run.data == {'exists': 'true', 'smtp_user': issued['user']}
    assert run.stderr == ''
    assert_only_reads(emu, 'GetSMTPUserInfo')
    assert smtp_user_of(emu) == issued


def test_smtp_user_password_only_when_asked(emu, external):
    emu.mail('CreateSMTPUser', emu.token())
    issued = smtp_user_of(emu)
    emu.clear_log()
    data = external({'data': 'smtp_user', 'include_password': 'true'}).data
    assert data == {'exists': 'true', 'smtp_user': issued['user'], 'smtp_password': issued['password']}
    assert external({'data': 'smtp_user', 'include_password': 'false'}, secrets=(issued['password'],)).data == {
        'exists': 'true', 'smtp_user': issued['user']}
    assert_only_reads(emu, 'GetSMTPUserInfo', 'GetSMTPUserInfo')


def test_identity_domain_address_and_unknown(emu, external):
    entry = emu.set_identity('example.com', status='Pending')
    emu.set_identity('sender@example.org', status='Success')
    emu.clear_log()
    assert external({'data': 'identity', 'identity': 'example.com'}).data == {
        'identity': 'example.com', 'identity_type': 'Domain', 'exists': 'true', 'verification_status': 'Pending',
        'verification_token': entry['token'], 'dns_record_name': '_niftycloudess.example.com',
        'dns_record_type': 'TXT', 'dns_record_value': entry['token'],
    }
    data = external({'data': 'identity', 'identity': 'sender@example.org'}).data
    assert (data['identity_type'], data['exists'], data['verification_status'], data['verification_token']) == (
        'EmailAddress', 'true', 'Success', '')
    data = external({'data': 'identity', 'identity': 'unknown.example.net'}).data
    assert (data['exists'], data['verification_status'], data['dns_record_name']) == ('false', '', '')
    assert_only_reads(emu, *['GetIdentityVerificationAttributes'] * 3)


def test_send_quota_as_strings_with_a_token(emu, external):
    emu.set_config(max_24hour_send=50, max_send_rate=2)
    token = emu.token()
    emu.clear_log()
    # As with the modules, a token alone: a half-given password login is refused.
    env = {'OS_PASSWORD': None, 'OS_USERNAME': None, 'OS_USER_DOMAIN_NAME': None, 'OS_TOKEN': token}
    run = external({'data': 'send_quota'}, env=env, secrets=(token,))
    assert run.data == {'max_24_hour_send': '50.0', 'max_send_rate': '2.0', 'sent_last_24_hours': '0.0'}
    assert_only_reads(emu, 'GetSendQuota')
    assert requests_seen(emu)[0] == ('mail', 'GetSendQuota')  # the token was used, no login


def test_query_keys_override_the_environment(emu, external):
    """Connection options from the query win over OS_*; an empty string means "not set"."""
    run = external({'data': 'smtp_user', 'endpoint': emu.url, 'auth_url': emu.auth_url, 'ca_cert': emu.ca_cert,
                    'region_name': '', 'api_timeout': '10', 'retries': '0'},
                   env={'FJCLOUD_MAIL_ENDPOINT': 'https://127.0.0.1:9/', 'OS_AUTH_URL': 'https://127.0.0.1:9/v3'})
    assert run.data['exists'] == 'false'


def test_validate_certs_false_warns_on_stderr_and_succeeds(emu, external):
    run = external({'data': 'smtp_user', 'validate_certs': 'false'}, env={'OS_CACERT': None})
    assert run.data == {'exists': 'false', 'smtp_user': ''}
    assert 'warning: validate_certs=false' in run.stderr


BAD_QUERIES = [
    ('', 'no query on stdin'),
    ('{"data": "smtp_user"', 'the query on stdin is not JSON'),
    ('["smtp_user"]', 'the query must be a JSON object of strings, got a list'),
    ('{"data": "identity", "identity": 5}', "query key 'identity' must be a string"),
    ('{"data": "smtp_user", "include_password": true}', "query key 'include_password' must be a string"),
    ('{"data": "smtp_user", "data": "send_quota"}', "the query has the key 'data' twice"),
    ({}, 'the query has no data key'),
    ({'data': 'smtp_users'}, "data 'smtp_users' is not one of smtp_user, identity, send_quota"),
    ({'data': 'smtp_user', 'region': 'jp-east-1'}, "unknown query key 'region'"),
    ({'data': 'identity'}, 'data = identity needs the identity key'),
    ({'data': 'identity', 'identity': 'not a domain'}, "identity 'not a domain' is not valid"),
    ({'data': 'send_quota', 'identity': 'example.com'}, 'query key identity is only used with data = identity'),
    ({'data': 'identity', 'identity': 'example.com', 'include_password': 'true'},
     'query key include_password is only used with data = smtp_user'),
    ({'data': 'smtp_user', 'include_password': 'please'}, 'include_password must be "true" or "false"'),
    ({'data': 'smtp_user', 'validate_certs': 'maybe'}, 'validate_certs must be "true" or "false"'),
    ({'data': 'smtp_user', 'api_timeout': '30s'}, "api_timeout must be a whole number, got '30s'"),
    ({'data': 'smtp_user', 'api_timeout': '0'}, 'api_timeout must be between 1 and 3600 seconds, got 0'),
    ({'data': 'smtp_user', 'endpoint': 'ftp://mail.example.com'},
     "endpoint (FJCLOUD_MAIL_ENDPOINT) 'ftp://mail.example.com' is not an http(s) URL"),
    ({'data': 'smtp_user', 'auth_url': 'http://127.0.0.1:5000/v3'}, 'auth_url (OS_AUTH_URL) '),
    ({'data': 'smtp_user', 'region_name': 'JP East'}, "region_name 'JP East' is not a region name"),
    ({'data': 'smtp_user', 'ca_cert': '/nonexistent/ca.pem'}, 'ca_cert /nonexistent/ca.pem is not a readable file'),
    ({'data': 'smtp_user', 'password': 'query-secret'}, 'password must not be in the query'),
    ({'data': 'smtp_user', 'auth_token': 'query-secret'}, 'auth_token must not be in the query'),
]


@pytest.mark.parametrize('query, expected', BAD_QUERIES, ids=[str(i) for i in range(len(BAD_QUERIES))])
def test_bad_query_is_one_line_and_no_request(emu, external, query, expected):
    run = external(query, secrets=('demo-password', 'query-secret'))
    assert run.rc == 2
    assert expected in run.error
    assert requests_seen(emu) == []


def test_no_password_in_the_environment(emu, external):
    error = external({'data': 'smtp_user'}, env={'OS_PASSWORD': None}).error
    assert error.startswith('fjcloud-mail-external: OS_PASSWORD is not set')
    assert requests_seen(emu) == []


def test_incomplete_credentials(emu, external):
    error = external({'data': 'smtp_user'}, env={'OS_USER_DOMAIN_NAME': None}).error
    assert 'auth is incomplete: missing user_domain_name' in error
    assert requests_seen(emu) == []


def test_wrong_password_fails_once_without_echoing_it(emu, external):
    run = external({'data': 'smtp_user'}, env={'OS_PASSWORD': 'wrong-secret'}, secrets=('wrong-secret',))
    assert run.rc == 1
    assert 'Keystone rejected the credentials of user demo-user' in run.error
    assert requests_seen(emu) == [('keystone', 'authenticate')]


def test_service_error_is_one_line(emu, external):
    emu.fault(service='mail', action='GetSendQuota', status=500, count=10)
    run = external({'data': 'send_quota', 'retries': '0'})
    assert run.rc == 1
    assert 'GetSendQuota failed: HTTP 500' in run.error
    assert [action for service, action in requests_seen(emu) if service == 'mail'] == ['GetSendQuota']


def test_read_only_client_refuses_writes_before_any_request(emu, tmp_path, monkeypatch):
    monkeypatch.setenv('FJCLOUD_MAIL_STATE_DIR', str(tmp_path / 'state'))
    client = ReadOnlyClient(emu.url, token=emu.token(), ca_cert=emu.ca_cert, retries=0)
    emu.clear_log()
    for action in ('CreateSMTPUser', 'DeleteSMTPUser', 'VerifyDomainIdentity', 'VerifyEmailIdentity',
                   'DeleteIdentity', 'SendEmail', 'SendRawEmail'):
        with pytest.raises(K5MailError, match='not sent: fjcloud-mail-external only reads'):
            client.call(action)
    assert client.call('GetSendQuota').status == 200
    assert requests_seen(emu) == [('mail', 'GetSendQuota')]


# -------------------------------------------- URLs, endpoints and network errors (issue 16, findings 5 and 9)

LEAK = 'leaked-secret-7f3a'
MALFORMED = ['https://admin:%s@127.0.0.1:4430x/' % LEAK, 'https://admin:%s@[::1/' % LEAK,
             'https://admin:%s@127.0.0.1:99999/' % LEAK, 'admin:%s@127.0.0.1:4430' % LEAK]
# Where a URL can come from: the query, or the environment.
URL_SOURCES = [('query', 'endpoint'), ('query', 'auth_url'), ('env', 'FJCLOUD_MAIL_ENDPOINT'), ('env', 'OS_AUTH_URL')]


@pytest.mark.parametrize('source, name', URL_SOURCES, ids=['endpoint', 'auth_url', 'FJCLOUD_MAIL_ENDPOINT', 'OS_AUTH_URL'])
@pytest.mark.parametrize('url', MALFORMED, ids=['bad-port', 'bad-bracket', 'port-99999', 'no-scheme'])
def test_a_malformed_url_with_user_info_is_never_on_stderr(emu, external, source, name, url):
    query = {'data': 'smtp_user'}
    if source == 'query':
        query[name] = url
        run = external(query, secrets=('demo-password', LEAK))
    else:
        run = external(query, env={name: url}, secrets=('demo-password', LEAK))
    assert run.rc == 2
    assert 'must not hold a user name or password' in run.error
    assert requests_seen(emu) == []


def test_a_host_name_that_does_not_resolve_fails_at_once_with_a_hint(emu, external, private_dns):
    # The real resolver of the C library is asked, but only the private name server on loopback answers (NXDOMAIN).
    run = external({'data': 'smtp_user', 'endpoint': 'https://mail.jp-east-9.invalid'}, private_dns=private_dns)
    assert run.rc == 1
    assert 'the host name of https://mail.jp-east-9.invalid/ does not resolve' in run.error
    assert 'Check region_name and endpoint' in run.error and ' after ' not in run.error
    assert private_dns.lookups('mail.jp-east-9.invalid') == 1, private_dns.queries  # not retried


@pytest.fixture
def proxy():
    recorder = LoopbackListener()
    yield recorder
    recorder.close()


@pytest.mark.parametrize('region', [None, 'jp-east-3'])
def test_auth_smtp_user_info_and_the_program_pick_the_same_endpoint(emu, external, proxy, ansible, region, private_dns):
    """The same inputs without an endpoint: auth returns, and smtp_user_info and the program call, one URL.

    The mail API calls go to a local proxy that records the host asked for, so no name is resolved;
    all runs have the private name server, so that even a lookup of the default host would stay on loopback.
    """
    host = 'mail.%s.cloud.global.fujitsu.com' % (region or 'jp-east-1')
    auth = dict(DEMO_AUTH, auth_url=emu.auth_url)
    args = dict(auth=auth, ca_cert=emu.ca_cert, retries=0)
    if region:
        args['region_name'] = region
    ansible.private_dns = private_dns
    env = dict(proxy.proxy_env(), FJCLOUD_MAIL_ENDPOINT=None)  # the default endpoint
    run = ansible.module('auth', args, env=env)
    assert run.rc == 0, run.output
    assert run.result['endpoint'] == 'https://' + host
    run = ansible.module('smtp_user_info', args, env=env)
    assert run.rc != 0 and 'GetSMTPUserInfo failed' in run.result['msg']
    run = external({'data': 'smtp_user', 'retries': '0'}, env=dict(env, OS_REGION_NAME=region), private_dns=private_dns)
    assert run.rc == 1 and 'GetSMTPUserInfo failed' in run.error
    # CONNECT's HTTP version is the Python's (1.0 before 3.12): only the host asked for counts.
    assert [line.rsplit(' ', 1)[0] for line in proxy.first_lines()] == ['CONNECT %s:443' % host] * 2
    assert [action for service, action in requests_seen(emu) if service == 'mail'] == []
    assert not private_dns.asked_for(host), private_dns.queries
