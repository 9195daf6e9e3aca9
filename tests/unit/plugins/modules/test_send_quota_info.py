# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""send_quota_info: the quota and the statistics as the module returns them, against scripted replies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fjcloud.mail.plugins.modules import send_quota_info

from .mail_api import access_denied, ok

QUOTA = ('<SentLast24Hours>12.0</SentLast24Hours><Max24HourSend>200.0</Max24HourSend>'
         '<MaxSendRate>1.0</MaxSendRate>')


def point(timestamp, attempts, bounces=0, complaints=0, rejects=0):
    return ('<member><DeliveryAttempts>%d</DeliveryAttempts><Timestamp>%s</Timestamp><Rejects>%d</Rejects>'
            '<Bounces>%d</Bounces><Complaints>%d</Complaints></member>' % (attempts, timestamp, rejects, bounces, complaints))


def test_quota_and_statistics_oldest_first(api):
    """The service gives the data points in no order (the emulator newest first); the module sorts them."""
    api.expect('GetSendQuota', ok('GetSendQuota', QUOTA))
    api.expect('GetSendStatistics', ok('GetSendStatistics', '<SendDataPoints>%s%s%s</SendDataPoints>' % (
        point('2026-11-24T10:30:00.000Z', 3, bounces=1), point('2026-11-24T10:15:00Z', 2, rejects=1),
        point('2026-11-23T23:45:00.000Z', 5, complaints=2))))
    result = api.run(send_quota_info.main)
    assert result == dict(changed=False, quota=dict(max_24_hour_send=200.0, max_send_rate=1.0, sent_last_24_hours=12.0),
                          send_data_points=[
                              dict(timestamp='2026-11-23T23:45:00.000Z', delivery_attempts=5, bounces=0, complaints=2, rejects=0),
                              dict(timestamp='2026-11-24T10:15:00Z', delivery_attempts=2, bounces=0, complaints=0, rejects=1),
                              dict(timestamp='2026-11-24T10:30:00.000Z', delivery_attempts=3, bounces=1, complaints=0, rejects=0)])


def test_no_data_points(api):
    api.expect('GetSendQuota', ok('GetSendQuota', QUOTA))
    api.expect('GetSendStatistics', ok('GetSendStatistics', '<SendDataPoints/>'))
    assert api.run(send_quota_info.main, check_mode=True)['send_data_points'] == []


def test_statistics_false_makes_one_call(api):
    api.expect('GetSendQuota', ok('GetSendQuota', QUOTA))
    result = api.run(send_quota_info.main, statistics=False)
    assert result == dict(changed=False, quota=dict(max_24_hour_send=200.0, max_send_rate=1.0, sent_last_24_hours=12.0))


def test_missing_or_odd_numbers_are_null(api):
    api.expect('GetSendQuota', ok('GetSendQuota', '<Max24HourSend>n/a</Max24HourSend><MaxSendRate>1</MaxSendRate>'))
    result = api.run(send_quota_info.main, statistics=False)
    assert result['quota'] == dict(max_24_hour_send=None, max_send_rate=1.0, sent_last_24_hours=None)


def test_failure_of_the_statistics_fails_the_module(api):
    api.expect('GetSendQuota', ok('GetSendQuota', QUOTA))
    api.expect('GetSendStatistics', access_denied())
    result = api.run(send_quota_info.main)
    assert (result['failed'], result['action'], result['status']) == (True, 'GetSendStatistics', 403)


def test_unreadable_data_points_come_last_with_null_counts(api):
    api.expect('GetSendQuota', ok('GetSendQuota', QUOTA))
    api.expect('GetSendStatistics', ok('GetSendStatistics', '<SendDataPoints>%s%s</SendDataPoints>' % (
        '<member><DeliveryAttempts>many</DeliveryAttempts></member>', point('2026-11-24T10:30:00.000Z', 3))))
    points = api.run(send_quota_info.main)['send_data_points']
    assert points == [dict(timestamp='2026-11-24T10:30:00.000Z', delivery_attempts=3, bounces=0, complaints=0, rejects=0),
                      dict(timestamp=None, delivery_attempts=None, bounces=None, complaints=None, rejects=None)]
