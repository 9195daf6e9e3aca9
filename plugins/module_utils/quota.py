# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The contract's sending quota (GetSendQuota), as the modules and the Terraform entry point read it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

QUOTA_FIELDS = (('max_24_hour_send', 'Max24HourSend'), ('max_send_rate', 'MaxSendRate'), ('sent_last_24_hours', 'SentLast24Hours'))


def to_float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def get_send_quota(client):
    """``{field: float or None}`` from GetSendQuota (None when the service gave no number)."""
    response = client.call('GetSendQuota')
    return dict((key, to_float(response.text(name))) for key, name in QUOTA_FIELDS)
