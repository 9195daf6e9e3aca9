# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTPS service: one port for Keystone (``/v3``), the mail API (``/``) and the admin endpoints (``/_emulator/``)."""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import __version__
from .faults import fault_reply
from .keystone import keystone_error, versions_reply
from .mailapi import error_reply, peek_action
from .replies import json_reply
from .util import new_request_id

LOG = logging.getLogger('k5emu.https')

MAX_BODY = 16 * 1024 * 1024
MAX_CHUNKS = 65536          # at least 256 bytes a chunk on average up to MAX_BODY
MAX_LINE = 4096             # a chunk-size line with its extensions, a trailer line
MAX_TRAILERS = 64
HEX_RE = re.compile(rb'\A[0-9A-Fa-f]{1,16}\Z')
DECIMAL_RE = re.compile(r'\A[0-9]{1,20}\Z')
STREAM_CHUNK = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0


class _BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class RequestHandler(BaseHTTPRequestHandler):
    """Routes one HTTP request (HTTP/1.1, keep-alive) to the admin, Keystone or mail API code."""

    protocol_version = 'HTTP/1.1'
    server_version = 'k5emu/' + __version__
    sys_version = ''
    timeout = 60

    def do_GET(self):
        """Handle GET."""
        self._dispatch('GET')

    def do_HEAD(self):
        """Handle HEAD."""
        self._dispatch('HEAD')

    def do_POST(self):
        """Handle POST."""
        self._dispatch('POST')

    def do_PUT(self):
        """Handle PUT."""
        self._dispatch('PUT')

    def do_DELETE(self):
        """Handle DELETE."""
        self._dispatch('DELETE')

    def do_PATCH(self):
        """Handle PATCH."""
        self._dispatch('PATCH')

    # ------------------------------------------------------------------ input
    def _read_body(self):
        """Return the request body: chunked or by Content-Length, never more than :data:`MAX_BODY` bytes."""
        coding = self.headers.get('Transfer-Encoding')
        if coding is not None:
            if coding.strip().lower() != 'chunked':
                raise _BadRequest(400, 'unsupported Transfer-Encoding (only chunked)')
            return self._read_chunked()
        length = self.headers.get('Content-Length')
        if not length:
            return b''
        if not DECIMAL_RE.match(length.strip()):
            raise _BadRequest(400, 'bad Content-Length')
        size = int(length)
        if size > MAX_BODY:
            raise _BadRequest(413, 'request body too large')
        body = self.rfile.read(size)
        if len(body) != size:
            raise _BadRequest(400, 'the request body ended early')
        return body

    def _read_chunked(self):
        """Read a chunked body; any framing error is a 400 (and the connection is closed by the caller).

        Sizes are hex digits only (no sign, no ``0x``, no ``_``), so neither a negative nor an
        oversized chunk can make a read unbounded; the data is collected in one bytearray, so
        many small chunks cost no more memory than one large one.
        """
        body = bytearray()
        for _chunk in range(MAX_CHUNKS):
            size = self._chunk_size(self._read_line('chunk size'))
            if size == 0:
                self._skip_trailers()
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise _BadRequest(413, 'request body too large')
            data = self.rfile.read(size)
            if len(data) != size:
                raise _BadRequest(400, 'the request body ended early')
            body += data
            if self._read_line('chunk end') not in (b'\r\n', b'\n'):
                raise _BadRequest(400, 'bad chunked encoding: no line end after a chunk')
        raise _BadRequest(400, 'bad chunked encoding: more than %d chunks' % MAX_CHUNKS)

    def _read_line(self, what):
        line = self.rfile.readline(MAX_LINE + 1)
        if not line.endswith(b'\n'):
            raise _BadRequest(400, 'bad chunked encoding: %s line missing or longer than %d bytes' % (what, MAX_LINE))
        return line

    @staticmethod
    def _chunk_size(line):
        """The size of a chunk-size line ``HEX[;extensions]``; extensions are ignored."""
        digits = line.split(b';', 1)[0].strip(b' \t\r\n')
        if not HEX_RE.match(digits):
            raise _BadRequest(400, 'bad chunked encoding: chunk size %r is not 1 to 16 hex digits'
                              % digits[:40].decode('ascii', 'replace'))
        return int(digits, 16)

    def _skip_trailers(self):
        for _trailer in range(MAX_TRAILERS):
            if self._read_line('trailer') in (b'\r\n', b'\n'):
                return
        raise _BadRequest(400, 'bad chunked encoding: more than %d trailer lines' % MAX_TRAILERS)

    # ---------------------------------------------------------------- routing
    def _dispatch(self, method):
        app = self.server.app
        path = urlsplit(self.path).path
        admin = path == '/_emulator' or path.startswith('/_emulator/')
        if admin and not app.admin.authorised(self.headers):
            self.close_connection = True  # its body stays unread
            self._send(app.admin.forbidden(), method)
            return
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._send(json_reply(exc.status, {'error': str(exc)}), method)
            return
        if admin:
            self._send(app.admin.handle(method, path, body), method)
            return
        request_id = new_request_id()
        if path.rstrip('/') == '/v3/auth/tokens':
            service = 'keystone'
            action = {'POST': 'authenticate', 'DELETE': 'revoke_token'}.get(method, 'validate_token')
            if method == 'POST':
                def process():
                    return app.identity.authenticate(body)
            else:
                def process():
                    return app.identity.handle_token_request(method, self.headers)
        elif path.rstrip('/') == '/v3':
            service, action = 'keystone', 'versions'

            def process():
                return versions_reply(app.public_url)
        elif path == '/':
            service, action = 'mail', peek_action(body)

            def process():
                return app.mail.handle(method, self.headers, body, request_id)
        else:
            self._send(json_reply(404, {'error': 'no such resource: %s' % path}), method)
            return
        started = time.time()
        reply, faulted = self._process(service, action, process, request_id, body)
        try:
            self._send(reply, method)
        except OSError as exc:
            LOG.info('could not send the reply of %s %s: %s', service, action, exc)
            self.close_connection = True
        record = {
            'time': round(started, 6), 'service': service, 'method': method,
            'action': reply.info.get('action', action), 'status': None if reply.drop else reply.status,
            'request_id': reply.request_id, 'user': reply.info.get('user'), 'project_id': reply.info.get('project_id'),
            'fault': faulted, 'error_code': reply.error_code,
        }
        record = app.log.append(record)
        LOG.info('%s %s %s -> %s user=%s request_id=%s%s', service, method, record['action'] or '-',
                 'dropped' if reply.drop else reply.status, record['user'] or '-', record['request_id'] or '-',
                 ' (fault)' if faulted else '')

    def _process(self, service, action, process, request_id, body):
        app = self.server.app
        namespace = app.settings.xml_namespace
        fault = app.faults.take(service, action)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.replaces_reply and not fault.after:
            reply = fault_reply(fault, service, request_id, namespace)
            reply.info = {'action': action, 'user': self._who(service, body)}
            return reply, True
        try:
            reply = process()
        except Exception:  # pylint: disable=broad-exception-caught; answer even when the emulator itself fails
            LOG.exception('internal error while handling %s %s', service, action)
            if service == 'mail':
                reply = error_reply(500, 'InternalFailure', 'An internal error occurred.', request_id, namespace, 'Receiver')
            else:
                reply = keystone_error(500, 'An unexpected error prevented the server from fulfilling your request.')
            reply.info = {'action': action}
        if fault is not None and fault.replaces_reply:
            info = reply.info
            reply = fault_reply(fault, service, request_id, namespace, real=reply)
            reply.info = info
        return reply, fault is not None

    def _who(self, service, body):
        """Best-effort user name of a request that a fault answers."""
        if service == 'mail':
            token = self.server.app.identity.validate((self.headers.get('X-Auth-Token') or '').strip())
            return token.user.name if token else None
        try:
            name = json.loads(body.decode('utf-8'))['auth']['identity']['password']['user']['name']
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return name if isinstance(name, str) else None

    # ----------------------------------------------------------------- output
    def _send(self, reply, method):
        if reply.drop:
            self.close_connection = True
            return
        if reply.stream_size:
            self._stream(reply)
            return
        body = reply.body
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status not in (204, 304):
            self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if reply.truncate:
            self.close_connection = True
            body = body[:len(body) // 2]
        if method != 'HEAD' and body and reply.status not in (204, 304):
            self.wfile.write(body)
        self.wfile.flush()

    def _stream(self, reply):
        """Send ``reply.stream_size`` bytes of one XML document in 64 KiB chunks, then close."""
        self.close_connection = True
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        head = b'<?xml version="1.0" encoding="UTF-8"?>\n<GetSendStatisticsResponse><GetSendStatisticsResult><SendDataPoints>'
        member = b'<member><DeliveryAttempts>1</DeliveryAttempts><Rejects>0</Rejects></member>\n'
        chunk = member * (STREAM_CHUNK // len(member))
        remaining, first = reply.stream_size, head
        while remaining > 0:
            data = (first + chunk)[:remaining]
            first = b''
            self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
            remaining -= len(data)
        self.wfile.write(b'0\r\n\r\n')
        self.wfile.flush()

    def version_string(self):
        """Return the Server header value."""
        return self.server_version

    def log_request(self, code='-', size='-'):
        """Request lines are logged by _dispatch (without admin requests)."""

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Send http.server's messages to the debug log."""
        LOG.debug('%s %s', self.address_string(), format % args)


class TLSServer(ThreadingHTTPServer):
    """Threading HTTP server doing the TLS handshake in the request's thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app, ssl_context):
        if ':' in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, RequestHandler)

    def finish_request(self, request, client_address):
        """Wrap the accepted socket in TLS, then handle its HTTP requests."""
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            LOG.debug('TLS handshake with %s failed: %s', client_address[0], exc)
            return
        try:
            conn.settimeout(None)
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def handle_error(self, request, client_address):
        """Log errors of a connection without printing to stdout."""
        LOG.debug('error on the connection from %s', client_address[0], exc_info=True)


class HttpsService:
    """The HTTPS service of the emulator (see :mod:`k5emu.app` for the service protocol)."""

    name = 'https'

    def __init__(self, app, host, port):
        self.app = app
        self.host = host
        self.port = port
        self.server = None
        self.thread = None

    @staticmethod
    def add_arguments(parser):
        """Add this service's command line options."""
        parser.add_argument('--port', type=int, default=0, help='HTTPS port (default 0: pick a free one)')

    @classmethod
    def from_args(cls, app, args):
        """Create the service from the parsed command line."""
        return cls(app, args.host, args.port)

    @property
    def url(self):
        """The base URL (mail endpoint)."""
        host = self.host if self.host not in ('', '0.0.0.0', '::') else '127.0.0.1'
        if ':' in host:
            host = '[%s]' % host
        return 'https://%s:%d' % (host, self.port)

    def start(self):
        """Bind and start serving in a thread."""
        self.server = TLSServer((self.host, self.port), self.app, self.app.certs.server_context())
        self.port = self.server.server_address[1]
        self.app.public_url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.2},
                                       name='k5emu-https', daemon=True)
        self.thread.start()
        LOG.info('HTTPS service listening on %s (Keystone at %s/v3)', self.url, self.url)

    def stop(self):
        """Stop serving and close the socket."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    def endpoint_info(self):
        """Keys of this service in endpoint.json."""
        return {'url': self.url, 'auth_url': self.url + '/v3', 'ca_cert': self.app.certs.ca_cert}
