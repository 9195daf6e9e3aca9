# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Execution Environments: ansible-builder finds the collection's Python and system requirements.

No image is built (no container registry is reachable here). Instead the test
runs ``ansible-builder create`` for an EE that installs the built tarball, then
runs the two steps of the generated build that read the collection, from the
generated context itself: the galaxy stage's ``ansible-galaxy collection install
-r requirements.yml`` (in ``_build``, the stage's working directory) and the
builder stage's ``introspect.py``, whose output the image's pip and bindep steps
install. ``ansible-builder introspect`` on the installed collection must list
the same, whether the collection comes from the tarball or from a pip install of
the wheel.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest
import yaml

from collection_build import REPO_ROOT, build, copy_checkout, galaxy_env, install, run
from harness import BIN_DIR

# The EE definition a user writes for the built tarball (docs/awx.md).
EE_DEFINITION = '''
version: 3
images:
  base_image:
    name: registry.example.invalid/ee-minimal:latest
additional_build_files:
  - src: {tarball}
    dest: collections
dependencies:
  ansible_core:
    package_pip: ansible-core
  ansible_runner:
    package_pip: ansible-runner
  galaxy:
    collections:
      - name: collections/{tarball}
        type: file
'''


def requirement_lines(path):
    with open(os.path.join(REPO_ROOT, path)) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith('#')]


PYTHON_REQUIREMENTS = requirement_lines('requirements.txt')
SYSTEM_REQUIREMENTS = requirement_lines('bindep.txt')


@pytest.fixture(scope='session', name='builder_bin')
def fixture_builder_bin(tmp_path_factory):
    """A venv with ansible-builder, made once per test session; returns its bin directory."""
    venv = tmp_path_factory.mktemp('ansible-builder-venv')
    run([sys.executable, '-m', 'venv', str(venv)])
    run([str(venv / 'bin' / 'pip'), 'install', '--quiet', '--disable-pip-version-check', 'ansible-builder'])
    return venv / 'bin'


@pytest.fixture(scope='module', name='tarball')
def fixture_tarball(tmp_path_factory):
    source = tmp_path_factory.mktemp('checkout') / 'mail'
    copy_checkout(str(source))
    return build(source, tmp_path_factory.mktemp('dist'))


def test_requirement_files_declare_requests_and_lxml():
    meta = yaml.safe_load(open(os.path.join(REPO_ROOT, 'meta', 'execution-environment.yml')).read())
    assert meta == {'version': 1, 'dependencies': {'python': 'requirements.txt', 'system': 'bindep.txt'}}
    names = [line.split('>=')[0] for line in PYTHON_REQUIREMENTS]
    assert {'requests', 'lxml'} <= set(names), PYTHON_REQUIREMENTS
    assert all('>=' in line for line in PYTHON_REQUIREMENTS), 'every requirement has a floor'
    # Postfix belongs to the managed hosts, not to the controller or its image.
    assert not [line for line in SYSTEM_REQUIREMENTS if 'postfix' in line or 'sasl' in line]


def test_ansible_builder_create_installs_the_collection_requirements(builder_bin, tarball, tmp_path):
    name = os.path.basename(tarball)
    work = tmp_path / 'ee'
    work.mkdir()
    shutil.copyfile(tarball, str(work / name))
    (work / 'execution-environment.yml').write_text(EE_DEFINITION.format(tarball=name))
    run([str(builder_bin / 'ansible-builder'), 'create', '-f', 'execution-environment.yml', '-c', 'context'],
        cwd=str(work))

    build_dir = work / 'context' / '_build'
    assert yaml.safe_load((build_dir / 'requirements.yml').read_text()) == {
        'collections': [{'name': 'collections/' + name, 'type': 'file'}]}
    assert (build_dir / 'collections' / name).read_bytes() == open(tarball, 'rb').read()
    containerfile = (work / 'context' / 'Containerfile').read_text()
    assert 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile
    assert '/output/scripts/introspect.py introspect' in containerfile

    # The galaxy stage, in its working directory (_build is copied to /build).
    image_collections = tmp_path / 'usr-share-ansible-collections'
    run([os.path.join(BIN_DIR, 'ansible-galaxy'), 'collection', 'install', '-r', 'requirements.yml',
         '-p', str(image_collections)], cwd=str(build_dir), env=galaxy_env(image_collections))
    # The builder stage: what it writes is what pip and bindep install into the image.
    run([str(builder_bin / 'python'), str(build_dir / 'scripts' / 'introspect.py'), 'introspect', str(image_collections),
         '--write-pip', str(tmp_path / 'requirements.txt'), '--write-bindep', str(tmp_path / 'bindep.txt')])
    pip_lines = (tmp_path / 'requirements.txt').read_text().splitlines()
    bindep_lines = (tmp_path / 'bindep.txt').read_text().splitlines()
    assert pip_lines == ['%s  # from collection fjcloud.mail' % line for line in PYTHON_REQUIREMENTS]
    assert bindep_lines == ['%s  # from collection fjcloud.mail' % line for line in SYSTEM_REQUIREMENTS]
    assert [line.split('>=')[0] for line in pip_lines if line.startswith(('requests>=', 'lxml>='))] == ['requests', 'lxml']

    # bindep parses the file that the image's install step gets, for both profiles (exit 2 on a syntax error).
    for profile in ([], ['compile']):
        run([str(builder_bin / 'bindep'), '-f', str(tmp_path / 'bindep.txt'), '-l', 'newline'] + profile)


def test_ansible_builder_introspect_lists_requests_and_lxml(builder_bin, tarball, tmp_path):
    collections_path = tmp_path / 'collections'
    install(tarball, collections_path)
    out = run([str(builder_bin / 'ansible-builder'), 'introspect', '--sanitize', str(collections_path)]).stdout
    found = yaml.safe_load(out)
    assert found['python'] == ['%s  # from collection fjcloud.mail' % line for line in PYTHON_REQUIREMENTS]
    assert found['system'] == ['%s  # from collection fjcloud.mail' % line for line in SYSTEM_REQUIREMENTS]
    assert any(line.startswith('requests>=') for line in found['python'])
    assert any(line.startswith('lxml>=') for line in found['python'])


# Uses the bare venv of test_packaging.py (the wheel, no extras): one worker builds it once.
@pytest.mark.xdist_group('packaging')
def test_ansible_builder_introspect_reads_a_pip_install_as_a_tarball_install(builder_bin, bare_venv):
    """The wheel carries every file meta/execution-environment.yml names, beside meta/ as in the tarball."""
    (site_packages,) = bare_venv.path.glob('lib/python*/site-packages')
    out = run([str(builder_bin / 'ansible-builder'), 'introspect', '--sanitize', str(site_packages)]).stdout
    found = yaml.safe_load(out)
    assert found['python'] == ['%s  # from collection fjcloud.mail' % line for line in PYTHON_REQUIREMENTS]
    assert found['system'] == ['%s  # from collection fjcloud.mail' % line for line in SYSTEM_REQUIREMENTS]
