# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pip distribution fjcloud-mail built from the checkout, and venvs it is installed into."""

from __future__ import annotations

import os
import re
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def galaxy_version():
    with open(os.path.join(REPO_ROOT, 'galaxy.yml'), encoding='utf-8') as handle:
        return re.search(r'(?m)^version:\s*(\S+)', handle.read()).group(1)


def run(argv, **kwargs):
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert completed.returncode == 0, '%s\n%s\n%s' % (argv, completed.stdout, completed.stderr)
    return completed


def clean_env(**extra):
    """The environment of a user's shell: none of the test session's collection, OS_* or PYTHONPATH settings."""
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith(('OS_', 'ANSIBLE_', 'FJCLOUD_MAIL_', 'PYTHON', 'VIRTUAL_ENV')))
    env.update(extra)
    return env


def build_dists(out):
    """(sdist, wheel built from that sdist) of the checkout, in directory ``out``."""
    run([sys.executable, '-m', 'build', '--outdir', str(out), REPO_ROOT], env=clean_env())
    sdists, wheels = sorted(out.glob('*.tar.gz')), sorted(out.glob('*.whl'))
    assert len(sdists) == 1 and len(wheels) == 1, os.listdir(out)
    return sdists[0], wheels[0]


class Venv:
    def __init__(self, path, *requirements):
        self.path = path
        run([sys.executable, '-m', 'venv', str(path)])
        run([self.bin('python'), '-m', 'pip', 'install', '-q', '--disable-pip-version-check'] + list(requirements),
            env=clean_env())

    def bin(self, name):
        return str(self.path / 'bin' / name)

    def imports(self, module):
        return subprocess.run([self.bin('python'), '-c', 'import %s' % module], env=clean_env(),
                              capture_output=True, check=False).returncode == 0
