# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted stand-in for requests.Session: each test lists the exact calls it expects.

A call that is not expected, or an expected call that never happens, fails the test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import parse_qsl

import requests
from requests.structures import CaseInsensitiveDict


class Reply:
    """A streamed reply: ``breaks`` is raised while reading, after the first half of the body."""

    def __init__(self, status, body=b'', headers=None, reason='', breaks=None):
        self.status_code = status
        self.content = body.encode('utf-8') if isinstance(body, str) else body
        self.headers = CaseInsensitiveDict(headers or {})
        self.reason = reason
        self.breaks = breaks
        self.bytes_read = 0
        self.closed = False

    def iter_content(self, chunk_size=1):
        end = len(self.content) // 2 if self.breaks is not None else len(self.content)
        for start in range(0, end, chunk_size):
            chunk = self.content[start:min(start + chunk_size, end)]
            self.bytes_read += len(chunk)
            yield chunk
        if self.breaks is not None:
            raise self.breaks

    def close(self):
        self.closed = True


class Expected:
    def __init__(self, url, reply=None, raises=None, form=None, headers=None, json_body=None):
        self.url = url
        self.reply = reply
        self.raises = raises
        self.form = form
        self.headers = headers or {}
        self.json_body = json_body


class FakeSession:
    def __init__(self, clock=None):
        self.headers = {}
        self.verify = True
        self.expected = []
        self.calls = []
        self.clock = clock

    def expect(self, url, reply=None, raises=None, form=None, headers=None, json_body=None):
        self.expected.append(Expected(url, reply, raises, form, headers, json_body))
        return self

    def post(self, url, data=None, headers=None, timeout=None, verify=None, allow_redirects=True, stream=False):
        assert self.expected, 'unexpected POST %s (no more calls expected)' % url
        assert allow_redirects is False and stream is True, 'every request must refuse redirects and stream its reply'
        exp = self.expected.pop(0)
        all_headers = CaseInsensitiveDict(self.headers)
        all_headers.update(headers or {})
        self.calls.append(dict(url=url, data=data, headers=all_headers, verify=verify, timeout=timeout,
                               time=self.clock() if self.clock else None))
        assert url == exp.url, 'POST %s, expected %s' % (url, exp.url)
        if exp.form is not None:
            assert isinstance(data, list), 'mail API form must be a list of pairs'
            assert dict(data) == exp.form, 'form %r, expected %r' % (dict(data), exp.form)
            assert data[0] == ('Action', exp.form['Action'])
        if exp.json_body is not None:
            import json
            assert json.loads(data) == exp.json_body
        for name, value in exp.headers.items():
            assert all_headers.get(name) == value, 'header %s = %r, expected %r' % (name, all_headers.get(name), value)
        if exp.raises is not None:
            raise exp.raises
        return exp.reply

    def assert_done(self):
        assert not self.expected, '%d expected calls never happened: %s' % (
            len(self.expected), [e.url for e in self.expected])


class FakeClock:
    """Monotonic clock that only moves when the code sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def connection_refused(url='https://mail.example/'):
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    reason = NewConnectionError(object(), 'Failed to establish a new connection: [Errno 111] Connection refused')
    return requests.exceptions.ConnectionError(MaxRetryError(None, url, reason))


def connection_reset():
    return requests.exceptions.ConnectionError(ConnectionResetError(104, 'Connection reset by peer'))


def form(action, **params):
    result = {'Action': action, 'Version': 'v1.0'}
    result.update(params)
    return result


def parse_form(data):
    return dict(parse_qsl(data)) if isinstance(data, str) else dict(data)
