# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail API's actions: one handler function per action, in a dispatch table.

A handler is ``handler(contract, params) -> result``:

- ``contract`` is the :class:`k5emu.state.ContractState` of the caller's
  project (the state lock is held; changes are saved when the handler returns);
- ``params`` is a dict of the form parameters, ``Action`` and ``Version``
  removed (they are checked by the server core);
- the result is the list of ``(name, value)`` pairs inside ``<{Action}Result>``
  (see :func:`k5emu.replies.xml_document`), or None for an empty result.

A handler signals an error by raising :class:`ApiError`. Register a new action
with the :func:`action` decorator; nothing else needs to change.
"""

from __future__ import annotations

import secrets
import string

from .util import iso_utc

# Every action of the published API. Those without a handler in ACTIONS are
# answered with 400 InvalidAction for now.
KNOWN_ACTIONS = (
    'DeleteIdentity', 'GetIdentityVerificationAttributes', 'GetSendQuota', 'GetSendStatistics', 'ListIdentities',
    'SendEmail', 'SendRawEmail', 'VerifyDomainIdentity', 'VerifyEmailIdentity',
    'CreateSMTPUser', 'DeleteSMTPUser', 'GetSMTPUserInfo',
)

ACTIONS = {}

SMTP_USER_ALPHABET = string.ascii_uppercase + string.digits
SMTP_PASSWORD_ALPHABET = string.ascii_letters + string.digits + '+/'
SMTP_USER_LENGTH = 20
SMTP_PASSWORD_LENGTH = 40


class ApiError(Exception):
    """An error answered as an ``ErrorResponse`` document."""

    def __init__(self, status, code, message, error_type=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_type = error_type or ('Receiver' if status >= 500 else 'Sender')


def action(name):
    """Decorator registering a handler for the action ``name``."""
    def register(func):
        ACTIONS[name] = func
        return func
    return register


def check_params(params, allowed=()):
    """Raise 400 InvalidParameterValue if ``params`` holds a name not in ``allowed``."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ApiError(400, 'InvalidParameterValue', 'Unknown parameter: %s' % ', '.join(unknown))


def _random_string(alphabet, length):
    return ''.join(secrets.choice(alphabet) for dummy in range(length))


def _smtp_result(smtp):
    return [('SMTPUser', smtp['user']), ('SMTPPassword', smtp['password'])]


@action('CreateSMTPUser')
def create_smtp_user(contract, params):
    """Create the contract's SMTP user; 409 if it exists already."""
    check_params(params)
    if contract.smtp_user:
        raise ApiError(409, 'AlreadyExists', 'The SMTP user has already been created.')
    user = _random_string(SMTP_USER_ALPHABET, SMTP_USER_LENGTH)
    while contract.smtp_user_taken(user):
        user = _random_string(SMTP_USER_ALPHABET, SMTP_USER_LENGTH)
    contract.smtp_user = {
        'user': user,
        'password': _random_string(SMTP_PASSWORD_ALPHABET, SMTP_PASSWORD_LENGTH),
        'created_at': iso_utc(contract.now()),
    }
    return _smtp_result(contract.smtp_user)


@action('GetSMTPUserInfo')
def get_smtp_user_info(contract, params):
    """Return the contract's SMTP user and password; 404 if there is none."""
    check_params(params)
    if not contract.smtp_user:
        raise ApiError(404, 'NotFound', 'The SMTP user does not exist.')
    return _smtp_result(contract.smtp_user)


@action('DeleteSMTPUser')
def delete_smtp_user(contract, params):
    """Delete the contract's SMTP user; 404 if there is none."""
    check_params(params)
    if not contract.smtp_user:
        raise ApiError(404, 'NotFound', 'The SMTP user does not exist.')
    contract.smtp_user = None
    return None
