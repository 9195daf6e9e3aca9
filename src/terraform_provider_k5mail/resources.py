# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resources of the provider: the SMTP user, the sender identities and the wait for a domain's verification.

Reads go through the session's read gate (a plan never writes); creates and
deletes through its write gate. Every operation turns a failure into one
error diagnostic without any secret (:func:`provider.guarded`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from tf.iface import Resource
from tf.schema import Attribute, Schema
from tf.types import Map, Number, String, Unknown

from ansible_collections.fjcloud.mail.plugins.module_utils.addresses import address_problem, domain_problem
from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.identities import (
    DNS_RECORD_PREFIX,
    NEEDS_VERIFICATION,
    delete_identity,
    dns_record,
    verification_attributes,
    verify_identity,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.smtp_user import delete_smtp_user, ensure_smtp_user
from terraform_provider_k5mail.provider import guarded

# The wait of k5mail_domain_identity_verification: its default and largest timeout, and the poll intervals.
DEFAULT_TIMEOUT = 900
MAX_TIMEOUT = 86400
FIRST_POLL = 2
MAX_POLL = 30
WAIT_ACTION = 'Waiting for the verification'


class Keepers(Map):
    """``keepers``: any change of a recorded value replaces the SMTP user (rotation).

    Values recorded where there were none (the first plan after an import, or
    keepers added later) are not a change that rotates: they are stored in place.
    """

    def __init__(self):
        super(Keepers, self).__init__(String())

    def semantically_equal(self, a_decoded, b_decoded):
        # tf asks with the prior value first: a null prior is equal to anything.
        return a_decoded is None or a_decoded == b_decoded


def _id_attribute(what):
    return Attribute('id', String(), computed=True, description=what)


class _Resource(Resource):
    def __init__(self, provider):
        self.provider = provider

    def upgrade(self, ctx, version, old):
        # tf's default warns on every command; there is only one schema version so far.
        return old


class SMTPUser(_Resource):
    """``k5mail_smtp_user``: the contract's one SMTP user."""

    @classmethod
    def get_name(cls):
        return 'smtp_user'

    @classmethod
    def get_schema(cls):
        return Schema(description='The SMTP user of the contract (one per contract). Its password lands in the state.',
                      attributes=[
                          _id_attribute('The SMTP user name.'),
                          Attribute('user_name', String(), computed=True, description='The SMTP user name.'),
                          Attribute('password', String(), computed=True, sensitive=True,
                                    description='The SMTP password (sensitive; stored in the state).'),
                          Attribute('keepers', Keepers(), optional=True, requires_replace=True,
                                    description='Arbitrary strings; changing any replaces the user (rotation: '
                                                'DeleteSMTPUser, then CreateSMTPUser).'),
                      ])

    @staticmethod
    def _state(credentials, keepers):
        return {'id': credentials.user, 'user_name': credentials.user, 'password': credentials.password,
                'keepers': keepers}

    @guarded()
    def create(self, ctx, planned):
        session = self.provider.session
        credentials, created = ensure_smtp_user(session.writer)
        session.smtp_user_changed(credentials)
        if not created:
            ctx.diagnostics.add_warning(
                'SMTP user already present: adopted',
                'CreateSMTPUser answered 409: the contract already has the SMTP user %s. Terraform now manages it, '
                'with its current password; destroying this resource deletes it.' % credentials.user)
        return self._state(credentials, planned.get('keepers'))

    @guarded(keep_prior=True)
    def read(self, ctx, current):
        credentials = self.provider.session.smtp_user()
        if credentials is None:
            return None  # deleted outside Terraform: the next plan creates it
        return self._state(credentials, current.get('keepers'))

    @guarded(keep_prior=True)
    def update(self, ctx, current, planned):
        return dict(current, keepers=planned.get('keepers'))  # only keepers recorded in place; nothing to call

    @guarded(keep_prior=True)
    def delete(self, ctx, current):
        session = self.provider.session
        delete_smtp_user(session.writer)  # 404: already gone
        session.smtp_user_changed(None)

    @guarded()
    def import_(self, ctx, id):  # pylint: disable=redefined-builtin; tf's name
        credentials = self.provider.session.smtp_user()
        if credentials is None:
            raise K5MailError('Import', 'the contract has no SMTP user to import')
        if credentials.user != id:
            raise K5MailError('Import', '%r is not the SMTP user of the contract: import it by its name, %s'
                              % (id, credentials.user))
        return self._state(credentials, None)


def identity_problem(argument, value):
    """Why ``value`` cannot be the ``argument`` (email or domain) of an identity resource, or None."""
    if argument == 'email':
        if '@' not in value:
            return '%r is not an email address' % value
        problem = address_problem(value)
        domain = value.rpartition('@')[2]
    else:
        problem = domain_problem(value) if '@' not in value else '%r is an email address, not a domain' % value
        domain = value
    if problem:
        return problem
    if domain != domain.lower():
        # The service keeps domains in lower case: any other spelling would differ from every read.
        return 'write the domain in lower case (%s): the service stores it so' % domain.lower()
    return None


class _Identity(_Resource):
    """A sender identity: created by requesting its verification, replaced when its name changes."""

    ARGUMENT = None  # 'email' or 'domain'

    @classmethod
    def _state(cls, identity, attributes):
        return {cls.ARGUMENT: identity, 'id': identity, 'verification_status': attributes.get('status')}

    def validate(self, diags, type_name, config):
        super(_Identity, self).validate(diags, type_name, config)
        value = config.get(self.ARGUMENT)
        if isinstance(value, str):
            problem = identity_problem(self.ARGUMENT, value)
            if problem:
                diags.add_error('Invalid %s' % self.ARGUMENT, problem, path=[self.ARGUMENT])

    @guarded()
    def create(self, ctx, planned):
        session = self.provider.session
        identity = planned[self.ARGUMENT]
        attributes = session.identity(identity)
        if attributes is None or attributes['status'] in NEEDS_VERIFICATION:
            # Unknown, failed or never started: request the verification (as the identity module does).
            token = verify_identity(session.writer, identity)
            attributes = {'status': 'Pending', 'token': token or (attributes or {}).get('token')}
            session.identity_changed(identity, attributes)
        return self._state(identity, attributes)

    @guarded(keep_prior=True)
    def read(self, ctx, current):
        identity = current[self.ARGUMENT]
        attributes = self.provider.session.identity(identity)
        if attributes is None:
            return None  # deleted outside Terraform: the next plan creates it
        return self._state(identity, attributes)

    @guarded(keep_prior=True)
    def update(self, ctx, current, planned):
        return current  # the name requires replacement; nothing else can change

    @guarded(keep_prior=True)
    def delete(self, ctx, current):
        session = self.provider.session
        identity = current[self.ARGUMENT]
        delete_identity(session.writer, identity)
        session.identity_changed(identity, None)

    @guarded()
    def import_(self, ctx, id):  # pylint: disable=redefined-builtin; tf's name
        problem = identity_problem(self.ARGUMENT, id)
        if problem:
            raise K5MailError('Import', 'cannot import %r into %s: %s' % (id, ctx.type_name, problem))
        attributes = self.provider.session.identity(id)
        if attributes is None:
            raise K5MailError('Import', '%s is not an identity of the contract' % id)
        return self._state(id, attributes)


class EmailIdentity(_Identity):
    """``k5mail_email_identity``: an address that may send once its owner opened the confirmation link."""

    ARGUMENT = 'email'

    @classmethod
    def get_name(cls):
        return 'email_identity'

    @classmethod
    def get_schema(cls):
        return Schema(description='A sender email address (VerifyEmailIdentity; DeleteIdentity on destroy).', attributes=[
            Attribute('email', String(), required=True, requires_replace=True, description='The address, e.g. ops@example.com.'),
            _id_attribute('The address.'),
            Attribute('verification_status', String(), computed=True,
                      description='Pending, Success, Failed, TemporaryFailure or NotStarted.'),
        ])


class DomainIdentity(_Identity):
    """``k5mail_domain_identity``: a domain whose every address may send once its TXT record is published."""

    ARGUMENT = 'domain'

    @classmethod
    def _state(cls, identity, attributes):
        state = super(DomainIdentity, cls)._state(identity, attributes)
        state['verification_token'] = attributes.get('token')
        state['dns_record_name'] = DNS_RECORD_PREFIX + identity
        return state

    @classmethod
    def get_name(cls):
        return 'domain_identity'

    @classmethod
    def get_schema(cls):
        return Schema(description='A sender domain (VerifyDomainIdentity; DeleteIdentity on destroy).', attributes=[
            Attribute('domain', String(), required=True, requires_replace=True, description='The domain, e.g. example.com.'),
            _id_attribute('The domain.'),
            Attribute('verification_status', String(), computed=True,
                      description='Pending, Success, Failed, TemporaryFailure or NotStarted.'),
            Attribute('verification_token', String(), computed=True,
                      description='The value of the TXT record that proves the ownership of the domain.'),
            Attribute('dns_record_name', String(), computed=True,
                      description='The name of that TXT record: %s<domain>.' % DNS_RECORD_PREFIX),
        ])


def _dns_hint(domain, attributes):
    record = dns_record(domain, attributes.get('token'))
    if not record:
        return ''
    return '; publish the %s record %s with the value %s' % (record['type'], record['name'], record['value'])


def wait_for_verification(session, domain, timeout, clock=time.monotonic, sleep=time.sleep):
    """Poll until ``domain`` is verified; return its attributes, or raise K5MailError. Bounded in time and in polls."""
    deadline = clock() + timeout
    interval = FIRST_POLL
    attributes = None
    for _poll in range(int(timeout / FIRST_POLL) + 2):
        attributes = verification_attributes(session.reader, [domain]).get(domain)
        session.identity_changed(domain, attributes)
        if attributes is None:
            raise K5MailError(WAIT_ACTION, '%s is not an identity of the contract: create it with k5mail_domain_identity '
                                           'first (refer to its domain attribute)' % domain)
        if attributes['status'] == 'Success':
            return attributes
        if attributes['status'] == 'Failed':
            raise K5MailError(WAIT_ACTION, 'the verification of %s failed%s' % (domain, _dns_hint(domain, attributes)))
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(interval, remaining))
        interval = min(interval * 2, MAX_POLL)
    raise K5MailError(WAIT_ACTION, 'the verification of %s is still %s after %d seconds%s'
                      % (domain, attributes['status'], timeout, _dns_hint(domain, attributes)))


class DomainIdentityVerification(_Resource):
    """``k5mail_domain_identity_verification``: exists once the domain is verified; creating it waits for that."""

    @classmethod
    def get_name(cls):
        return 'domain_identity_verification'

    @classmethod
    def get_schema(cls):
        return Schema(description='Waits until a domain identity is verified (after its TXT record is published).', attributes=[
            Attribute('domain', String(), required=True, requires_replace=True,
                      description='The domain of a k5mail_domain_identity.'),
            Attribute('timeout', Number(), optional=True,
                      description='Seconds to wait at most (default %d, at most %d).' % (DEFAULT_TIMEOUT, MAX_TIMEOUT)),
            _id_attribute('The domain.'),
            Attribute('verification_status', String(), computed=True, description='Success once created.'),
        ])

    def validate(self, diags, type_name, config):
        super(DomainIdentityVerification, self).validate(diags, type_name, config)
        domain = config.get('domain')
        if isinstance(domain, str):
            problem = identity_problem('domain', domain)
            if problem:
                diags.add_error('Invalid domain', problem, path=['domain'])
        timeout = config.get('timeout')
        if timeout is not None and timeout is not Unknown and not (timeout == int(timeout) and 1 <= timeout <= MAX_TIMEOUT):
            diags.add_error('Invalid timeout', 'timeout must be a whole number of seconds from 1 to %d, got %r'
                            % (MAX_TIMEOUT, timeout), path=['timeout'])

    @staticmethod
    def _state(domain, timeout, attributes):
        return {'domain': domain, 'timeout': timeout, 'id': domain, 'verification_status': attributes['status']}

    @guarded()
    def create(self, ctx, planned):
        timeout = planned.get('timeout')
        attributes = wait_for_verification(self.provider.session, planned['domain'],
                                           int(timeout) if timeout is not None else DEFAULT_TIMEOUT)
        return self._state(planned['domain'], timeout, attributes)

    @guarded(keep_prior=True)
    def read(self, ctx, current):
        attributes = self.provider.session.identity(current['domain'])
        if attributes is None or attributes['status'] != 'Success':
            return None  # no longer verified: the next apply waits again
        return self._state(current['domain'], current.get('timeout'), attributes)

    @guarded(keep_prior=True)
    def update(self, ctx, current, planned):
        return dict(current, timeout=planned.get('timeout'))

    @guarded(keep_prior=True)
    def delete(self, ctx, current):
        return None  # nothing on the service: the identity stays verified


RESOURCES = (SMTPUser, EmailIdentity, DomainIdentity, DomainIdentityVerification)
