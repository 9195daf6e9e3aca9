# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures that run real ansible commands against a real emulator."""

from __future__ import annotations

import pytest

from harness import DEMO_AUTH, Ansible
from k5emu.control import Emulator
from packaging_harness import Venv, build_dists
from resolver import PrivateResolver, unavailable
from test_postfix_relay import locked_machine


@pytest.fixture(scope='module')
def emulator_process(tmp_path_factory):
    emulator = Emulator(str(tmp_path_factory.mktemp('emulator')))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def emulator(emulator_process):
    emulator_process.reset()
    return emulator_process


@pytest.fixture(scope='module')
def unpaced_emulator_process(tmp_path_factory):
    """An emulator without the rate limit, for the tests that drive its API directly."""
    emulator = Emulator(str(tmp_path_factory.mktemp('k5emu')), min_interval=0)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(unpaced_emulator_process):
    """The unpaced emulator, running (a test may have stopped it) and back to its start-up settings."""
    emulator = unpaced_emulator_process
    if not emulator.running:
        emulator.start()
    emulator.reset()
    emulator.set_config(min_interval=0, token_ttl=10800, max_24hour_send=200, max_send_rate=1)
    return emulator


@pytest.fixture
def machine():
    """This machine's Postfix, locked for the test and put back afterwards (test_postfix_*.py)."""
    with locked_machine():
        yield


@pytest.fixture
def ansible(tmp_path):
    return Ansible(tmp_path)


@pytest.fixture
def private_dns(tmp_path):
    """A name server on a loopback address that answers NXDOMAIN to every query (resolver.py); a subprocess run
    with its ``command`` looks host names up there only, so that no lookup leaves the machine."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with PrivateResolver(tmp_path / 'dns') as resolver:
        yield resolver


@pytest.fixture
def conn(emulator):
    """Connection options for a token from the emulator's Keystone (the log starts after it)."""
    token = emulator.token()
    emulator.clear_log()
    return dict(endpoint=emulator.url, ca_cert=emulator.ca_cert, auth_token=token)


@pytest.fixture
def password_conn(emulator):
    return dict(endpoint=emulator.url, ca_cert=emulator.ca_cert, auth=dict(DEMO_AUTH, auth_url=emulator.auth_url))


@pytest.fixture(scope='session')
def dists(tmp_path_factory):
    """The pip distribution built from the checkout: (sdist, wheel made from that sdist)."""
    return build_dists(tmp_path_factory.mktemp('dist'))


@pytest.fixture(scope='session')
def bare_venv(dists, tmp_path_factory):
    """A fresh venv with the wheel and nothing else: the ``fjcloud-mail-external`` command, and a ``k5emu`` command that
    says to install the ``emulator`` extra; no trustme, no aiosmtpd, no ansible-core. Shared by test_packaging.py and test_release.py (one xdist group)."""
    return Venv(tmp_path_factory.mktemp('venv-bare'), str(dists[1]))


@pytest.fixture(scope='session')
def emulator_venv(dists, tmp_path_factory):
    """A fresh venv with the wheel and its ``emulator`` extra (trustme, aiosmtpd): the ``k5emu`` command that runs.
    Shared by test_packaging.py and test_release.py (one xdist group)."""
    return Venv(tmp_path_factory.mktemp('venv-emulator'), '%s[emulator]' % dists[1])
