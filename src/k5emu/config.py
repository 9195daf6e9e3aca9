# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configuration of the emulator: the identity directory and the run-time settings.

The directory (contracts, projects, users) comes from a JSON file given with
``--config`` or from :data:`DEFAULT_CONFIG`. Its format::

    {
      "region": "jp-east-1",
      "contracts": [
        {
          "name": "ct0000000001",                 # Keystone user domain name
          "mail_access": true,                    # optional, default true
          "projects": [
            {"id": "0123...", "name": "demo-project", "mail_access": true}
          ],
          "users": [
            {"name": "demo-user", "password": "demo-password",
             "mail_access": true,                 # optional, default true
             "projects": ["demo-project"]}        # optional: ids or names, default all
          ]
        }
      ]
    }

A user may use the mail API when the user, the project and the contract all
have ``mail_access`` true. The mail API keeps its state per project id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

from . import (
    DEFAULT_CONTRACT, DEFAULT_NAMESPACE, DEFAULT_PASSWORD, DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME, DEFAULT_REGION,
    DEFAULT_USER, DENIED_PASSWORD, DENIED_USER,
)

DEFAULT_CONFIG = {
    'region': DEFAULT_REGION,
    'contracts': [
        {
            'name': DEFAULT_CONTRACT,
            'projects': [
                {'id': DEFAULT_PROJECT_ID, 'name': DEFAULT_PROJECT_NAME},
            ],
            'users': [
                {'name': DEFAULT_USER, 'password': DEFAULT_PASSWORD, 'mail_access': True},
                {'name': DENIED_USER, 'password': DENIED_PASSWORD, 'mail_access': False},
            ],
        },
    ],
}

_PROJECT_ID_RE = re.compile(r'^[0-9A-Za-z_-]{1,64}$')


class ConfigError(ValueError):
    """The configuration file is not valid."""


def _hash_id(*parts):
    return hashlib.md5('/'.join(parts).encode('utf-8')).hexdigest()


@dataclasses.dataclass(frozen=True)
class Project:
    """A Keystone project; the mail API's contract state is kept per project id."""

    id: str
    name: str
    contract: str
    domain_id: str
    mail_access: bool = True


@dataclasses.dataclass(frozen=True)
class User:
    """A Keystone user of one contract (domain)."""

    id: str
    name: str
    password: str = dataclasses.field(repr=False)
    contract: str = ''
    domain_id: str = ''
    project_ids: tuple = ()
    mail_access: bool = True


class Directory:
    """Contracts, projects and users known to the emulator's Keystone."""

    def __init__(self, data):
        if not isinstance(data, dict) or not isinstance(data.get('contracts'), list) or not data['contracts']:
            raise ConfigError('the configuration needs a non-empty "contracts" list')
        self.region = str(data.get('region') or DEFAULT_REGION)
        self.contracts = {}
        self.projects = {}
        self.users = {}
        for contract in data['contracts']:
            self._add_contract(contract)

    def _add_contract(self, contract):
        if not isinstance(contract, dict) or not isinstance(contract.get('name'), str) or not contract['name']:
            raise ConfigError('every contract needs a "name" (the Keystone user domain name)')
        name = contract['name']
        if name in self.contracts:
            raise ConfigError('contract %s is listed twice' % name)
        domain_id = str(contract.get('domain_id') or _hash_id('domain', name))
        self.contracts[name] = domain_id
        contract_access = bool(contract.get('mail_access', True))
        own_projects = []
        for project in contract.get('projects') or []:
            if not isinstance(project, dict) or not isinstance(project.get('id'), str) or not _PROJECT_ID_RE.match(project['id']):
                raise ConfigError('contract %s: every project needs an "id" of letters, digits, "-" or "_"' % name)
            if project['id'] in self.projects:
                raise ConfigError('project id %s is listed twice' % project['id'])
            item = Project(
                id=project['id'],
                name=str(project.get('name') or project['id']),
                contract=name,
                domain_id=domain_id,
                mail_access=contract_access and bool(project.get('mail_access', True)),
            )
            self.projects[item.id] = item
            own_projects.append(item)
        if not own_projects:
            raise ConfigError('contract %s has no project' % name)
        for user in contract.get('users') or []:
            if not isinstance(user, dict) or not isinstance(user.get('name'), str) or not isinstance(user.get('password'), str):
                raise ConfigError('contract %s: every user needs a "name" and a "password"' % name)
            if (name, user['name']) in self.users:
                raise ConfigError('contract %s: user %s is listed twice' % (name, user['name']))
            wanted = user.get('projects')
            if wanted is None:
                project_ids = tuple(p.id for p in own_projects)
            else:
                project_ids = []
                for ref in wanted:
                    match = [p.id for p in own_projects if ref in (p.id, p.name)]
                    if not match:
                        raise ConfigError('contract %s: user %s names an unknown project %s' % (name, user['name'], ref))
                    project_ids.extend(match)
                project_ids = tuple(project_ids)
            self.users[(name, user['name'])] = User(
                id=str(user.get('id') or _hash_id('user', name, user['name'])),
                name=user['name'],
                password=user['password'],
                contract=name,
                domain_id=domain_id,
                project_ids=project_ids,
                mail_access=contract_access and bool(user.get('mail_access', True)),
            )

    def find_user(self, domain_name=None, domain_id=None, name=None, user_id=None):
        """Return the user matching a Keystone ``password.user`` object, or None."""
        for user in self.users.values():
            if user_id is not None:
                if user.id == user_id:
                    return user
                continue
            if name != user.name:
                continue
            if domain_name is not None and domain_name == user.contract:
                return user
            if domain_id is not None and domain_id == user.domain_id:
                return user
        return None

    def find_project(self, project_id=None, name=None, domain_name=None, domain_id=None):
        """Return the project matching a Keystone ``scope.project`` object, or None."""
        if project_id is not None:
            return self.projects.get(project_id)
        for project in self.projects.values():
            if project.name != name:
                continue
            if domain_name is not None and domain_name == project.contract:
                return project
            if domain_id is not None and domain_id == project.domain_id:
                return project
        return None


def load_config(path=None):
    """Load the directory from a JSON file, or the default one when ``path`` is None."""
    if path is None:
        return Directory(DEFAULT_CONFIG)
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError('cannot read configuration %s: %s' % (path, exc)) from exc
    return Directory(data)


@dataclasses.dataclass
class Settings:
    """Settings that the admin endpoint ``/_emulator/config`` may change at run time."""

    min_interval: float = 1.0
    token_ttl: float = 10800.0
    xml_namespace: str = DEFAULT_NAMESPACE
    token_header_case: str = 'canonical'
    user_agent_check: bool = True
    lockout_attempts: int = 5
    lockout_window: float = 900.0
    lockout_duration: float = 900.0
    max_24hour_send: float = 200.0
    max_send_rate: float = 1.0

    _TYPES = {
        'min_interval': float,
        'token_ttl': float,
        'xml_namespace': str,
        'token_header_case': str,
        'user_agent_check': bool,
        'lockout_attempts': int,
        'lockout_window': float,
        'lockout_duration': float,
        'max_24hour_send': float,
        'max_send_rate': float,
    }

    def as_dict(self):
        """Return the settings as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self._TYPES}

    def update(self, values):
        """Validate and apply a dict of new values; raise ValueError on a bad one (nothing is applied then)."""
        if not isinstance(values, dict):
            raise ValueError('expected a JSON object')
        checked = {}
        for name, value in values.items():
            kind = self._TYPES.get(name)
            if kind is None:
                raise ValueError('unknown setting %r (known: %s)' % (name, ', '.join(sorted(self._TYPES))))
            if kind is bool:
                if not isinstance(value, bool):
                    raise ValueError('%s must be true or false' % name)
            elif kind is str:
                if not isinstance(value, str):
                    raise ValueError('%s must be a string' % name)
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError('%s must be a number >= 0' % name)
            checked[name] = kind(value)
        if checked.get('token_header_case', 'canonical') not in ('canonical', 'lower'):
            raise ValueError('token_header_case must be "canonical" or "lower"')
        for name, value in checked.items():
            setattr(self, name, value)
        return self.as_dict()
