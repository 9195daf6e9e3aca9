# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the K5 mail service emulator over real HTTPS."""

from __future__ import annotations

import datetime
import json
import os
import re
import time

import pytest
import requests
from lxml import etree

from k5emu import DEFAULT_NAMESPACE, DEFAULT_PROJECT_ID, DENIED_PASSWORD, DENIED_USER
from k5emu.control import Emulator, EmulatorError
from k5emu.state import State

EXPIRES_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$')
UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')


def xml(reply):
    return etree.fromstring(reply.content)


def text(root, name):
    found = root.xpath('//*[local-name()=$name]', name=name)
    assert len(found) == 1, (name, reply_text(root))
    return (found[0].text or '').strip()


def reply_text(root):
    return etree.tostring(root).decode()


def assert_error(reply, status, code, error_type='Sender'):
    assert reply.status_code == status, reply.text
    assert reply.headers['Content-Type'].startswith('application/xml')
    root = xml(reply)
    assert root.tag == '{%s}ErrorResponse' % DEFAULT_NAMESPACE
    assert text(root, 'Type') == error_type
    assert text(root, 'Code') == code
    assert text(root, 'RequestId') == reply.headers['x-fj-request-id']
    return root


# ------------------------------------------------------------------ Keystone
def test_token_is_issued(emu):
    before = datetime.datetime.now(datetime.timezone.utc)
    reply = emu.authenticate()
    assert reply.status_code == 201
    assert len(reply.headers['X-Subject-Token']) > 32
    assert 'X-Subject-Token' in dict(reply.raw.headers.items())
    token = reply.json()['token']
    assert token['methods'] == ['password']
    assert EXPIRES_RE.match(token['expires_at'])
    expires = datetime.datetime.strptime(token['expires_at'], '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc)
    assert abs((expires - before).total_seconds() - 10800) < 30
    assert token['project']['id'] == DEFAULT_PROJECT_ID
    assert token['project']['domain']['name'] == 'ct0000000001'
    mail = [entry for entry in token['catalog'] if entry['type'] == 'mail'][0]
    assert mail['endpoints'][0]['url'] == emu.url
    assert mail['endpoints'][0]['region'] == 'jp-east-1'
    # scope by project name and domain
    assert emu.authenticate(project_name='demo-project').status_code == 201


def test_authentication_failures(emu):
    assert emu.authenticate(password='wrong').status_code == 401
    assert emu.authenticate(user='nobody').status_code == 401
    assert emu.authenticate(contract='ct9999999999').status_code == 401
    assert emu.authenticate(project_id='f' * 32).status_code == 401
    reply = emu.authenticate(password='wrong')
    assert reply.json()['error']['code'] == 401
    assert 'X-Subject-Token' not in reply.headers
    reply = requests.post(emu.auth_url + '/auth/tokens', data=b'{not json', verify=emu.ca_cert, timeout=10,
                          headers={'Content-Type': 'application/json'})
    assert reply.status_code == 400
    assert reply.json()['error']['code'] == 400


def test_lockout_after_five_failures(emu):
    for dummy in range(5):
        assert emu.authenticate(password='wrong').status_code == 401
    reply = emu.authenticate()
    assert reply.status_code == 401
    assert 'locked' in reply.json()['error']['message']
    # another user of the same contract is not locked
    assert emu.authenticate(user=DENIED_USER, password=DENIED_PASSWORD).status_code == 201
    emu.reset()
    assert emu.authenticate().status_code == 201


def test_success_clears_failure_count(emu):
    for dummy in range(4):
        assert emu.authenticate(password='wrong').status_code == 401
    assert emu.authenticate().status_code == 201
    for dummy in range(4):
        assert emu.authenticate(password='wrong').status_code == 401
    assert emu.authenticate().status_code == 201


def test_token_expiry(emu):
    emu.set_config(token_ttl=1)
    reply = emu.authenticate()
    token = reply.headers['X-Subject-Token']
    assert emu.mail('GetSMTPUserInfo', token).status_code == 404
    time.sleep(1.1)
    reply = emu.mail('GetSMTPUserInfo', token)
    assert reply.status_code == 401
    assert reply.content == b''


def test_expire_tokens(emu):
    token = emu.token()
    assert emu.mail('GetSMTPUserInfo', token).status_code == 404
    assert emu.expire_tokens() >= 1
    assert emu.mail('GetSMTPUserInfo', token).status_code == 401


def test_token_validate_and_revoke(emu):
    token = emu.token()
    other = emu.token()
    headers = {'X-Auth-Token': token, 'X-Subject-Token': other}
    reply = requests.get(emu.auth_url + '/auth/tokens', headers=headers, verify=emu.ca_cert, timeout=10)
    assert reply.status_code == 200
    reply = requests.delete(emu.auth_url + '/auth/tokens', headers=headers, verify=emu.ca_cert, timeout=10)
    assert reply.status_code == 204
    assert emu.mail('GetSMTPUserInfo', other).status_code == 401
    assert emu.mail('GetSMTPUserInfo', token).status_code == 404


# ------------------------------------------------------------------ mail API
def test_no_token_is_401_with_empty_body(emu):
    for token in (None, '', 'gAAAAAnot-a-token'):
        reply = emu.mail('GetSMTPUserInfo', token)
        assert reply.status_code == 401
        assert reply.content == b''
        assert UUID_RE.match(reply.headers['x-fj-request-id'])


def test_token_header_any_case(emu):
    token = emu.token()
    reply = emu.mail('GetSMTPUserInfo', headers={'x-auth-token': token})
    assert reply.status_code == 404


def test_denied_user_gets_403(emu):
    token = emu.token(user=DENIED_USER, password=DENIED_PASSWORD)
    reply = emu.mail('CreateSMTPUser', token)
    assert reply.status_code == 403
    root = xml(reply)
    assert root.tag == 'AccessDeniedException'
    assert text(root, 'Message') == 'Access Denied'
    assert UUID_RE.match(reply.headers['x-fj-request-id'])
    assert emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user'] is None


def test_smtp_user_lifecycle(emu):
    token = emu.token()
    reply = emu.mail('CreateSMTPUser', token, params={'Version': 'v1.0'})
    assert reply.status_code == 200, reply.text
    assert reply.headers['Content-Type'] == 'application/xml'
    assert reply.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<CreateSMTPUserResponse xmlns="%s">\n  <' % DEFAULT_NAMESPACE)
    root = xml(reply)
    assert root.tag == '{%s}CreateSMTPUserResponse' % DEFAULT_NAMESPACE
    assert [etree.QName(child).localname for child in root] == ['CreateSMTPUserResult', 'ResponseMetadata']
    user, password = text(root, 'SMTPUser'), text(root, 'SMTPPassword')
    assert re.match(r'^[A-Z0-9]{20}$', user)
    assert re.match(r'^[A-Za-z0-9+/]{40}$', password)
    request_id = text(root, 'RequestId')
    assert UUID_RE.match(request_id)
    assert reply.headers['x-fj-request-id'] == request_id
    stored = emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user']
    assert (stored['user'], stored['password']) == (user, password)
    assert stored['created_at']

    assert_error(emu.mail('CreateSMTPUser', token), 409, 'AlreadyExists')

    reply = emu.mail('GetSMTPUserInfo', token)
    assert reply.status_code == 200
    root = xml(reply)
    assert (text(root, 'SMTPUser'), text(root, 'SMTPPassword')) == (user, password)
    assert text(root, 'RequestId') == reply.headers['x-fj-request-id'] != request_id

    reply = emu.mail('DeleteSMTPUser', token)
    assert reply.status_code == 200
    root = xml(reply)
    assert root.tag == '{%s}DeleteSMTPUserResponse' % DEFAULT_NAMESPACE
    assert list(root.xpath('//*[local-name()="DeleteSMTPUserResult"]')[0]) == []
    assert text(root, 'RequestId') == reply.headers['x-fj-request-id']

    assert_error(emu.mail('GetSMTPUserInfo', token), 404, 'NotFound')
    assert_error(emu.mail('DeleteSMTPUser', token), 404, 'NotFound')
    assert emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user'] is None
    # a new user gets new credentials
    root = xml(emu.mail('CreateSMTPUser', token))
    assert text(root, 'SMTPUser') != user


def test_request_validation(emu):
    token = emu.token()
    assert_error(emu.mail('GetSMTPUserInfo', token, headers={'User-Agent': 'python-requests'}), 400, 'InvalidParameterValue')
    assert_error(emu.mail('GetSMTPUserInfo', token, headers={'Content-Type': 'application/json'}), 400, 'InvalidParameterValue')
    assert_error(emu.mail(None, token), 400, 'MissingAction')
    assert_error(emu.mail('NoSuchAction', token), 400, 'InvalidAction')
    assert_error(emu.mail('SendEmail', token), 400, 'MissingParameter')
    assert_error(emu.mail('GetSMTPUserInfo', token, params={'Version': 'v2.0'}), 400, 'InvalidParameterValue')
    assert_error(emu.mail('GetSMTPUserInfo', token, params={'Bogus': 'x'}), 400, 'InvalidParameterValue')
    # the charset parameter and Version v1.0 are fine
    assert emu.mail('GetSMTPUserInfo', token, params={'Version': 'v1.0'},
                    headers={'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8'}).status_code == 404
    emu.set_config(user_agent_check=False)
    assert emu.mail('GetSMTPUserInfo', token, headers={'User-Agent': 'other'}).status_code == 404


def test_rate_limit(emu):
    emu.set_config(min_interval=2.0)
    token = emu.token()
    assert emu.mail('GetSMTPUserInfo', token).status_code == 404
    # The waits count from when the emulator took the accepted request (its log), not from when it was sent:
    # a slow machine cannot move the requests below to the other side of the interval.
    accepted_at = emu.log()[-1]['time']
    root = assert_error(emu.mail('GetSMTPUserInfo', token), 400, 'Throttling')
    assert text(root, 'Message') == 'Service use limit exceeded.'
    # 401s neither count nor get throttled
    assert emu.mail('GetSMTPUserInfo', 'bad-token').status_code == 401
    time.sleep(max(0, accepted_at + 0.5 - time.time()))
    assert_error(emu.mail('CreateSMTPUser', token), 400, 'Throttling')
    # refused requests did not restart the clock
    time.sleep(max(0, accepted_at + 2.4 - time.time()))
    assert emu.mail('CreateSMTPUser', token).status_code == 200
    assert_error(emu.mail('GetSMTPUserInfo', token), 400, 'Throttling')
    statuses = [r['status'] for r in emu.log() if r['service'] == 'mail']
    assert statuses == [404, 400, 401, 400, 200, 400]


def test_restart_keeps_smtp_user(emu):
    token = emu.token()
    root = xml(emu.mail('CreateSMTPUser', token))
    user, password = text(root, 'SMTPUser'), text(root, 'SMTPPassword')
    url = emu.url
    emu.restart()
    assert emu.url == url
    # tokens do not survive a restart
    assert emu.mail('GetSMTPUserInfo', token).status_code == 401
    root = xml(emu.mail('GetSMTPUserInfo', emu.token()))
    assert (text(root, 'SMTPUser'), text(root, 'SMTPPassword')) == (user, password)
    with open(os.path.join(emu.state_dir, 'state.json'), encoding='utf-8') as handle:
        assert json.load(handle)['contracts'][DEFAULT_PROJECT_ID]['smtp_user']['user'] == user


# -------------------------------------------------------------------- faults
def test_fault_error_500(emu):
    token = emu.token()
    emu.fault(status=500, body='error', count=2)
    for dummy in range(2):
        root = assert_error(emu.mail('CreateSMTPUser', token), 500, 'InternalFailure', 'Receiver')
        assert root.tag == '{%s}ErrorResponse' % DEFAULT_NAMESPACE
    assert emu.mail('CreateSMTPUser', token).status_code == 200
    assert [r['fault'] for r in emu.log() if r['service'] == 'mail'] == [True, True, False]


def test_fault_error_with_code(emu):
    token = emu.token()
    emu.fault(status=400, code='Throttling', message='Service use limit exceeded.')
    assert_error(emu.mail('GetSMTPUserInfo', token), 400, 'Throttling')


@pytest.mark.parametrize('kind, content_type', [('html', 'text/html'), ('garbage', 'application/xml'), ('empty', None)])
def test_fault_bodies(emu, kind, content_type):
    token = emu.token()
    emu.fault(status=502, body=kind)
    reply = emu.mail('CreateSMTPUser', token)
    assert reply.status_code == 502
    if content_type:
        assert reply.headers['Content-Type'].startswith(content_type)
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(reply.content)
    else:
        assert reply.content == b''
    assert emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user'] is None
    assert emu.log()[-1]['fault'] is True


def test_fault_truncated_and_drop(emu):
    token = emu.token()
    emu.fault(body='truncated')
    with pytest.raises(requests.RequestException):
        emu.mail('GetSMTPUserInfo', token)
    emu.fault(drop=True)
    with pytest.raises(requests.ConnectionError):
        emu.mail('GetSMTPUserInfo', token)
    assert emu.mail('GetSMTPUserInfo', token).status_code == 404
    log = [r for r in emu.log() if r['service'] == 'mail']
    assert [(r['status'], r['fault']) for r in log] == [(500, True), (None, True), (404, False)]


def test_fault_after_processing(emu):
    token = emu.token()
    emu.fault(action='CreateSMTPUser', drop=True, after=True)
    with pytest.raises(requests.ConnectionError):
        emu.mail('CreateSMTPUser', token)
    # the user was created although the reply was lost
    assert emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user'] is not None
    emu.fault(action='GetSMTPUserInfo', body='truncated', after=True)
    with pytest.raises(requests.RequestException):
        emu.mail('GetSMTPUserInfo', token)
    assert emu.mail('GetSMTPUserInfo', token).status_code == 200


def test_fault_delay_and_action_filter(emu):
    token = emu.token()
    emu.fault(action='GetSMTPUserInfo', delay=0.5)
    started = time.monotonic()
    assert emu.mail('CreateSMTPUser', token).status_code == 200
    # Another action neither takes the fault nor waits for it.
    assert [(r['action'], r['fault']) for r in emu.log() if r['service'] == 'mail'] == [('CreateSMTPUser', False)]
    assert emu.faults()[0]['action'] == 'GetSMTPUserInfo'
    reply = emu.mail('GetSMTPUserInfo', token)
    assert time.monotonic() - started >= 0.5
    assert reply.status_code == 200
    assert emu.faults() == []
    with pytest.raises(requests.Timeout):
        emu.fault(delay=0.6)
        emu.mail('GetSMTPUserInfo', token, timeout=0.2)
    emu.fault(status=500)
    emu.clear_faults()
    time.sleep(0.6)  # let the delayed request finish before the next test
    assert emu.mail('GetSMTPUserInfo', token).status_code == 200


def test_fault_keystone(emu):
    emu.fault(service='keystone', status=503)
    reply = emu.authenticate()
    assert reply.status_code == 503
    assert reply.json()['error']['code'] == 503
    emu.fault(service='keystone', body='html')
    assert emu.authenticate().status_code == 500
    assert emu.authenticate().status_code == 201
    records = [(r['service'], r['action'], r['status'], r['fault'], r['user']) for r in emu.log()]
    assert records == [('keystone', 'authenticate', 503, True, 'demo-user'), ('keystone', 'authenticate', 500, True, 'demo-user'),
                       ('keystone', 'authenticate', 201, False, 'demo-user')]


def test_bad_fault_spec(emu):
    for spec in ({'body': 'nope'}, {'service': 'smtp'}, {'count': 0}, {'bogus': 1}):
        with pytest.raises(EmulatorError):
            emu.fault(**spec)


# ------------------------------------------------------------ log and admin
def test_request_log(emu):
    token = emu.token()
    sent_at = round(time.time(), 6)  # the log's precision
    emu.mail('CreateSMTPUser', token)
    emu.state()
    log = emu.log()
    assert [r['service'] for r in log] == ['keystone', 'mail']
    record = log[1]
    assert set(record) >= {'seq', 'time', 'service', 'action', 'status', 'request_id', 'user', 'fault'}
    assert record['action'] == 'CreateSMTPUser'
    assert record['status'] == 200
    assert record['user'] == 'demo-user'
    assert record['fault'] is False
    assert UUID_RE.match(record['request_id'])
    assert record['seq'] == log[0]['seq'] + 1
    assert sent_at <= record['time'] <= time.time()
    with open(os.path.join(emu.state_dir, 'requests.jsonl'), encoding='utf-8') as handle:
        lines = [json.loads(line) for line in handle]
    assert lines[-1] == record
    emu.clear_log()
    assert emu.log() == []
    # the process log never shows secrets
    with open(emu.log_path, encoding='utf-8') as handle:
        process_log = handle.read()
    assert token not in process_log
    assert 'demo-password' not in process_log
    assert emu.state()['contracts'][DEFAULT_PROJECT_ID]['smtp_user']['password'] not in process_log


def test_admin_config_and_errors(emu):
    assert emu.config()['min_interval'] == 0
    with pytest.raises(EmulatorError):
        emu.set_config(min_interval='fast')
    with pytest.raises(EmulatorError):
        emu.set_config(no_such_setting=1)
    with pytest.raises(EmulatorError):
        emu.admin('GET', 'nothing-here')


def test_state_smtp_credentials(tmp_path):
    state = State(str(tmp_path / 'state.json'), ['p1', 'p2'])
    assert state.smtp_credentials() == {}
    with state.transaction('p2') as contract:
        contract.smtp_user = {'user': 'U' * 20, 'password': 'p' * 40, 'created_at': 'now'}
    assert state.smtp_credentials() == {'p2': {'user': 'U' * 20, 'password': 'p' * 40}}
    assert state.check_smtp_login(b'U' * 20, b'p' * 40) == 'p2'
    assert state.check_smtp_login('U' * 20, 'wrong') is None
    assert State(str(tmp_path / 'state.json'), ['p1']).smtp_credentials() == {'p2': {'user': 'U' * 20, 'password': 'p' * 40}}


# ------------------------------------------------- second instance, variants
def test_variant_without_namespace_and_two_contracts(tmp_path):
    config = {'contracts': [
        {'name': 'ct0000000001', 'projects': [{'id': 'a' * 32, 'name': 'p-one'}],
         'users': [{'name': 'alice', 'password': 'alice-pw'}]},
        {'name': 'ct0000000002', 'projects': [{'id': 'b' * 32, 'name': 'p-two'}],
         'users': [{'name': 'bob', 'password': 'bob-pw'}]},
    ]}
    config_path = tmp_path / 'config.json'
    config_path.write_text(json.dumps(config), encoding='utf-8')
    with Emulator(tmp_path / 'state', config=config_path, xml_namespace='', token_header_case='lower', min_interval=0) as emu:
        reply = emu.authenticate(user='alice', password='alice-pw', project_id='a' * 32)
        assert reply.status_code == 201
        assert 'x-subject-token' in dict(reply.raw.headers.items())
        alice = reply.headers['x-subject-token']
        bob = emu.token(user='bob', password='bob-pw', contract='ct0000000002', project_id='b' * 32)
        # bob cannot scope to alice's project
        assert emu.authenticate(user='bob', password='bob-pw', contract='ct0000000002', project_id='a' * 32).status_code == 401
        reply = emu.mail('CreateSMTPUser', alice)
        assert reply.status_code == 200
        assert 'xmlns' not in reply.text
        assert xml(reply).tag == 'CreateSMTPUserResponse'
        # errors keep the namespace
        root = assert_error(emu.mail('CreateSMTPUser', alice), 409, 'AlreadyExists')
        assert root.tag == '{%s}ErrorResponse' % DEFAULT_NAMESPACE
        # contracts are separate
        assert_error(emu.mail('GetSMTPUserInfo', bob), 404, 'NotFound')
        assert emu.mail('CreateSMTPUser', bob).status_code == 200
        creds = emu.state()['contracts']
        assert set(creds) == {'a' * 32, 'b' * 32}
        assert creds['a' * 32]['smtp_user']['user'] != creds['b' * 32]['smtp_user']['user']
    assert not os.path.exists(tmp_path / 'state' / 'endpoint.json')
