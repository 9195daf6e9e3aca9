# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the fleet scenarios: the hosts, the emulator they relay to, the playbook runner."""

from __future__ import annotations

import os
import subprocess

import pytest

from fleet_harness import FLEET_DIR, PODMAN, RELAY_CA, Fleet, Host
from k5emu.control import Emulator


def pytest_collection_modifyitems(config, items):
    if not os.path.isfile(os.path.join(FLEET_DIR, 'inventory.ini')):
        skip = pytest.mark.skip(reason='needs the container fleet: run `make fleet` (tools/fleet/run.sh)')
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def hosts():
    with open(os.path.join(FLEET_DIR, 'hosts.tsv')) as handle:
        return [Host(*line.rstrip('\n').split('\t')) for line in handle if line.strip()]


@pytest.fixture(scope='session')
def emulator(tmp_path_factory, hosts):
    emulator = Emulator(str(tmp_path_factory.mktemp('emulator')))
    emulator.start()
    for host in hosts:
        subprocess.run(PODMAN + ['cp', emulator.ca_cert, '%s:%s' % (host.container, RELAY_CA)],
                       check=True, timeout=60)
    yield emulator
    emulator.stop()


@pytest.fixture(scope='session')
def fleet(hosts, tmp_path_factory):
    return Fleet(hosts, str(tmp_path_factory.mktemp('ansible')))
