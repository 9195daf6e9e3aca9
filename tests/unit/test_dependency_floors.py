# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One source for the Python dependency floors.

requirements.txt (the collection's Python requirements, which ansible-builder reads
through meta/execution-environment.yml) and the dependencies of the pip distribution
in pyproject.toml name the same packages with the same floors; the emulator's own
dependencies stay in its extra; and every file the EE definition names exists and
ships, at the same place, in the sdist and the wheel.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION = 'ansible_collections/fjcloud/mail/'
# What only the emulator (k5emu) imports: never a dependency of a plain pip install.
EMULATOR_ONLY = {'trustme', 'aiosmtpd'}
REQUIREMENT = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9A-Za-z.]*)$')


def read(name):
    with open(os.path.join(REPO_ROOT, name), encoding='utf-8') as handle:
        return handle.read()


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def floors(lines, source):
    """{package: floor} of requirement lines of the form ``name>=version`` (comments and blank lines skipped)."""
    result = {}
    for line in lines:
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        match = REQUIREMENT.match(line)
        assert match, '%s: %r is not of the form name>=version' % (source, line)
        name = canonical(match.group(1))
        assert name not in result, '%s names %s twice' % (source, name)
        result[name] = match.group(2)
    return result


def pyproject():
    text = read('pyproject.toml')
    if tomllib is not None:
        return tomllib.loads(text)
    # Python 3.10 has no tomllib: the few keys used here, written as this repository writes them.
    deps = re.search(r'(?ms)^dependencies = \[(.*?)^\]', text).group(1)
    extras = re.search(r'(?ms)^\[project\.optional-dependencies\]\n(.*?)^\[', text).group(1)
    sdist = re.search(r'(?ms)^\[tool\.hatch\.build\.targets\.sdist\]\nonly-include = \[(.*?)^\]', text).group(1)
    force = re.search(r'(?ms)^\[tool\.hatch\.build\.targets\.wheel\.force-include\]\n(.*?)(?:^\[|\Z)', text).group(1)
    return {
        'project': {
            'dependencies': re.findall(r'"([^"]+)"', deps),
            'optional-dependencies': dict((name, re.findall(r'"([^"]+)"', values)) for name, values in
                                          re.findall(r'(?m)^([\w-]+) = \[(.*)\]$', extras)),
        },
        'tool': {'hatch': {'build': {'targets': {
            'sdist': {'only-include': re.findall(r'"([^"]+)"', sdist)},
            'wheel': {'force-include': dict(re.findall(r'(?m)^"([^"]+)" = "([^"]+)"$', force))},
        }}}},
    }


def ee_files():
    """The files meta/execution-environment.yml names, relative to the collection root."""
    ee = yaml.safe_load(read(os.path.join('meta', 'execution-environment.yml')))
    assert ee['version'] == 1
    return ee['dependencies']


def test_requirements_and_pyproject_have_the_same_floors():
    ee = ee_files()
    assert ee['python'] == 'requirements.txt'
    required = floors(read(ee['python']).splitlines(), ee['python'])
    distributed = floors(pyproject()['project']['dependencies'], 'pyproject.toml [project] dependencies')
    assert distributed == required
    # The reasons written in requirements.txt: urllib3 2 (a truncated reply is not taken as complete),
    # and the first requests that accepts it.
    assert {'requests', 'urllib3', 'lxml'} <= set(required)


def test_emulator_only_dependencies_are_in_the_emulator_extra():
    project = pyproject()['project']
    assert not set(floors(project['dependencies'], 'dependencies')) & EMULATOR_ONLY
    extras = project['optional-dependencies']
    assert set(floors(extras['emulator'], 'emulator extra')) == EMULATOR_ONLY
    for name, requirements in extras.items():
        if name != 'emulator':  # other extras may pin exactly (terraform: tf==1.2.0): compare the names only
            names = set(canonical(re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', line.strip()).group(0)) for line in requirements)
            assert not names & EMULATOR_ONLY, name


def test_every_file_the_ee_definition_names_exists_and_ships():
    targets = pyproject()['tool']['hatch']['build']['targets']
    names = sorted(ee_files().values())
    assert names == ['bindep.txt', 'requirements.txt']
    for name in names:
        assert os.path.isfile(os.path.join(REPO_ROOT, name)), name
        # The wheel is built from the sdist: both carry it, the wheel beside meta/ as in the tarball.
        assert name in targets['sdist']['only-include'], name
        assert targets['wheel']['force-include'][name] == COLLECTION + name, name
