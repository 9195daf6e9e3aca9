# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the ``get-pip.py`` script that ansible-test downloads.

Before ``ansible-test sanity`` installs its pinned requirements into a fresh
virtual environment, it bootstraps pip with a ``get-pip.py`` script fetched
from ci-files.testing.ansible.com, a host the test machines cannot reach.
ansible-test first looks for a cached copy in
``~/.ansible/test/cache/get_pip_<version>.py``; ``noxfile.py`` puts this
file there.

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

import subprocess
import sys

# Options only get-pip.py understands; pip install would reject them.
GET_PIP_ONLY_OPTIONS = frozenset((
    '--no-setuptools',
    '--no-wheel',
))


def main():
    """Bootstrap pip, then install the requested packages with it."""
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
