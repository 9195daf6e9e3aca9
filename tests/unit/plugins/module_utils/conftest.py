# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the unit tests of module_utils (the shared ones are in ../conftest.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest


@pytest.fixture
def state(tmp_path):
    """A state directory path for pacers and login guards (not created yet)."""
    return str(tmp_path / 'state')
