# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP replies as plain objects, and a small XML writer for the mail API's documents."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr


class Reply:
    """What a service answers; the HTTP server writes it.

    ``drop`` closes the connection without any reply; ``truncate`` announces the
    full ``Content-Length`` but sends only the first half of the body and closes;
    ``stream_size`` (instead of ``body``) streams that many bytes of XML in chunks.
    ``info`` carries fields for the request log (``action``, ``user``, ...).
    """

    def __init__(self, status, body=b'', content_type=None, headers=None, request_id=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode('utf-8')
        self.headers = list(headers or [])
        if content_type:
            self.headers.insert(0, ('Content-Type', content_type))
        self.request_id = request_id
        self.error_code = None
        self.drop = False
        self.truncate = False
        self.stream_size = None
        self.info = {}


def json_reply(status, data, headers=None, request_id=None):
    """Return a JSON reply."""
    return Reply(status, json.dumps(data, indent=2) + '\n', 'application/json', headers=headers, request_id=request_id)


def _render(lines, name, value, depth):
    pad = '  ' * depth
    if value is None or value == [] or value == ():
        lines.append('%s<%s/>' % (pad, name))
    elif isinstance(value, (list, tuple)):
        lines.append('%s<%s>' % (pad, name))
        for child_name, child_value in value:
            _render(lines, child_name, child_value, depth + 1)
        lines.append('%s</%s>' % (pad, name))
    else:
        lines.append('%s<%s>%s</%s>' % (pad, name, escape(str(value)), name))


def xml_document(root, children, namespace=None):
    """Render an indented XML document.

    ``children`` is a list of ``(name, value)`` pairs; a value is a string (text
    element), a list of pairs (nested elements) or None / [] (empty element).
    ``namespace`` becomes the root's default namespace when not empty.
    """
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    opening = root + (' xmlns=%s' % quoteattr(namespace) if namespace else '')
    if children:
        lines.append('<%s>' % opening)
        for name, value in children:
            _render(lines, name, value, 1)
        lines.append('</%s>' % root)
    else:
        lines.append('<%s/>' % opening)
    return ('\n'.join(lines) + '\n').encode('utf-8')
