# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The contract's SMTP user: the three actions that manage it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError


class SMTPCredentials:
    def __init__(self, user, password, request_id):
        self.user = user
        self.password = password
        self.request_id = request_id


def _credentials(response):
    return SMTPCredentials(
        user=response.require_text('SMTPUser'),
        password=response.require_text('SMTPPassword'),
        request_id=response.request_id,
    )


def get_smtp_user(client):
    """The existing credentials, or None when the contract has no SMTP user (404)."""
    response = client.call('GetSMTPUserInfo', accept=(404,))
    if response.status == 404:
        return None
    return _credentials(response)


def create_smtp_user(client):
    """Call CreateSMTPUser; return ``(credentials, created)``.

    ``credentials`` is None after a 409 (the contract already has a user). ``created``
    is also true after a 409 when an earlier attempt of this call may have been
    processed: its reply was lost, and the user it made is the one that exists.
    """
    response = client.call('CreateSMTPUser', accept=(409,))
    if response.status == 409:
        return None, response.earlier_attempt_may_have_acted
    return _credentials(response), True


def delete_smtp_user(client):
    """True when a user was deleted. Accepts 404: the user is already gone."""
    # The service's statuses for this action are not published; 404 is the
    # likely answer when there is nothing to delete.
    response = client.call('DeleteSMTPUser', accept=(404,))
    return response.status == 200


def ensure_smtp_user(client):
    """Create the user unless it exists; return ``(credentials, created)``."""
    credentials, created = create_smtp_user(client)
    if credentials is not None:
        return credentials, created
    existing = get_smtp_user(client)
    if existing is None:
        raise K5MailError('GetSMTPUserInfo', 'CreateSMTPUser answered 409 (already exists) but GetSMTPUserInfo finds '
                          'no SMTP user; it was probably deleted meanwhile, run again')
    return existing, created
