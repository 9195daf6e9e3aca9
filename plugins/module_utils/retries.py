# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backoff between repeated calls."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random

BACKOFF_BASE = 1.0
BACKOFF_MAX = 20.0


class Backoff:
    """Exponential backoff with jitter, bounded by ``retries`` extra attempts."""

    def __init__(self, retries, base=BACKOFF_BASE, maximum=BACKOFF_MAX, rng=None):
        self.retries = retries
        self.base = base
        self.maximum = maximum
        self.rng = rng or random.random

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        cap = min(self.maximum, self.base * (2 ** attempt))
        # Equal jitter: never zero, so a throttled caller really slows down.
        delay = cap / 2 + self.rng() * cap / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.maximum))
        return delay


def retry_after(headers):
    value = headers.get('retry-after')
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
