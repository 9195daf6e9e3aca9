# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the shared connection options, before any request is made."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import pytest
import yaml

from ansible_collections.fjcloud.mail.plugins.doc_fragments.k5 import ModuleDocFragment
from ansible_collections.fjcloud.mail.plugins.module_utils.connection import DEFAULTS, ConnectionSettings
from ansible_collections.fjcloud.mail.plugins.module_utils.module import k5_argument_spec
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import DEFAULT_URLS
from ansible_collections.fjcloud.mail.plugins.modules import auth as auth_module


def params(**kwargs):
    base = dict(auth={}, auth_token=None, region_name=None, endpoint=None, validate_certs=True,
                allow_http=False, ca_cert=None, api_timeout=30, retries=5)
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
    (dict(api_timeout=0), 'api_timeout must be between 1 and 3600 seconds, got 0'),
    (dict(api_timeout=99999999999999), 'api_timeout must be between 1 and 3600 seconds, got 99999999999999'),
    (dict(retries=-1), 'retries must be between 0 and 20, got -1'),
    (dict(region_name='a' * 300), 'region_name is 300 characters long, at most 63 are allowed'),
    (dict(endpoint='http://mail.example.com'), "endpoint 'http://mail.example.com' uses http://, which sends the password"),
    (dict(endpoint='https://' + 'a' * 64 + '.example.com'), 'endpoint %r: the host name is not dot-separated labels'
     % ('https://' + 'a' * 64 + '.example.com')),
    (dict(endpoint='https://' + 'a.' * 130 + 'com'), 'endpoint %r: the host name is 263 characters long, at most 253'
     % ('https://' + 'a.' * 46 + '...')),
    (dict(endpoint='https://mail_1.example.com'), "endpoint 'https://mail_1.example.com': the host name is not"),
    (dict(endpoint='https://mail.example.com:99999'), "endpoint 'https://mail.example.com:99999' is not a URL"),
    (dict(auth=dict(username='alice', password='pw', user_domain_name='ct0001', project_id='p1',
                    auth_url='http://127.0.0.1:5000/v3')), "auth.auth_url 'http://127.0.0.1:5000/v3' uses http://"),
])
def test_bad_options_are_named(kwargs, message):
    errors = ConnectionSettings(params(**dict(dict(auth_token='t'), **kwargs))).errors
    assert len(errors) == 1 and errors[0].startswith(message), errors


@pytest.mark.parametrize('name, url', [
    ('endpoint', 'https://admin:hunter2@mail.example.com/'),
    ('endpoint', 'https://hunter2@mail.example.com/'),
    ('auth.auth_url', 'https://admin:hunter2@identity.example.com/v3'),
])
def test_credentials_in_a_url_are_refused_without_being_echoed(name, url):
    kwargs = dict(endpoint=url) if name == 'endpoint' else dict(auth=dict(FULL_AUTH, auth_url=url))
    errors = ConnectionSettings(params(auth_token='t', **kwargs)).errors
    assert errors == ['%s must not hold a user name or password (user:password@host): it would show in messages '
                      'and logs; give the credentials in auth or auth_token' % name]
    assert 'hunter2' not in errors[0]


@pytest.mark.parametrize('url', ['https://127.0.0.1:8443', 'https://[::1]:8443/', 'https://localhost/',
                                 'https://mail.jp-east-1.tps5.fujitsu.com', 'https://mail.example.com./'])
def test_host_names_and_ip_literals_are_accepted(url):
    settings = ConnectionSettings(params(auth_token='t', endpoint=url))
    assert settings.errors == [] and settings.warnings == []


def test_http_is_allowed_only_explicitly_and_then_warned():
    settings = ConnectionSettings(params(auth_token='t', endpoint='http://127.0.0.1:8080', allow_http=True))
    assert settings.errors == []
    assert settings.warnings == ["endpoint 'http://127.0.0.1:8080' uses plain http:// (allow_http=true): the password "
                                 "and the token cross the network in clear text"]


def test_disabled_certificate_validation_is_warned():
    settings = ConnectionSettings(params(auth_token='t', validate_certs=False))
    assert settings.errors == []
    assert len(settings.warnings) == 1 and settings.warnings[0].startswith('validate_certs=false: the certificates')


def test_the_k5_doc_fragment_documents_the_defaults_of_the_argument_spec():
    # ansible-test validate-modules checks this in the sanity session; this test says it at once.
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options']
    spec = k5_argument_spec()
    assert sorted(documented) == sorted(spec)
    assert dict((name, documented[name].get('default')) for name in spec) == \
        dict((name, option.get('default')) for name, option in spec.items())
    assert [spec[name]['default'] for name in DEFAULTS] == [DEFAULTS[name] for name in DEFAULTS]


def test_the_default_urls_written_in_the_docs_are_those_of_module_utils():
    # Documentation cannot import module_utils, so it writes the default URLs out: every URL templated on
    # the region that a doc fragment or a module's documentation writes must be one the client uses.
    templated = re.compile(r'https://[^\s()]*<region_name>[^\s()]*')
    fragment = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options']
    assert 'C(%s)' % DEFAULT_URLS['endpoint'] in ' '.join(fragment['endpoint']['description'])
    assert 'C(%s)' % DEFAULT_URLS['auth_url'] in ' '.join(fragment['auth']['suboptions']['auth_url']['description'])
    assert 'C(%s)' % DEFAULT_URLS['endpoint'] in auth_module.RETURN
    modules_dir = os.path.dirname(auth_module.__file__)
    texts = [ModuleDocFragment.DOCUMENTATION] + [
        open(os.path.join(modules_dir, name)).read() for name in sorted(os.listdir(modules_dir)) if name.endswith('.py')]
    written = set(url for text in texts for url in templated.findall(text))
    assert written == set(DEFAULT_URLS.values())
