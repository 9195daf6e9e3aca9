# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

The contract's sending quota (GetSendQuota) and delivery statistics (GetSendStatistics), as the modules
and the Terraform entry point read them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.fjcloud.mail.plugins.module_utils.replies import find_all, find_text

QUOTA_FIELDS = (('max_24_hour_send', 'Max24HourSend'), ('max_send_rate', 'MaxSendRate'), ('sent_last_24_hours', 'SentLast24Hours'))
DATA_POINT_FIELDS = (('delivery_attempts', 'DeliveryAttempts'), ('bounces', 'Bounces'), ('complaints', 'Complaints'),
                     ('rejects', 'Rejects'))
_TIMESTAMP = re.compile(r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?')


def to_float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def get_send_quota(client):
    """``{field: float or None}`` from GetSendQuota (None when the service gave no number)."""
    response = client.call('GetSendQuota')
    return dict((key, to_float(response.text(name))) for key, name in QUOTA_FIELDS)


def get_send_statistics(client):
    """The data points of GetSendStatistics, oldest first: ``timestamp`` as given, counts as int or None."""
    response = client.call('GetSendStatistics')
    points = []
    for member in find_all(response.root, 'SendDataPoints', 'member'):
        point = dict((key, _int(find_text(member, name))) for key, name in DATA_POINT_FIELDS)
        point['timestamp'] = find_text(member, 'Timestamp')
        points.append(point)
    # The service documents no order (the emulator answers newest first).
    return sorted(points, key=lambda point: _time_key(point['timestamp']))


def _int(text):
    value = to_float(text)
    return int(value) if value is not None else None


def _time_key(timestamp):
    """Sort key of an ISO 8601 UTC timestamp, with or without fractions of a second; unreadable ones last."""
    match = _TIMESTAMP.match(timestamp or '')
    if not match:
        return (1, timestamp or '')
    fields = match.groups()
    return (0,) + tuple(int(field) for field in fields[:6]) + (float('0.' + (fields[6] or '0')),)
