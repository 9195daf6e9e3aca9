# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the ``get-pip.py`` script that ansible-test downloads.

Before ``ansible-test sanity`` installs its pinned requirements into a fresh
virtual environment, it bootstraps pip with a ``get-pip.py`` script fetched
from ci-files.testing.ansible.com, a host the test machines cannot reach.
ansible-test first looks for a cached copy in
``~/.ansible/test/cache/get_pip_<version>.py``, named after the pip version it
bootstraps (which differs between ansible-test versions). Run with the Python
of the venv that holds ansible-test, ``--cache-for-ansible-test`` puts this file
there (noxfile.py does so before ``ansible-test sanity``).

ansible-test runs it (through its ``quiet_pip.py`` wrapper) with the
arguments it would give to ``get-pip.py``, for example
``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``.
This stand-in installs the bundled pip with ``ensurepip`` and then lets that
pip install the requested packages from the package index.

``ensurepip`` runs in a child process on purpose: in-process it sets
``PIP_CONFIG_FILE=/dev/null``, after which pip would ignore the machine's
``/etc/pip.conf`` (and with it, for example, a site CA bundle).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types

CACHE_OPTION = '--cache-for-ansible-test'

# Options only get-pip.py understands; pip install would reject them.
GET_PIP_ONLY_OPTIONS = frozenset((
    '--no-setuptools',
    '--no-wheel',
))


def ansible_test_pip_version():
    """The pip version that the importable ansible-test bootstraps on this Python.

    Asks ansible-test's own code; falls back to reading the default from its
    source when those internals move.
    """
    python = '%d.%d' % sys.version_info[:2]
    try:
        from ansible_test._internal.python_requirements import get_venv_packages  # pylint: disable=import-outside-toplevel
        return get_venv_packages(types.SimpleNamespace(version=python))['pip']
    except (ImportError, AttributeError, KeyError, TypeError):
        import ansible_test  # pylint: disable=import-outside-toplevel
        path = os.path.join(ansible_test.__path__[0], '_internal', 'python_requirements.py')
        with open(path, encoding='utf-8') as source:
            match = re.search(r"""\bpip=['"]([0-9][0-9.]*)['"]""", source.read())
        if not match:
            sys.exit('cannot tell which pip version ansible-test wants (%s)' % path)
        return match.group(1)


def cache_for_ansible_test():
    """Copy this file to the name under which ansible-test looks for its get-pip script, unless it is there."""
    pip_version = ansible_test_pip_version()
    cache = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % pip_version.replace('.', '_'))
    if os.path.exists(cache) and os.path.getsize(cache):
        print('ansible-test wants pip %s: %s present' % (pip_version, cache))
        return
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    shutil.copy(os.path.abspath(__file__), cache + '.tmp')
    os.replace(cache + '.tmp', cache)
    print('ansible-test wants pip %s: wrote %s' % (pip_version, cache))


def main():
    """Bootstrap pip, then install the requested packages with it."""
    if sys.argv[1:] == [CACHE_OPTION]:
        cache_for_ansible_test()
        return

    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]

    bootstrap = subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=False)

    if bootstrap.returncode:
        sys.exit('get_pip stand-in: "%s -m ensurepip" failed with exit code %d' % (sys.executable, bootstrap.returncode))

    if not args:
        return

    install = subprocess.run([sys.executable, '-m', 'pip', 'install'] + args, check=False)

    if install.returncode:
        sys.exit('get_pip stand-in: "pip install %s" failed with exit code %d' % (' '.join(args), install.returncode))


if __name__ == '__main__':
    main()
