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
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collections_root():
    parts = REPO_ROOT.split(os.sep)
    if parts[-3:-1] == ['ansible_collections', 'fjcloud'] and parts[-1] == 'mail':
        return os.sep.join(parts[:-3])
    root = os.path.join(tempfile.gettempdir(), 'fjcloud-mail-' + hashlib.sha1(REPO_ROOT.encode()).hexdigest()[:10])
    link_dir = os.path.join(root, 'ansible_collections', 'fjcloud')
    link = os.path.join(link_dir, 'mail')
    os.makedirs(link_dir, exist_ok=True)
    if os.path.realpath(link) != REPO_ROOT:
        tmp_link = '%s.%d' % (link, os.getpid())
        os.symlink(REPO_ROOT, tmp_link)
        os.replace(tmp_link, link)
    return root


COLLECTIONS_ROOT = _collections_root()
# The modules keep pacing and login records in a private state directory under
# the user's home: tests keep theirs in a directory of their own (0700).
os.environ['FJCLOUD_MAIL_STATE_DIR'] = tempfile.mkdtemp(prefix='fjcloud-mail-state-')
atexit.register(shutil.rmtree, os.environ['FJCLOUD_MAIL_STATE_DIR'], True)
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ['ANSIBLE_COLLECTIONS_PATH'] = COLLECTIONS_ROOT
# The emulator package lives beside the tests and is started with python -m.
EMULATOR_DIR = os.path.join(REPO_ROOT, 'tests', 'emulator')
if EMULATOR_DIR not in sys.path:
    sys.path.insert(0, EMULATOR_DIR)
