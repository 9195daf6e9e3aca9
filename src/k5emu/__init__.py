# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""k5emu: an emulator of the FUJITSU Cloud K5 Email Delivery Service for tests.

One process serves, over HTTPS on one port, a Keystone v3 subset
(``POST /v3/auth/tokens``) and the mail API (``POST /``), plus admin endpoints
under ``/_emulator/`` for tests. Start it with ``k5emu --state-dir DIR`` (or ``python -m k5emu``)
or from Python with :class:`k5emu.control.Emulator`.
"""

from __future__ import annotations

# The release of fjcloud-mail it ships with (galaxy.yml; test_packaging.py checks that they agree).
__version__ = '1.0.0'

DEFAULT_NAMESPACE = 'http://mail.k5.fujitsu.com/doc/2010-12-01/'
DEFAULT_REGION = 'jp-east-1'
DEFAULT_CONTRACT = 'ct0000000001'
DEFAULT_PROJECT_ID = '0123456789abcdef0123456789abcdef'
DEFAULT_PROJECT_NAME = 'demo-project'
DEFAULT_USER = 'demo-user'
DEFAULT_PASSWORD = 'demo-password'
DENIED_USER = 'denied-user'
DENIED_PASSWORD = 'denied-password'
USER_AGENT = 'FGCP-OS-API-CLIENT'
# The header that carries ``admin_secret`` of endpoint.json on every request to ``/_emulator/``.
ADMIN_SECRET_HEADER = 'X-K5emu-Admin-Secret'
