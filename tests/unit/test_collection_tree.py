# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/collection_tree.py, the one builder of ansible_collections/fjcloud/mail, on real git checkouts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os
import subprocess
import sys

import pytest

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'tools', 'collection_tree.py')
SPEC = importlib.util.spec_from_file_location('collection_tree', TOOL)
collection_tree = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(collection_tree)


def write(path, text='x\n'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(text)


@pytest.fixture
def checkout(tmp_path):
    """A git checkout with a tracked, an untracked, an ignored and a deleted-but-tracked file."""
    root = str(tmp_path / 'checkout')
    write(os.path.join(root, '.gitignore'), '.nox/\n')
    write(os.path.join(root, 'plugins', 'modules', 'tracked.py'))
    write(os.path.join(root, 'plugins', 'modules', 'gone.py'))
    subprocess.run(['git', 'init', '-q', root], check=True)
    subprocess.run(['git', '-C', root, 'add', '-A'], check=True)
    os.unlink(os.path.join(root, 'plugins', 'modules', 'gone.py'))
    write(os.path.join(root, 'untracked.txt'))
    write(os.path.join(root, '.nox', 'venv', 'big.yml'))
    return root


def test_copy_holds_the_checkout_as_on_disk_in_a_repository_of_its_own(checkout, tmp_path):
    root = collection_tree.copy(str(tmp_path / 'tree'), checkout)
    target = os.path.join(root, 'ansible_collections', 'fjcloud', 'mail')
    files = sorted(os.path.relpath(os.path.join(d, n), target)
                   for d, subdirs, names in os.walk(target) if '.git' not in d.split(os.sep) for n in names)
    assert files == ['.gitignore', 'plugins/modules/tracked.py', 'untracked.txt']
    assert not os.path.islink(target)
    # ansible-test lists the copy's files with git: the copy must be its own (untracked) repository
    listed = subprocess.run(['git', '-C', target, 'ls-files', '--others', '--exclude-standard'],
                            capture_output=True, text=True, check=True).stdout.split()
    assert sorted(listed) == files


def test_copy_replaces_an_earlier_tree(checkout, tmp_path):
    dest = str(tmp_path / 'tree')
    collection_tree.link(dest, checkout)
    collection_tree.copy(dest, checkout)
    write(os.path.join(checkout, 'plugins', 'modules', 'tracked.py'), 'changed\n')
    collection_tree.copy(dest, checkout)
    with open(os.path.join(collection_tree.collection_dir(dest), 'plugins', 'modules', 'tracked.py'), encoding='utf-8') as handle:
        assert handle.read() == 'changed\n'


def test_link_points_at_the_checkout_and_is_found_as_enclosing_root(checkout, tmp_path):
    dest = str(tmp_path / 'tree')
    assert collection_tree.link(dest, checkout) == dest
    target = collection_tree.collection_dir(dest)
    assert os.path.realpath(target) == os.path.realpath(checkout)
    other = str(tmp_path / 'other')
    os.mkdir(other)
    collection_tree.link(dest, other)  # re-pointed, not stacked inside the old target
    assert os.path.realpath(target) == os.path.realpath(other)
    assert not os.path.exists(os.path.join(checkout, 'mail'))
    assert collection_tree.enclosing_root(target) == dest
    assert collection_tree.enclosing_root(checkout) is None


def test_command_line_prints_the_collections_root(checkout, tmp_path):
    dest = str(tmp_path / 'tree')
    done = subprocess.run([sys.executable, TOOL, 'link', dest], capture_output=True, text=True, check=True)
    assert done.stdout == dest + '\n'
    assert os.path.isdir(os.path.join(dest, 'ansible_collections', 'fjcloud', 'mail', 'tools'))


def test_command_line_rejects_an_unknown_kind(tmp_path):
    done = subprocess.run([sys.executable, TOOL, 'move', str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert done.stderr == 'usage: python tools/collection_tree.py link|copy DEST\n'
    assert not os.listdir(str(tmp_path))
