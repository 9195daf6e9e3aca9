# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way to put this checkout at ``ansible_collections/fjcloud/mail``.

Ansible finds a collection only inside such a tree (``ANSIBLE_COLLECTIONS_PATH``
names its parent), and collection code imports itself by that full name.
Everything that needs the tree uses this file: tests/conftest.py, noxfile.py
(sanity, ansible-doc, lint), tools/demo.sh, molecule. Two kinds:

* ``link``: a symlink to the checkout; edits show at once. Enough for
  ansible-playbook, ansible-doc, ansible-lint and pytest.
* ``copy``: the checkout's files (tracked plus untracked-but-not-ignored, as on
  disk) in a fresh git repository of their own. ansible-test needs this: it
  resolves symlinks in its working directory, and it lists content with git,
  which in the checkout itself would see none of an ignored build directory.

As a program (run with python; prints the directory for ANSIBLE_COLLECTIONS_PATH)::

    python tools/collection_tree.py link|copy DEST
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMESPACE = 'fjcloud'
NAME = 'mail'
# Left out of a copy when the checkout is not a git repository.
NOT_COPIED = ('.git', '.venv', '.nox', '.build', 'output', '__pycache__', '.pytest_cache', '.ansible')


def collection_dir(collections_root):
    """Where the collection sits under ``collections_root``."""
    return os.path.join(collections_root, 'ansible_collections', NAMESPACE, NAME)


def enclosing_root(path=REPO_ROOT):
    """The collections root when ``path`` already is .../ansible_collections/fjcloud/mail, else None."""
    parts = os.path.abspath(path).split(os.sep)
    if parts[-3:] == ['ansible_collections', NAMESPACE, NAME]:
        return os.sep.join(parts[:-3])
    return None


def link(collections_root, source=REPO_ROOT):
    """Link ``source`` at ``collections_root``/ansible_collections/fjcloud/mail; return ``collections_root``.

    Safe when several processes (pytest workers) do it at once: the link is
    replaced atomically, and left alone when it already points at ``source``.
    """
    target = collection_dir(collections_root)
    source = os.path.realpath(source)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.realpath(target) != source:
        tmp_link = '%s.%d' % (target, os.getpid())
        os.symlink(source, tmp_link)
        os.replace(tmp_link, target)
    return collections_root


def _files(source):
    """Paths (relative to ``source``) that a copy holds."""
    listing = subprocess.run(['git', '-C', source, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                             capture_output=True, check=False)
    if listing.returncode == 0:
        paths = [path for path in listing.stdout.decode('utf-8', 'surrogateescape').split('\0') if path]
        # deleted but not yet committed files are listed too: skip them
        return [path for path in paths if os.path.lexists(os.path.join(source, path))]
    paths = []
    for directory, subdirs, names in os.walk(source):
        subdirs[:] = [name for name in subdirs if name not in NOT_COPIED]
        paths.extend(os.path.relpath(os.path.join(directory, name), source)
                     for name in names if not name.endswith('.pyc'))
    return paths


def copy(collections_root, source=REPO_ROOT):
    """A fresh copy of ``source`` at ``collections_root``/ansible_collections/fjcloud/mail in a git repository of its own."""
    target = collection_dir(collections_root)
    if os.path.lexists(target):
        if os.path.islink(target):
            os.unlink(target)
        else:
            shutil.rmtree(target)
    os.makedirs(target)
    for path in _files(source):
        destination = os.path.join(target, path)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copy2(os.path.join(source, path), destination, follow_symlinks=False)
    subprocess.run(['git', 'init', '-q', target], check=True)
    return collections_root


def main(argv):
    """Command line: ``link|copy DEST``."""
    if len(argv) != 2 or argv[0] not in ('link', 'copy'):
        sys.exit('usage: python tools/collection_tree.py link|copy DEST')
    kind, dest = argv
    root = (link if kind == 'link' else copy)(os.path.abspath(dest))
    print(root)


if __name__ == '__main__':
    main(sys.argv[1:])
