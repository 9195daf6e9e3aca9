# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

postfix_relay_config in three steps. ``preflight`` checks the host before anything changes
(packages, map type, CA file, the TLS level Postfix would use) and reports every problem at
once; ``plan_relay`` reads what is there and decides what to change, writing nothing, so that
check mode and diff show exactly what ``apply_plan`` then does. Standard library only
(managed hosts); the Postfix commands run through ``PostfixHost`` (postfix_host.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import time

from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_files import (
    install_sasl_passwd, read_text, remove_files, restrict, root_only, stale_temp_files, write_secret_file,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_host import (
    DEBIAN_MAIN_CF, SYSTEM_CA_FILES, TLS_ROUTE_KEYS, ca_file_problem, map_type_problem, planned_config_problems,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_options import (
    INDEX_SUFFIXES, OWNED_KEYS, PostfixRelayError, nexthop_of, problems_text, wanted_main_cf,
)
from ansible_collections.fjcloud.mail.plugins.module_utils.postfix_tables import masked, main_cf_keys, sasl_plan


class Preflight:
    """What the checks before any change found; ``result()`` is what a probe returns."""

    def __init__(self, package_manager, missing_packages):
        self.package_manager = package_manager
        self.missing_packages = missing_packages
        self.created_main_cf = False
        self.nexthop = self.map_type = self.ca_file = None
        self.effective = {}  # postconf's values of the keys to manage

    def result(self):
        result = dict(changed=self.created_main_cf, missing_packages=self.missing_packages,
                      package_manager=self.package_manager)
        if self.map_type is not None:
            result.update(nexthop=self.nexthop, map_type=self.map_type)
        return result


def check_packages(host, params):
    """The host's package manager and the packages it lacks (with check_packages)."""
    manager = host.package_manager()
    return Preflight(manager, host.missing_packages(manager, params['packages']) if params['check_packages'] else [])


def create_main_cf(host):
    """Postfix installed with "No configuration": start from Debian's template, as its installer would."""
    shutil.copyfile(DEBIAN_MAIN_CF, host.main_cf)
    os.chmod(host.main_cf, 0o644)


def preflight(host, params, name, found):
    """Check the host before anything changes, filling ``found``; raise with every problem at once.

    Stops early when postfix-lmdb is missing (reported in missing_packages): lmdb cannot be checked yet.
    """
    if not os.path.isfile(host.main_cf):
        raise PostfixRelayError('%s does not exist: %s must be the directory of a Postfix instance.'
                                % (host.main_cf, name('config_dir')))
    found.effective = host.values(*(list(OWNED_KEYS) + list(params['main_cf_extra']) + ['default_database_type']
                                    + list(TLS_ROUTE_KEYS)))
    found.map_type = params['map_type'] or found.effective.get('default_database_type', '')
    found.nexthop = nexthop_of(params['relay_host'], params['relay_port'])
    # postconf -m takes a fifth of a second: a map type that Postfix already uses, with its
    # index in place, needs no second look outside a probe (a steady run of the role).
    in_use = (found.map_type in INDEX_SUFFIXES
              and found.effective.get('smtp_sasl_password_maps') == '%s:%s' % (found.map_type, host.sasl_passwd)
              and os.path.exists(host.sasl_passwd + INDEX_SUFFIXES[found.map_type]))
    supported = [found.map_type] if in_use and not params['probe'] else host.run('postconf', '-m').split()
    if params['check_packages'] and found.map_type == 'lmdb' and 'lmdb' not in supported:
        found.missing_packages.append('postfix-lmdb')
        return
    problems = []
    map_type_source = name('map_type') if params['map_type'] else 'default_database_type'
    problem = map_type_problem(found.map_type, supported, host.config_dir, map_type_source)
    if problem:
        problems.append(problem)
    found.ca_file = params['tls_ca_file']
    if found.ca_file is None and params['tls_verify']:
        found.ca_file = next((path for path in SYSTEM_CA_FILES if os.path.isfile(path)), None)
        if found.ca_file is None:
            problems.append('%s needs trust anchors: no system CA bundle found (%s); set %s.'
                            % (name('tls_verify'), ', '.join(SYSTEM_CA_FILES), name('tls_ca_file')))
    problem = found.ca_file and ca_file_problem(found.ca_file, name('tls_ca_file'))
    if problem:
        problems.append(problem)
    problems.extend(planned_config_problems(host, params, found.nexthop, name, found.effective))
    if problems:
        raise PostfixRelayError(problems_text(problems))


class RelayPlan:
    """What one run changes (or, in check mode, would change). The credentials it holds are never in ``result()``."""

    def __init__(self, found, main_cf_set, main_cf_removed, stale_files):
        self.found = found
        self.main_cf_set = main_cf_set
        self.main_cf_removed = main_cf_removed
        self.stale_files = stale_files
        self.sasl_content = None  # sasl_passwd as the run leaves it (with smtp_user)
        self.sasl_rewritten = False  # whether that differs from what is there
        self.credentials = None  # user:password, what the index must answer for the next hop
        self.sasl_passwd_changed = False
        self.sasl_passwd_removed = []
        self.index_rebuilt = False
        self.index_owner_fixed = False
        self.diffs = []

    @property
    def reload_needed(self):
        return bool(self.main_cf_set or self.main_cf_removed or self.sasl_passwd_changed or self.index_rebuilt)

    @property
    def changed(self):
        return self.reload_needed or self.index_owner_fixed or self.found.created_main_cf or bool(self.stale_files)

    def result(self, diff=False):
        result = self.found.result()
        result.update(changed=self.changed, main_cf_set=self.main_cf_set, main_cf_removed=self.main_cf_removed,
                      sasl_passwd_changed=self.sasl_passwd_changed, sasl_passwd_removed=self.sasl_passwd_removed,
                      index_rebuilt=self.index_rebuilt, reload_needed=self.reload_needed,
                      stale_files_removed=self.stale_files)
        if diff and self.diffs:
            result['diff'] = self.diffs
        return result


def plan_relay(host, params, found):
    """Decide from what the host holds what this run changes; writes nothing."""
    wanted = wanted_main_cf(params, found.nexthop, found.map_type, host.sasl_passwd, found.ca_file)
    effective = found.effective
    to_set = dict((key, value) for key, value in wanted.items() if value is not None and effective.get(key) != value)
    unwanted = [key for key, value in wanted.items() if value is None]
    to_remove = []
    if unwanted:  # postconf -n leaves out parameters that Postfix does not know: those are found in main.cf itself.
        in_main_cf = set(host.values('-n')) | main_cf_keys(read_text(host.main_cf))
        to_remove = sorted(key for key in unwanted if key in in_main_cf)
    plan = RelayPlan(found, to_set, to_remove, stale_temp_files(host.config_dir, time.time()))
    if params['smtp_user'] is not None:
        plan_sasl_passwd(plan, host, '%s:%s' % (params['smtp_user'], params['smtp_password']))
    if to_set or to_remove:
        keys = sorted(set(to_set) | set(to_remove))
        plan.diffs.append(dict(
            before_header=host.main_cf, after_header=host.main_cf,
            before=''.join('%s = %s\n' % (key, effective[key]) for key in keys if key in effective),
            after=''.join('%s = %s\n' % (key, to_set[key]) for key in keys if key in to_set)))
    return plan


def plan_sasl_passwd(plan, host, value):
    """The relay's line of sasl_passwd, the file's owner and mode, and whether its index answers."""
    nexthop, map_type = plan.found.nexthop, plan.found.map_type
    old_text = read_text(host.sasl_passwd)
    plan.sasl_content, plan.sasl_passwd_removed = sasl_plan(old_text, nexthop, '%s %s' % (nexthop, value))
    plan.sasl_rewritten = plan.sasl_content != old_text
    plan.credentials = value
    if plan.sasl_rewritten:
        before, after = masked(old_text), masked(plan.sasl_content)
        if before == after:
            after += '# (the credentials change)\n'
        plan.diffs.append(dict(before_header=host.sasl_passwd, after_header=host.sasl_passwd, before=before, after=after))
    plan.sasl_passwd_changed = plan.sasl_rewritten or not root_only(host.sasl_passwd)
    # Checked on every run: whatever left the index missing, stale or broken, it is rebuilt.
    plan.index_rebuilt = (plan.sasl_rewritten or 'smtp_sasl_password_maps' in plan.main_cf_set
                          or not host.index_answers(map_type, nexthop, value))
    index = host.sasl_passwd + INDEX_SUFFIXES[map_type]
    plan.index_owner_fixed = os.path.exists(index) and not root_only(index)


def apply_plan(host, plan):
    """Make the changes of the plan: sasl_passwd and its index first, so that main.cf never points at a missing index."""
    remove_files(host.config_dir, plan.stale_files)
    if plan.index_rebuilt:
        install_sasl_passwd(host, plan.found.map_type, plan.sasl_content, plan.found.nexthop, plan.credentials,
                            replace_source=plan.sasl_rewritten)
    if plan.sasl_passwd_changed and not plan.sasl_rewritten:
        restrict(host.sasl_passwd)
    index = host.sasl_passwd + INDEX_SUFFIXES[plan.found.map_type]
    if os.path.exists(index) and not root_only(index):
        restrict(index)
    if plan.main_cf_set:
        host.run('postconf', '-e', *['%s=%s' % item for item in sorted(plan.main_cf_set.items())])
    if plan.main_cf_removed:
        host.run('postconf', '-X', *plan.main_cf_removed)


def remember_reload(marker):
    """Leave the marker of a reload that is due (empty, root's, 0600); the caller removes it once Postfix reloaded."""
    if not os.path.exists(marker):
        write_secret_file(marker, b'')


def service_state(host, marker, reload_needed):
    """Whether a reload is due (this run's changes, or an earlier run's marker) and whether the instance runs.

    A steady run learns both here, in the module's one execution, so that the caller acts only when one is true.
    """
    return dict(reload_pending=reload_needed or os.path.exists(marker), running=host.running())
