# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the collection tarball from a copy of the checkout and install it, as a user would."""

from __future__ import annotations

import os
import subprocess

from harness import BIN_DIR

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# What a test run, a venv or a build leaves in a checkout, at any depth. The
# copy leaves them out, so that it holds what a fresh clone holds.
LEFTOVER_NAMES = frozenset([
    '.git', '.venv', '.build', '.nox', '.tox', '.ansible', '.pytest_cache', '.mypy_cache', '.ruff_cache',
    '.cache', '__pycache__', 'dist', 'build', 'context', 'htmlcov', '.coverage',
])


def _is_leftover(rel_path):
    name = os.path.basename(rel_path)
    return (name in LEFTOVER_NAMES or name.startswith('.venv-') or name.endswith(('.egg-info', '.tar.gz', '.pyc'))
            or rel_path == os.path.join('tests', 'output') or rel_path == os.path.join('changelogs', '.plugin-cache.yaml'))


def copy_checkout(dest):
    """Copy the checkout's files to ``dest`` without leftovers; return their relative paths."""
    copied = set()
    for dirpath, dirnames, filenames in os.walk(REPO_ROOT):
        rel_dir = os.path.relpath(dirpath, REPO_ROOT)
        rel_dir = '' if rel_dir == '.' else rel_dir
        dirnames[:] = [d for d in dirnames if not _is_leftover(os.path.join(rel_dir, d))]
        os.makedirs(os.path.join(dest, rel_dir), exist_ok=True)
        for name in filenames:
            rel_path = os.path.join(rel_dir, name)
            if _is_leftover(rel_path):
                continue
            with open(os.path.join(dirpath, name), 'rb') as src, open(os.path.join(dest, rel_path), 'wb') as dst:
                dst.write(src.read())
            copied.add(rel_path)
    return copied


def run(argv, **kwargs):
    """Run a command, failing the test with its output when it fails."""
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert completed.returncode == 0, '%s\n%s%s' % (argv, completed.stdout, completed.stderr)
    return completed


def galaxy_env(collections_path=None):
    """An environment for ansible commands that see only ``collections_path`` (not the checkout)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='False',
               PATH=BIN_DIR + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    if collections_path:
        env['ANSIBLE_COLLECTIONS_PATH'] = str(collections_path)
    return env


def build(source, output_dir):
    """``ansible-galaxy collection build`` of ``source``; return the tarball's path."""
    run([os.path.join(BIN_DIR, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(output_dir), str(source)],
        env=galaxy_env())
    tarballs = [name for name in os.listdir(str(output_dir)) if name.endswith('.tar.gz')]
    assert len(tarballs) == 1, tarballs
    return os.path.join(str(output_dir), tarballs[0])


def install(tarball, collections_path):
    """``ansible-galaxy collection install -p``; return the installed collection's directory."""
    # Only the target is configured, so a copy installed elsewhere (~/.ansible) is no reason to skip it.
    run([os.path.join(BIN_DIR, 'ansible-galaxy'), 'collection', 'install', '-p', str(collections_path), tarball],
        env=galaxy_env(collections_path))
    return os.path.join(str(collections_path), 'ansible_collections', 'fjcloud', 'mail')
