# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fixture of the module tests: a runner of modules against a scripted mail API (mail_api.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from .mail_api import ModuleRunner


@pytest.fixture
def api(session, clock, monkeypatch):
    """Expect calls with api.expect(...) / api.expect_login(...), then api.run(module.main, ...)."""
    return ModuleRunner(session, clock, monkeypatch)
