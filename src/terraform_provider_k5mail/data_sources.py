# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data sources of the provider: read-only, through the session's read gate."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from tf.iface import DataSource
from tf.schema import Attribute, Schema
from tf.types import List, Number, String

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError
from ansible_collections.fjcloud.mail.plugins.module_utils.identities import list_identities
from ansible_collections.fjcloud.mail.plugins.module_utils.quota import QUOTA_FIELDS, get_send_quota
from terraform_provider_k5mail.provider import guarded

IDENTITY_TYPES = ('EmailAddress', 'Domain')


class _DataSource(DataSource):
    def __init__(self, provider):
        self.provider = provider


class SMTPUserData(_DataSource):
    """``data "k5mail_smtp_user"``: the contract's SMTP credentials; an error when it has none."""

    @classmethod
    def get_name(cls):
        return 'smtp_user'

    @classmethod
    def get_schema(cls):
        return Schema(description='The SMTP user of the contract (GetSMTPUserInfo). Its password lands in the state.',
                      attributes=[
                          Attribute('user_name', String(), computed=True, description='The SMTP user name.'),
                          Attribute('password', String(), computed=True, sensitive=True,
                                    description='The SMTP password (sensitive; stored in the state).'),
                      ])

    @guarded()
    def read(self, ctx, config):
        credentials = self.provider.session.smtp_user()
        if credentials is None:
            raise K5MailError('GetSMTPUserInfo', 'the contract has no SMTP user: create it with the resource '
                              'k5mail_smtp_user (or the fjcloud.mail.smtp_user module)')
        return {'user_name': credentials.user, 'password': credentials.password}


class SendQuotaData(_DataSource):
    """``data "k5mail_send_quota"``: the sending quota (GetSendQuota)."""

    @classmethod
    def get_name(cls):
        return 'send_quota'

    @classmethod
    def get_schema(cls):
        return Schema(description='The sending quota of the contract (GetSendQuota).', attributes=[
            Attribute('max_24_hour_send', Number(), computed=True, description='Recipients allowed in 24 hours.'),
            Attribute('max_send_rate', Number(), computed=True, description='Messages allowed per second.'),
            Attribute('sent_last_24_hours', Number(), computed=True, description='Recipients in the last 24 hours.'),
        ])

    @guarded()
    def read(self, ctx, config):
        quota = get_send_quota(self.provider.session.reader)
        return dict((key, quota[key]) for key, _name in QUOTA_FIELDS)


class IdentitiesData(_DataSource):
    """``data "k5mail_identities"``: the names of the contract's identities, every page."""

    @classmethod
    def get_name(cls):
        return 'identities'

    @classmethod
    def get_schema(cls):
        return Schema(description='The identities of the contract (ListIdentities, every page).', attributes=[
            Attribute('identity_type', String(), optional=True,
                      description='Only EmailAddress or only Domain identities (default: both).'),
            Attribute('identities', List(String()), computed=True, description='The email addresses and domains.'),
        ])

    def validate(self, diags, type_name, config):
        super(IdentitiesData, self).validate(diags, type_name, config)
        kind = config.get('identity_type')
        if isinstance(kind, str) and kind not in IDENTITY_TYPES:
            diags.add_error('Invalid identity_type', 'identity_type must be %s, got %r' % (' or '.join(IDENTITY_TYPES), kind),
                            path=['identity_type'])

    @guarded()
    def read(self, ctx, config):
        kind = config.get('identity_type')
        return {'identity_type': kind, 'identities': list_identities(self.provider.session.reader, kind)}


DATA_SOURCES = (SMTPUserData, SendQuotaData, IdentitiesData)
