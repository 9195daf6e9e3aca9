# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test driver of the fjcloud.mail collection (run through ``make test``).

``nox -l`` lists the sessions, ``nox -s NAME`` runs one, ``nox -t TAG`` a group.
Two kinds:

* the standard checks that antsibull-nox declares (antsibull-nox.toml):
  ``docs-check`` (antsibull-docs validates the docs of every module and role),
  ``extra-checks`` (the ``mail`` action group lists exactly the modules with the
  shared connection options; no unwanted files in plugins/),
  ``build-import-check`` (galaxy-importer on the built tarball, offline);
* the sessions in the table PER_CORE below, one per ansible-core of MATRIX on
  the Python given there: ``units-<core>``, ``sanity-<core>`` (ansible-test
  sanity, no ignore entries, then ansible-doc of every module and role),
  ``functional-<core>``; antsibull-nox's own ansible-test sessions cannot be
  used here: they fetch ansible-core from GitHub, run in ansible-test's
  containers from a registry, and pick their own Python. Then ``lint``,
  ``molecule`` and ``venv`` (not a test: .venv for make demo / fleet / bench).

Each session installs its own ansible-core (the newest patch release of its
minor version) next to tests/requirements*.txt, which never name ansible-core.
Debian packages (Postfix, shellcheck, ...) are installed when missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import antsibull_nox
import nox

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import collection_tree  # noqa: E402  pylint: disable=wrong-import-position

PYENV = os.path.expanduser('~/.pyenv/versions')
DEBIAN_PYTHON = '/usr/bin/python3'


def pyenv(version):
    """pyenv's interpreter of that exact version (nox looks the version up on PATH when pyenv lacks it)."""
    path = os.path.join(PYENV, version, 'bin', 'python3')
    return path if os.path.exists(path) else version


# ansible-core minor version -> (controller Python it is tested on, interpreter).
# Every core on a Python it supports (2.16/2.17: 3.10-3.12, 2.18/2.19:
# 3.11-3.13, 2.20/2.21: 3.12+), and every interpreter of this machine kind once,
# Debian's own 3.11.2 included: Python patch releases differ (email.utils).
MATRIX = {
    '2.16': ('3.10.13', pyenv('3.10.13')),
    '2.17': ('3.12.1', pyenv('3.12.1')),
    '2.18': ('3.11.2', DEBIAN_PYTHON),
    '2.19': ('3.11.7', pyenv('3.11.7')),
    '2.20': ('3.12.1', pyenv('3.12.1')),
    '2.21': ('3.13.0', pyenv('3.13.0')),
}


def _version_key(core):
    return tuple(int(part) for part in core.split('.'))


OLDEST, NEWEST = min(MATRIX, key=_version_key), max(MATRIX, key=_version_key)

REQUIREMENTS = os.path.join(ROOT, 'tests', 'requirements.txt')
REQUIREMENTS_LINT = os.path.join(ROOT, 'tests', 'requirements-lint.txt')
REQUIREMENTS_MOLECULE = os.path.join(ROOT, 'tests', 'requirements-molecule.txt')

APT_PACKAGES = ('ca-certificates', 'git', 'libsasl2-modules', 'make', 'postfix', 'postfix-lmdb', 'python3', 'python3-venv', 'shellcheck',
                'util-linux')

# A missing interpreter is a failure, not a skipped session; and nothing is
# downloaded except packages.
nox.options.error_on_missing_interpreters = True
nox.options.download_python = 'never'
nox.options.default_venv_backend = 'venv'
# Venvs are reused; installs still run, so requirement changes apply.
nox.options.reuse_venv = 'yes'

os.environ.setdefault('PIP_DISABLE_PIP_VERSION_CHECK', '1')
os.environ.setdefault('PYTHONDONTWRITEBYTECODE', '1')

# docs-check, extra-checks and build-import-check (on the Python that runs nox).
antsibull_nox.load_antsibull_nox_toml()
ANTSIBULL_NOX_CHECKS = ['extra-checks', 'docs-check', 'build-import-check']


# ---------------------------------------------------------------------------
# helpers

def apt_packages(session):
    """Install the Debian packages the suite needs when any is missing (as root, services not started)."""
    missing = [package for package in APT_PACKAGES if subprocess.run(
        ['dpkg-query', '-W', '-f=${Status}', package], capture_output=True, text=True, check=False,
    ).stdout != 'install ok installed']
    if not missing:
        return
    if os.geteuid() != 0:
        session.error('Debian packages missing and not root: apt-get install %s' % ' '.join(missing))
    session.log('installing Debian packages: %s' % ' '.join(missing))
    env = {'DEBIAN_FRONTEND': 'noninteractive'}
    # Postfix's "Internet Site" writes /etc/postfix/main.cf ("No configuration" leaves none).
    subprocess.run(['debconf-set-selections'], input='postfix postfix/main_mailer_type select Internet Site\n',
                   text=True, check=True)
    # Installing must not start services (postfix would bind port 25 outside the
    # tests' control): deny starts during the install unless a policy exists.
    policy = '/usr/sbin/policy-rc.d'
    added_policy = not os.path.exists(policy)
    if added_policy:
        with open(policy, 'w', encoding='utf-8') as handle:
            handle.write('#!/bin/sh\nexit 101\n')
        os.chmod(policy, 0o755)
    try:
        session.run('apt-get', '-q', 'update', env=env, external=True)
        session.run('apt-get', '-q', 'install', '-y', '--no-install-recommends', *missing, env=env, external=True)
    finally:
        if added_policy:
            os.unlink(policy)
    if not os.path.exists('/etc/postfix/main.cf') and os.path.exists('/usr/share/postfix/main.cf.debian'):
        shutil.copy('/usr/share/postfix/main.cf.debian', '/etc/postfix/main.cf')


def install(session, core, *requirements):
    """ansible-core ``core`` (newest patch, upgraded in a reused venv) and the given requirement files."""
    expected = MATRIX[core][0]
    actual = session.run('python', '-c', 'import platform; print(platform.python_version())', silent=True).strip()
    if actual != expected:
        session.error('ansible-core %s is tested on Python %s, but this venv has %s' % (core, expected, actual))
    args = ['--upgrade', 'ansible-core==%s.*' % core]
    for requirement in requirements:
        args += ['-r', requirement]
    session.install(*args)
    version = session.run('python', '-c', 'import ansible; print(ansible.__version__)', silent=True).strip()
    session.log('ansible-core %s on Python %s' % (version, actual))


def no_sanity_ignores(session):
    """Findings are fixed, never ignored: any entry in tests/sanity/ignore-*.txt fails."""
    sanity_dir = os.path.join(ROOT, 'tests', 'sanity')
    entries = []
    for name in sorted(os.listdir(sanity_dir)) if os.path.isdir(sanity_dir) else []:
        if name.startswith('ignore-') and name.endswith('.txt'):
            with open(os.path.join(sanity_dir, name), encoding='utf-8') as handle:
                entries += ['%s: %s' % (name, line.rstrip()) for line in handle
                            if line.strip() and not line.lstrip().startswith('#')]
    if entries:
        session.error('sanity ignore entries are not allowed:\n' + '\n'.join(entries))


def ansible_doc(session, collections_root):
    """ansible-doc renders every module and role of the collection."""
    names = [('module', name[:-3]) for name in sorted(os.listdir(os.path.join(ROOT, 'plugins', 'modules')))
             if name.endswith('.py') and name != '__init__.py']
    names += [('role', name) for name in sorted(os.listdir(os.path.join(ROOT, 'roles')))]
    if not names:
        session.error('no modules in plugins/modules/ and no roles in roles/')
    failed = []
    for kind, name in names:
        fqcn = 'fjcloud.mail.' + name
        out = session.run('ansible-doc', '-t', kind, fqcn, env={'ANSIBLE_COLLECTIONS_PATH': collections_root},
                          silent=True, success_codes=range(256))
        if fqcn in out and 'not found' not in out and 'ERROR' not in out:
            session.log('ok      ansible-doc -t %s %s (%d lines)' % (kind, fqcn, len(out.splitlines())))
        else:
            session.warn('FAILED  ansible-doc -t %s %s:\n%s' % (kind, fqcn, out))
            failed.append(fqcn)
    if failed:
        session.error('ansible-doc failed for %s' % ', '.join(failed))


def pytest(session, *args):
    """pytest with xdist; tests marked xdist_group('postfix') share the machine's Postfix, so one worker runs them all."""
    # A short base for tmp_path: the functional harness sets TMPDIR to a test's
    # tmp_path, and ansible-core 2.21 binds a Unix socket under TMPDIR; pytest's
    # default base plus xdist's popen-gwN/ exceeds the 107-byte socket path
    # limit ("Local RPC server did not start").
    basetemp = tempfile.mkdtemp(prefix='fjm')
    try:
        session.run('pytest', '-p', 'no:cacheprovider', '-n', 'auto', '--dist', 'loadgroup', '--basetemp', basetemp,
                    *args, *session.posargs)
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)


# ---------------------------------------------------------------------------
# the per-core sessions

def units(session, core):
    """pytest tests/unit."""
    install(session, core, REQUIREMENTS)
    pytest(session, 'tests/unit')


def sanity(session, core):
    """ansible-test sanity, then ansible-doc of every module and role."""
    apt_packages(session)  # git, for the copy
    install(session, core)
    no_sanity_ignores(session)
    # ansible-test downloads a pip bootstrap script from a host out of reach
    # unless a copy is cached: put the offline stand-in there.
    session.run('python', os.path.join(ROOT, 'tools', 'get_pip_standin.py'), '--cache-for-ansible-test')
    python = session.run('python', '-c', 'import sys; print("%d.%d" % sys.version_info[:2])', silent=True).strip()
    # ansible-test runs from a copy (see tools/collection_tree.py).
    collections_root = collection_tree.copy(os.path.join(session.create_tmp(), 'collections'))
    with session.chdir(collection_tree.collection_dir(collections_root)):
        session.run('ansible-test', 'sanity', '--python', python)
    ansible_doc(session, collections_root)


def functional(session, core):
    """pytest tests/functional (the Postfix tests on the newest core only)."""
    apt_packages(session)
    install(session, core, REQUIREMENTS)
    args = ['tests/functional']
    if core != NEWEST:
        args.append('--ignore-glob=*/test_postfix*.py')
    pytest(session, *args)


# Session kind -> (what it runs, the cores it runs on): KIND-CORE on the
# interpreter MATRIX gives, tagged KIND; make test runs them in this order.
PER_CORE = {
    'units': (units, tuple(MATRIX)),
    'sanity': (sanity, tuple(MATRIX)),
    'functional': (functional, (OLDEST, NEWEST)),
}


def _per_core_session(kind, run, core):
    def session_function(session):
        run(session, core)
    session_function.__doc__ = run.__doc__
    nox.session(name='%s-%s' % (kind, core), python=MATRIX[core][1], tags=[kind])(session_function)


def _newest_only(session):  # pylint: disable=unused-argument
    """The stage on the newest core only (its work is the session it requires)."""


for _kind, (_run, _cores) in PER_CORE.items():
    for _core in _cores:
        _per_core_session(_kind, _run, _core)
    # make sanity | units | functional: quick runs.
    nox.session(name=_kind, python=False, requires=['%s-%s' % (_kind, NEWEST)])(_newest_only)


# ---------------------------------------------------------------------------
# the other sessions

# Variables that would make ansible-lint install the collection outside the checkout.
LINT_UNSET = ('ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATHS')


@nox.session(python=MATRIX[NEWEST][1], tags=['lint'])
def lint(session):
    """ansible-lint --profile production (runs yamllint) and shellcheck of every script."""
    apt_packages(session)
    install(session, NEWEST, REQUIREMENTS_LINT)
    scripts = sorted(
        os.path.join(directory, name)
        for top in ('tools', '.ci') if os.path.isdir(os.path.join(ROOT, top))
        for directory, _subdirs, names in os.walk(top)
        for name in names
        if name.endswith('.sh') or directory == '.ci'
    )
    session.run('shellcheck', *scripts, external=True)
    # As in a plain clone: not offline (see .ansible-lint), ansible-lint installs
    # the collection from the checkout into .ansible/ itself. A collections path
    # in the environment would send that install to ~/.ansible/collections.
    # (None: nox removes the variable.)
    session.run('ansible-lint', '--profile', 'production', env=dict.fromkeys(LINT_UNSET))


@nox.session(python=MATRIX[NEWEST][1], tags=['molecule'])
def molecule(session):
    """molecule test for every scenario in extensions/molecule/, one at a time (they converge this machine)."""
    apt_packages(session)
    install(session, NEWEST, REQUIREMENTS, REQUIREMENTS_MOLECULE)
    scenarios = sorted(name for name in os.listdir(os.path.join(ROOT, 'extensions', 'molecule'))
                       if os.path.exists(os.path.join(ROOT, 'extensions', 'molecule', name, 'molecule.yml')))
    if not scenarios:
        session.skip('no molecule scenarios in extensions/molecule/')
    with session.chdir(os.path.join(ROOT, 'extensions')):
        for scenario in scenarios:
            session.run('molecule', 'test', '-s', scenario)


@nox.session(python=False)
def venv(session):
    """.venv: the newest core on its Python with every test requirement (make demo, fleet, bench)."""
    apt_packages(session)
    target = os.path.join(ROOT, '.venv')
    python = os.path.join(target, 'bin', 'python')
    expected = MATRIX[NEWEST][0]
    if os.path.exists(python):
        current = subprocess.run([python, '-c', 'import platform; print(platform.python_version())'],
                                 capture_output=True, text=True, check=False).stdout.strip()
        if current != expected:
            session.log('.venv has Python %s, not %s: recreating it' % (current or '(broken)', expected))
            shutil.rmtree(target)
    if not os.path.exists(python):
        session.run(MATRIX[NEWEST][1], '-m', 'venv', target, external=True)
    session.run(python, '-m', 'pip', 'install', '--upgrade', 'ansible-core==%s.*' % NEWEST,
                '-r', REQUIREMENTS, '-r', REQUIREMENTS_LINT, '-r', REQUIREMENTS_MOLECULE, external=True)
    session.run(os.path.join(target, 'bin', 'ansible'), '--version', external=True)


# make test: everything, quick stages first.
nox.options.sessions = (
    ['lint'] + ANTSIBULL_NOX_CHECKS
    + ['%s-%s' % (kind, core) for kind, (_run, cores) in PER_CORE.items() for core in cores]
    + ['molecule']
)
