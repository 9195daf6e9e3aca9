# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""smtp_user: results, idempotence, check mode and diffs, against scripted replies.

tests/functional/test_smtp_user.py proves the same behaviour against the emulator with ansible-playbook.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.fjcloud.mail.plugins.modules import smtp_user

from .mail_api import ENDPOINT, KEYSTONE_AUTH, REQUEST_ID, access_denied, error, keystone_token, ok, unauthorized

USER = 'NKUIGMTPOU9PUZGKL1RW'
SMTP_PASSWORD = 'BiUIRJHe-smtp-SECRET'
NEW_PASSWORD = 'Zq81-new-smtp-SECRET'
OTHER_ID = '0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b'


def credentials(action, password=SMTP_PASSWORD, request_id=REQUEST_ID):
    return ok(action, '<SMTPUser>%s</SMTPUser><SMTPPassword>%s</SMTPPassword>' % (USER, password), request_id)


def not_found():
    return error(404, 'NotFound', 'The SMTP user does not exist.')


def already_exists():
    return error(409, 'AlreadyExists', 'The SMTP user has already been created.')


# ------------------------------------------------------------ state=present

def test_present_creates_the_user_and_returns_its_credentials(api):
    api.expect('CreateSMTPUser', credentials('CreateSMTPUser'))
    result = api.run(smtp_user.main)
    assert result == dict(changed=True, created=True, smtp_user=USER, smtp_password=SMTP_PASSWORD, request_id=REQUEST_ID)


def test_present_with_a_user_is_unchanged_and_reads_its_credentials(api):
    """409 on CreateSMTPUser: the user exists; GetSMTPUserInfo gives its credentials."""
    api.expect('CreateSMTPUser', already_exists())
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo', request_id=OTHER_ID))
    result = api.run(smtp_user.main, state='present')
    assert result == dict(changed=False, created=False, smtp_user=USER, smtp_password=SMTP_PASSWORD, request_id=OTHER_ID)


def test_second_run_is_unchanged_and_returns_the_same_credentials(api):
    api.expect('CreateSMTPUser', credentials('CreateSMTPUser'))
    first = api.run(smtp_user.main)
    api.expect('CreateSMTPUser', already_exists())
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    second = api.run(smtp_user.main)
    assert (first['changed'], second['changed']) == (True, False)
    assert (second['smtp_user'], second['smtp_password']) == (first['smtp_user'], first['smtp_password'])


def test_409_then_no_user_fails_with_a_clear_message(api):
    api.expect('CreateSMTPUser', already_exists())
    api.expect('GetSMTPUserInfo', not_found())
    result = api.run(smtp_user.main)
    assert result['failed'] is True
    assert result['msg'] == ('GetSMTPUserInfo failed: CreateSMTPUser answered 409 (already exists) but GetSMTPUserInfo '
                             'finds no SMTP user; it was probably deleted meanwhile, run again')


def test_lost_reply_then_409_counts_as_created(api):
    """The first CreateSMTPUser may have acted (500): the 409 of its repeat answers our own request."""
    api.expect('CreateSMTPUser', error(500, 'InternalFailure', 'An internal error occurred.'))
    api.expect('CreateSMTPUser', already_exists())
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    result = api.run(smtp_user.main)
    assert (result['changed'], result['created'], result['smtp_user']) == (True, True, USER)


def test_check_mode_without_user_reads_only_and_says_it_would_create(api):
    api.expect('GetSMTPUserInfo', not_found())
    result = api.run(smtp_user.main, check_mode=True)
    assert result == dict(changed=True, created=True, smtp_user=None, smtp_password=None)


def test_check_mode_with_user_is_unchanged(api):
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    result = api.run(smtp_user.main, check_mode=True)
    assert result == dict(changed=False, created=False, smtp_user=USER, smtp_password=SMTP_PASSWORD, request_id=REQUEST_ID)


def test_diff_of_a_creation_never_shows_the_password(api):
    api.expect('CreateSMTPUser', credentials('CreateSMTPUser'))
    result = api.run(smtp_user.main, diff=True)
    assert result['diff'] == dict(before={'state': 'absent'},
                                  after={'state': 'present', 'smtp_user': USER, 'smtp_password': '(new)'})
    assert SMTP_PASSWORD not in json.dumps(result['diff'])


def test_diff_of_an_existing_user_is_empty(api):
    api.expect('CreateSMTPUser', already_exists())
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    result = api.run(smtp_user.main, diff=True)
    assert result['diff']['before'] == result['diff']['after'] == {
        'state': 'present', 'smtp_user': USER, 'smtp_password': '(unchanged, hidden)'}


def test_check_mode_diff_of_a_creation(api):
    api.expect('GetSMTPUserInfo', not_found())
    result = api.run(smtp_user.main, check_mode=True, diff=True)
    assert result['diff'] == dict(before={'state': 'absent'}, after={
        'state': 'present', 'smtp_user': '(new, known after creation)', 'smtp_password': '(new)'})


# ------------------------------------------------------------- rotate=true

def test_rotate_deletes_and_creates(api):
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    api.expect('DeleteSMTPUser', ok('DeleteSMTPUser'))
    api.expect('CreateSMTPUser', credentials('CreateSMTPUser', NEW_PASSWORD, OTHER_ID))
    result = api.run(smtp_user.main, rotate=True, diff=True)
    assert result == dict(changed=True, created=True, smtp_user=USER, smtp_password=NEW_PASSWORD, request_id=OTHER_ID,
                          diff=dict(before={'state': 'present', 'smtp_user': USER, 'smtp_password': '(unchanged, hidden)'},
                                    after={'state': 'present', 'smtp_user': USER, 'smtp_password': '(new)'}))
    assert SMTP_PASSWORD not in json.dumps(result['diff']) and NEW_PASSWORD not in json.dumps(result['diff'])
    times = [call['time'] for call in api.session.calls]
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:])), 'calls 1 s apart (fake clock)'


def test_rotate_without_user_only_creates(api):
    api.expect('GetSMTPUserInfo', not_found())
    api.expect('CreateSMTPUser', credentials('CreateSMTPUser', NEW_PASSWORD))
    result = api.run(smtp_user.main, rotate=True)
    assert (result['changed'], result['created'], result['smtp_password']) == (True, True, NEW_PASSWORD)


def test_rotate_in_check_mode_deletes_nothing(api):
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    result = api.run(smtp_user.main, rotate=True, check_mode=True, diff=True)
    assert (result['changed'], result['created'], result['smtp_user']) == (True, True, USER)
    assert result['diff']['after'] == {'state': 'present', 'smtp_user': '(new, known after creation)', 'smtp_password': '(new)'}


def test_rotate_with_state_absent_is_refused_before_any_call(api):
    result = api.run(smtp_user.main, rotate=True, state='absent')
    assert (result['failed'], result['msg']) == (True, 'rotate=true needs state=present')


# ------------------------------------------------------------- state=absent

def test_absent_deletes_the_user(api):
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    api.expect('DeleteSMTPUser', ok('DeleteSMTPUser'))
    result = api.run(smtp_user.main, state='absent', diff=True)
    assert result == dict(changed=True, created=False, smtp_user=None, smtp_password=None, diff=dict(
        before={'state': 'present', 'smtp_user': USER, 'smtp_password': '(unchanged, hidden)'}, after={'state': 'absent'}))


def test_absent_without_user_is_unchanged(api):
    api.expect('GetSMTPUserInfo', not_found())
    result = api.run(smtp_user.main, state='absent')
    assert result == dict(changed=False, created=False, smtp_user=None, smtp_password=None)


def test_absent_when_delete_finds_no_user_is_unchanged(api):
    """Deleted by someone else between the two calls: the 404 of DeleteSMTPUser means nothing was changed."""
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    api.expect('DeleteSMTPUser', not_found())
    result = api.run(smtp_user.main, state='absent')
    assert result == dict(changed=False, created=False, smtp_user=None, smtp_password=None)


def test_absent_in_check_mode_deletes_nothing(api):
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'))
    result = api.run(smtp_user.main, state='absent', check_mode=True, diff=True)
    assert (result['changed'], result['diff']['after']) == (True, {'state': 'absent'})


# ------------------------------------------------------------ errors, secrets

def test_rejected_token_fails_with_a_hint_and_without_the_token(api):
    api.expect('CreateSMTPUser', unauthorized())
    result = api.run(smtp_user.main)
    assert result['failed'] is True
    assert result['msg'] == ('CreateSMTPUser failed: HTTP 401 authentication rejected: the token is missing, invalid '
                             'or expired (request id %s) from %s/. Give a fresh auth_token, or auth (Keystone password) '
                             'so the module can get one' % (REQUEST_ID, ENDPOINT))


def test_access_denied_fails_with_the_status(api):
    api.expect('CreateSMTPUser', access_denied())
    result = api.run(smtp_user.main)
    assert (result['failed'], result['status']) == (True, 403)
    assert 'Access Denied' in result['msg']


def test_keystone_login_then_the_call_with_the_new_token(api):
    """With auth, the module logs in once and uses the issued token; the password never comes back."""
    api.expect_login(keystone_token('issued-token-1'))
    api.expect('CreateSMTPUser', credentials('CreateSMTPUser'), token='issued-token-1')
    result = api.run(smtp_user.main, auth_token=None, auth=KEYSTONE_AUTH)
    assert (result['changed'], result['smtp_user']) == (True, USER)
    assert 'issued-token-1' not in json.dumps(result)


def test_expired_token_is_renewed_once_by_a_new_login(api):
    api.expect_login(keystone_token('issued-token-1'))
    api.expect('GetSMTPUserInfo', unauthorized(), token='issued-token-1')
    api.expect_login(keystone_token('issued-token-2'))
    api.expect('GetSMTPUserInfo', credentials('GetSMTPUserInfo'), token='issued-token-2')
    result = api.run(smtp_user.main, auth_token=None, auth=KEYSTONE_AUTH, check_mode=True)
    assert (result['changed'], result['smtp_user']) == (False, USER)
