# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the checkout importable as ``ansible_collections.fjcloud.mail``.

Python code of a collection imports itself by its full collection name, and
ansible-playbook finds it through ``ANSIBLE_COLLECTIONS_PATH``. Both need a
directory tree ``ansible_collections/fjcloud/mail``. When the checkout is not
already inside one, link it into a private tree so that plain ``pytest``
works from any clone.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_collection_tree():
    """tools/collection_tree.py, the one place that builds the tree (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location('collection_tree', os.path.join(REPO_ROOT, 'tools', 'collection_tree.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _collections_root():
    collection_tree = _load_collection_tree()
    root = collection_tree.enclosing_root(REPO_ROOT)
    if root is not None:
        return root
    return collection_tree.link(os.path.join(tempfile.gettempdir(), 'fjcloud-mail-' + hashlib.sha1(REPO_ROOT.encode()).hexdigest()[:10]))


COLLECTIONS_ROOT = _collections_root()
# The modules keep pacing and login records in a private state directory under
# the user's home: tests keep theirs in a directory of their own (0700).
os.environ['FJCLOUD_MAIL_STATE_DIR'] = tempfile.mkdtemp(prefix='fjcloud-mail-state-')
atexit.register(shutil.rmtree, os.environ['FJCLOUD_MAIL_STATE_DIR'], True)
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ['ANSIBLE_COLLECTIONS_PATH'] = COLLECTIONS_ROOT
# The Python programs that ship with the collection (src/: the emulator k5emu, started with
# python -m, and fjcloud_mail_external) are imported from the checkout.
SRC_DIR = os.path.join(REPO_ROOT, 'src')
if SRC_DIR not in sys.path:
    sys.path.insert(0, SRC_DIR)
