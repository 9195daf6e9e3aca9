# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m k5emu --state-dir DIR``: run the emulator until SIGTERM or SIGINT."""

from __future__ import annotations

import sys

from .app import main

if __name__ == '__main__':
    sys.exit(main())
