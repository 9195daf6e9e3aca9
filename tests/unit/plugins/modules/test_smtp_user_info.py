# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""smtp_user_info: the result with and without a user, and its failures, against scripted replies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.fjcloud.mail.plugins.modules import smtp_user_info

from .mail_api import REQUEST_ID, access_denied, error, ok

USER = 'NKUIGMTPOU9PUZGKL1RW'
SMTP_PASSWORD = 'BiUIRJHe-smtp-SECRET'


@pytest.mark.parametrize('check_mode', [False, True])
def test_existing_user(api, check_mode):
    """An info module reads in check mode too."""
    api.expect('GetSMTPUserInfo', ok('GetSMTPUserInfo', '<SMTPUser>%s</SMTPUser><SMTPPassword>%s</SMTPPassword>'
                                     % (USER, SMTP_PASSWORD), request_id=REQUEST_ID + ' '))
    result = api.run(smtp_user_info.main, check_mode=check_mode)
    assert result == dict(changed=False, exists=True, smtp_user=USER, smtp_password=SMTP_PASSWORD, request_id=REQUEST_ID)


def test_no_user(api):
    api.expect('GetSMTPUserInfo', error(404, 'NotFound', 'The SMTP user does not exist.'))
    assert api.run(smtp_user_info.main) == dict(changed=False, exists=False)


def test_reply_without_password_fails_clearly(api):
    api.expect('GetSMTPUserInfo', ok('GetSMTPUserInfo', '<SMTPUser>%s</SMTPUser>' % USER))
    result = api.run(smtp_user_info.main)
    assert (result['failed'], result['msg']) == (
        True, 'GetSMTPUserInfo failed: HTTP 200 the reply lacks SMTPPassword (request id %s)' % REQUEST_ID)


def test_access_denied_fails_with_status_and_request_id(api):
    api.expect('GetSMTPUserInfo', access_denied())
    result = api.run(smtp_user_info.main)
    assert (result['failed'], result['status'], result['request_id']) == (True, 403, REQUEST_ID)
    assert result['msg'].startswith('GetSMTPUserInfo failed: HTTP 403 Access Denied')


def test_server_error_is_retried_then_reported(api):
    for dummy in range(3):
        api.expect('GetSMTPUserInfo', error(500, 'InternalFailure', 'An internal error occurred.'))
    result = api.run(smtp_user_info.main, retries=2)
    assert (result['failed'], result['status'], result['attempts']) == (True, 500, 3)
    assert result['msg'].startswith('GetSMTPUserInfo failed: HTTP 500 InternalFailure: An internal error occurred.')
