# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""auth: one Keystone login, its result, its warnings and its refusals, against scripted replies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from fake_http import Reply

from ansible_collections.fjcloud.mail.plugins.modules import auth

from .mail_api import AUTH_URL, ENDPOINT, KEYSTONE_AUTH, keystone_rejected, keystone_token

ISSUED = 'gAAAAABk-issued-token'
EXPIRES = '2026-11-24T13:00:00.000000Z'


def test_returns_the_token_its_expiry_and_the_endpoint(api):
    api.expect_login(keystone_token(ISSUED, EXPIRES))
    result = api.run(auth.main, auth_token=None, endpoint=None, auth=KEYSTONE_AUTH)
    assert result == dict(changed=False, auth_token=ISSUED, expires_at=EXPIRES, endpoint=ENDPOINT)
    assert api.warnings == []


def test_check_mode_logs_in_too(api):
    """Getting a token changes nothing, and later tasks of a check run need it."""
    api.expect_login(keystone_token(ISSUED, EXPIRES))
    result = api.run(auth.main, check_mode=True, auth_token=None, auth=KEYSTONE_AUTH)
    assert (result['changed'], result['auth_token']) == (False, ISSUED)


def test_other_catalog_endpoint_is_named_in_a_warning_not_used(api):
    api.expect_login(keystone_token(ISSUED, EXPIRES, mail_url='https://mail.jp-east-1.tps5.fujitsu.com'))
    result = api.run(auth.main, auth_token=None, endpoint=None, auth=KEYSTONE_AUTH)
    assert result['endpoint'] == ENDPOINT
    assert api.warnings == [
        "the token's service catalog names https://mail.jp-east-1.tps5.fujitsu.com as the mail endpoint of jp-east-1, "
        "not %s: every module uses the endpoint option, else FJCLOUD_MAIL_ENDPOINT, else the default of the region; "
        "set endpoint to use the catalog's" % ENDPOINT]


def test_given_endpoint_wins_without_warning(api):
    api.expect_login(keystone_token(ISSUED, EXPIRES, mail_url='https://mail.jp-east-1.tps5.fujitsu.com'))
    result = api.run(auth.main, auth_token=None, endpoint='https://mail.example.com', auth=KEYSTONE_AUTH)
    assert (result['endpoint'], api.warnings) == ('https://mail.example.com', [])


def test_token_alone_is_refused_before_any_call(api):
    result = api.run(auth.main)
    assert result['failed'] is True
    assert result['msg'].startswith('auth needs Keystone password credentials (auth: username, password')


def test_incomplete_auth_is_refused_naming_what_is_missing(api):
    result = api.run(auth.main, auth_token=None, auth=dict(KEYSTONE_AUTH, project_id=None))
    assert (result['failed'], result['msg']) == (True, 'auth is incomplete: missing project_id or project_name')


def test_rejected_password_fails_once_and_is_not_tried_again(api):
    """One 401 is one failed login: no repeat in the run, and the next run with the same password makes no call."""
    api.expect_login(keystone_rejected())
    result = api.run(auth.main, auth_token=None, auth=KEYSTONE_AUTH)
    assert result['failed'] is True
    assert result['msg'].startswith('Keystone authentication failed: HTTP 401 Keystone rejected the credentials of user '
                                    'alice of contract ct0001 for project_id p1 at %s/auth/tokens' % AUTH_URL)
    again = api.run(auth.main, auth_token=None, auth=KEYSTONE_AUTH)
    assert again['failed'] is True
    assert again['msg'].startswith('Keystone authentication failed: not tried: Keystone rejected these credentials '
                                   '(user alice of contract ct0001, project id p1, this password)')
    assert api.actions == ['login']


def test_keystone_busy_is_retried_as_no_password_was_checked(api):
    api.expect_login(Reply(503, b'', reason='Service Unavailable', headers={'Retry-After': '2'}))
    api.expect_login(keystone_token(ISSUED, EXPIRES))
    result = api.run(auth.main, auth_token=None, auth=KEYSTONE_AUTH)
    assert result['auth_token'] == ISSUED
    assert api.clock.sleeps and sum(api.clock.sleeps) >= 2  # waited Retry-After, on the fake clock
