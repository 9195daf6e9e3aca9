# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Reading the service's replies: safe XML parsing by local name, accepted replies,
and the error a rejected reply stands for (including whether it is throttling)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    from requests.structures import CaseInsensitiveDict
except ImportError:
    pass  # module.K5MailModule reports the missing library (transport.HAS_REQUESTS)

try:
    from lxml import etree
    HAS_LXML = True
    LXML_IMPORT_ERROR = None
except ImportError:
    import traceback
    HAS_LXML = False
    LXML_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import FINAL, K5MailError, NOT_PROCESSED, SERVER_ERROR, bounded_text
from ansible_collections.fjcloud.mail.plugins.module_utils.transport import DEFAULT_URLS, retry_after

# No throttling reply is published; the error page only lists "service use
# limit exceeded" among the causes of a 400. Recognise the usual wordings.
_THROTTLING_PATTERN = re.compile(
    r'throttl|limit\s*(?:is\s+|was\s+|has\s+been\s+)?exceed|exceed\w*\s+(?:the\s+)?(?:\w+\s+){0,3}limit'
    r'|too\s*many\s*requests|rate\s*exceed|request\s*limit|slow\s*down',
    re.IGNORECASE)


_DAILY_QUOTA_PATTERN = re.compile(r'daily\s+(?:message\s+|sending\s+)?quota|24[\s-]*hours?\s+(?:send\w*\s+)?quota', re.IGNORECASE)


def _parser():
    # No DTD, no entity expansion, no network: the reply is data, never a program.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True,
                           remove_pis=True)


def parse_xml(body):
    """Parse a reply body; raise ValueError with a short reason when it is not XML."""
    if isinstance(body, str):
        body = body.encode('utf-8')
    body = body.lstrip()
    if not body:
        raise ValueError('empty body')
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 may report several errors on several lines: keep one line.
        raise ValueError('not well-formed XML (%s)' % ' '.join(str(exc).split()))
    if root is None:
        raise ValueError('no XML document')
    return root


def local_name(element):
    tag = element.tag
    if not isinstance(tag, str):
        return None
    return etree.QName(tag).localname


def find(root, *path):
    """First element reached by walking ``path`` down from ``root``, matching local names at any depth."""
    node = root
    for name in path:
        if node is None:
            return None
        found = None
        for element in node.iter():
            if element is not node and local_name(element) == name:
                found = element
                break
        node = found
    return node


def find_all(root, *path):
    """Every element named ``path[-1]`` under the element reached by ``path[:-1]``."""
    parent = find(root, *path[:-1]) if len(path) > 1 else root
    if parent is None:
        return []
    return [element for element in parent.iter() if element is not parent and local_name(element) == path[-1]]


def text_of(element):
    if element is None or element.text is None:
        return None
    return element.text.strip()


def find_text(root, *path):
    if root is None:
        return None
    return text_of(find(root, *path))


def html_title(body):
    match = re.search(br'<title[^>]*>([^<]{1,120})', body or b'', re.IGNORECASE)
    if match:
        return ' '.join(match.group(1).decode('utf-8', 'replace').split())
    return None


def describe_non_xml(headers, body, exc):
    """Describe a body that is not XML without echoing it: it may hold part of a secret."""
    title = html_title(body)
    return 'the reply is not XML (%s, %d bytes%s): %s' % (
        headers.get('content-type') or 'no Content-Type', len(body), ', title "%s"' % title if title else '', exc)


class Response:
    """A reply the caller accepted: a 200, or one of the statuses it asked to receive."""

    def __init__(self, action, status, root, request_id, earlier_attempt_may_have_acted=False):
        self.action = action
        self.status = status
        self.root = root
        self.request_id = request_id
        # An earlier attempt of this call failed after the service may have acted on it, so a
        # "409 already exists" may be the answer to our own lost request.
        self.earlier_attempt_may_have_acted = earlier_attempt_may_have_acted

    def text(self, *path):
        return find_text(self.root, *path)

    def require_text(self, *path):
        value = self.text(*path)
        if not value:
            raise K5MailError(self.action, 'the reply lacks %s' % '/'.join(path),
                              status=self.status, request_id=self.request_id)
        return value


def throttling_reply(status, code, message):
    """True for a reply that a later repeat may get past (not the daily quota, which lasts hours)."""
    if _DAILY_QUOTA_PATTERN.search(message or ''):
        return False
    if status == 429:
        return True
    if status not in (400, 503):
        return False
    return bool(_THROTTLING_PATTERN.search('%s %s' % (code or '', message or '')))


# What to do about a rejected call, by status (the service's own message says what happened).
_HINTS = {
    403: ("The user lacks a role for the mail service in the token's project, or the token is for another "
          "project: check project_id or project_name (or the project of auth_token) and the user's roles "
          "in the K5 portal"),
}
# A 404 without the service's error code comes from a server that is not the mail API.
_NOT_THE_SERVICE = 'Check endpoint: it must be the mail API of the region, %s' % DEFAULT_URLS['endpoint']


def error_from_reply(action, status, headers, body, url=None):
    """Build the K5MailError for a non-accepted reply (from ``url``, shown without user info)."""
    headers = CaseInsensitiveDict(headers)
    request_id = bounded_text(headers.get('x-fj-request-id') or '', 100) or None
    code = error_type = message = None
    root = None
    try:
        root = parse_xml(body) if body and body.strip() else None
    except ValueError as exc:
        message = describe_non_xml(headers, body, exc)
    if root is not None:
        name = local_name(root)
        if name == 'ErrorResponse' or find(root, 'Error') is not None:
            code = find_text(root, 'Error', 'Code')
            error_type = find_text(root, 'Error', 'Type')
            message = find_text(root, 'Error', 'Message')
        else:
            error_type = name
            message = find_text(root, 'Message')
        request_id = request_id or find_text(root, 'RequestId')
    # The service's texts, bounded like Keystone's: a reply of megabytes is not a message.
    code, error_type, request_id = (bounded_text(text, 100) if text else text for text in (code, error_type, request_id))
    if message is not None:
        message = bounded_text(message)
    if message is None:
        message = {
            401: 'authentication rejected: the token is missing, invalid or expired',
            403: 'access denied',
            404: 'not found',
        }.get(status, 'no error details in the reply')
    if throttling_reply(status, code, message):
        failure = NOT_PROCESSED
    elif status >= 500:
        failure = SERVER_ERROR
    else:
        failure = FINAL
    hint = _HINTS.get(status)
    if status == 404 and not code:
        hint = _NOT_THE_SERVICE
    return K5MailError(action, message, status=status, code=code, error_type=error_type, request_id=request_id,
                       failure=failure, retry_after=retry_after(headers), url=url, hint=hint)
