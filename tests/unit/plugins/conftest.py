# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the unit tests of module_utils and of modules.

pytest puts the directory of this file on sys.path, so that the tests of both
import the scripted HTTP session as ``from fake_http import ...``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from fake_http import FakeClock, FakeSession


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path, monkeypatch):
    """Pacing and login-guard records of each test in a directory of its own: each test starts with none."""
    monkeypatch.setenv('FJCLOUD_MAIL_STATE_DIR', str(tmp_path / 'state'))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def session(clock):
    """A fake HTTP session; the test fails if an expected call did not happen."""
    fake = FakeSession(clock)
    yield fake
    fake.assert_done()
