# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the shared connection options, before any request is made."""

from __future__ import annotations

import pytest

from ansible_collections.fjcloud.mail.plugins.module_utils.module import ConnectionSettings


def params(**kwargs):
    base = dict(auth={}, auth_token=None, region_name=None, endpoint=None, validate_certs=True,
                ca_cert=None, api_timeout=30, retries=5)
    base.update(kwargs)
    return base


FULL_AUTH = dict(username='alice', password='pw', user_domain_name='ct0001', project_id='p1')


def test_defaults_follow_the_region():
    settings = ConnectionSettings(params(auth_token='t', region_name='uk-1'))
    assert settings.errors == []
    assert settings.endpoint == 'https://mail.uk-1.cloud.global.fujitsu.com'
    settings = ConnectionSettings(params(auth=FULL_AUTH))
    assert settings.keystone.auth_url == 'https://identity.jp-east-1.cloud.global.fujitsu.com/v3'


def test_no_credentials_names_both_ways():
    errors = ConnectionSettings(params()).errors
    assert len(errors) == 1 and errors[0].startswith('no credentials: give auth_token (or OS_TOKEN), or auth with username')


@pytest.mark.parametrize('auth, missing', [
    (dict(username='alice'), 'missing password, user_domain_name, project_id or project_name'),
    (dict(FULL_AUTH, project_id=None), 'missing project_id or project_name'),
    (dict(FULL_AUTH, password=''), 'missing password'),
])
def test_incomplete_auth_names_what_is_missing(auth, missing):
    assert ConnectionSettings(params(auth=auth)).errors == ['auth is incomplete: %s' % missing]


@pytest.mark.parametrize('kwargs, message', [
    (dict(region_name='jp east'), "region_name 'jp east' is not a region name"),
    (dict(region_name='jp-east-1\n'), "region_name 'jp-east-1\\n' is not a region name"),
    (dict(endpoint='mail.example.com'), "endpoint 'mail.example.com' is not an http(s) URL with a host name"),
    (dict(ca_cert='/nonexistent/ca.pem'), 'ca_cert /nonexistent/ca.pem is not a readable file'),
    (dict(api_timeout=0), 'api_timeout must be a positive number of seconds, got 0'),
    (dict(retries=-1), 'retries must be between 0 and 20, got -1'),
])
def test_bad_options_are_named(kwargs, message):
    errors = ConnectionSettings(params(auth_token='t', **kwargs)).errors
    assert len(errors) == 1 and errors[0].startswith(message)
