# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SMTP relay: the service's SMTP interface, as Postfix (or smtplib) meets it.

Two aiosmtpd listeners, each in a background thread:

- the *submission* port (like 587): plain TCP, STARTTLS required before AUTH and MAIL;
- the *smtps* port (like 465): TLS from the first byte.

Both use the emulator's certificate (valid for 127.0.0.1, localhost and ::1), offer
AUTH PLAIN and LOGIN only over TLS, and require AUTH before MAIL (``530 5.7.0``).
AUTH accepts only the SMTP user and password that a contract holds at that moment
(``State.check_smtp_login``, read at every AUTH: after a rotation the old password
gets ``535 5.7.8``). Accepted messages go to the :class:`k5emu.messages.MessageStore`
of the application with ``source: "smtp"``. Transactions are logged without passwords.

The greeting and EHLO name is :data:`SMTP_HOSTNAME`, which must differ from the
client's own host name (Postfix refuses a relay that answers with its own name:
"mail loops back to myself").
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import warnings
from email.parser import BytesHeaderParser
from typing import NamedTuple

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError as exc:
    # aiosmtpd comes with the extra fjcloud-mail[emulator]: --no-smtp runs without it. The classes
    # below stay definable; SmtpService.from_args refuses to start the relay.
    Controller = object
    AuthResult = LoginPassword = None
    AIOSMTPD_IMPORT_ERROR = str(exc)
else:
    AIOSMTPD_IMPORT_ERROR = None

from . import __version__

LOG = logging.getLogger('k5emu.smtp')

SMTP_HOSTNAME = 'smtp.k5emu.localhost'
SUBMISSION = 'submission'
SMTPS = 'smtps'
READY_TIMEOUT = 10.0

# aiosmtpd messages that are expected here and only noise: the implicit-TLS listener
# has auth_require_tls=False (TLS is there from the first byte; aiosmtpd only counts
# STARTTLS), and aiosmtpd itself sets the deprecated Session.login_data on every AUTH.
_QUIET_MESSAGES = ('auth_required == True but auth_require_tls == False', 'Session.login_data is deprecated')


class _QuietFilter(logging.Filter):
    """Drop aiosmtpd's expected warnings (see :data:`_QUIET_MESSAGES`)."""

    def filter(self, record):
        message = record.getMessage()
        return not any(message.startswith(quiet) for quiet in _QUIET_MESSAGES)


def _quiet_aiosmtpd():
    """Keep aiosmtpd's own log (``mail.log``) to real warnings; this module logs the transactions."""
    mail_log = logging.getLogger('mail.log')
    mail_log.setLevel(logging.WARNING)
    if not any(isinstance(existing, _QuietFilter) for existing in mail_log.filters):
        mail_log.addFilter(_QuietFilter())
    warnings.filterwarnings('ignore', message='Requiring AUTH while not requiring TLS', category=UserWarning)


class SmtpLogin(NamedTuple):
    """What a successful AUTH leaves in ``session.auth_data``."""

    login: str
    project_id: str


def tls_info(server):
    """Return ``{"version", "cipher"}`` of the SMTP connection's TLS, or None without TLS."""
    transport = server.transport
    ssl_object = transport.get_extra_info('ssl_object') if transport is not None else None
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    return {'version': ssl_object.version(), 'cipher': cipher[0] if cipher else None}


def header_fields(raw):
    """Return ``(message_id, subject)`` of a raw message (None when absent)."""
    for policy in (email.policy.default, email.policy.compat32):
        try:
            headers = BytesHeaderParser(policy=policy).parsebytes(raw)
            message_id, subject = headers.get('Message-ID'), headers.get('Subject')
            return (None if message_id is None else str(message_id).strip(),
                    None if subject is None else str(subject))
        except Exception:  # pylint: disable=broad-exception-caught; odd headers must not lose the message
            continue
    return None, None


def _peer_host(session):
    peer = session.peer
    return peer[0] if isinstance(peer, (tuple, list)) and peer else peer


class RelayHandler:
    """aiosmtpd handler and authenticator of one listener."""

    def __init__(self, app, port_kind):
        self.app = app
        self.port_kind = port_kind

    def authenticate(self, server, session, _envelope, mechanism, auth_data):
        """aiosmtpd authenticator: accept only a contract's current SMTP user and password."""
        peer = _peer_host(session)
        if not isinstance(auth_data, LoginPassword):
            LOG.info('smtp %s: AUTH %s refused from %s: unsupported mechanism', self.port_kind, mechanism, peer)
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode('utf-8', 'replace')
        if tls_info(server) is None:
            LOG.warning('smtp %s: AUTH %s refused for user %r from %s: no TLS', self.port_kind, mechanism, login, peer)
            return AuthResult(success=False, handled=False, message='538 5.7.11 Encryption required for requested authentication mechanism')
        project_id = self.app.state.check_smtp_login(auth_data.login, auth_data.password)
        if project_id is None:
            LOG.info('smtp %s: AUTH %s failed for user %r from %s', self.port_kind, mechanism, login, peer)
            return AuthResult(success=False, handled=False)
        LOG.info('smtp %s: AUTH %s ok for user %r (project %s) from %s', self.port_kind, mechanism, login, project_id, peer)
        return AuthResult(success=True, handled=False, auth_data=SmtpLogin(login, project_id))

    async def handle_DATA(self, server, session, envelope):  # pylint: disable=invalid-name; aiosmtpd's hook name
        """Store the message; answer 250 with its id."""
        tls = tls_info(server)
        login = session.auth_data
        if tls is None or not session.authenticated or not isinstance(login, SmtpLogin):
            # aiosmtpd's require_starttls / auth_required come first; this is only a safety net
            return '530 5.7.0 Authentication required'
        raw = envelope.original_content if envelope.original_content is not None else envelope.content
        if isinstance(raw, str):
            raw = raw.encode('utf-8', 'surrogateescape')
        raw = raw or b''
        message_id, subject = header_fields(raw)
        record = {
            'source': 'smtp',
            'port_kind': self.port_kind,
            'auth_user': login.login,
            'project_id': login.project_id,
            'tls': tls,
            'helo': session.host_name,
            'peer': _peer_host(session),
            'mail_from': envelope.mail_from,
            'rcpt_tos': list(envelope.rcpt_tos),
            'data': raw.decode('utf-8', 'replace'),
            'message_id': message_id,
            'subject': subject,
        }
        stored = await asyncio.get_running_loop().run_in_executor(None, self.app.messages.add, record)
        LOG.info('smtp %s: accepted message seq=%s id=%s from %r to %s user=%r message_id=%s size=%d %s',
                 self.port_kind, stored['seq'], stored['id'], envelope.mail_from, ','.join(envelope.rcpt_tos),
                 login.login, message_id or '-', len(raw), tls['version'])
        return '250 2.0.0 Ok: queued as %s' % stored['id']


class _Listener(Controller):
    """An aiosmtpd Controller that also works with port 0 (it learns the bound port before its self-test)."""

    async def _bind(self):
        server = await self.loop.create_server(self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _create_server(self):
        return self._bind()


class SmtpService:
    """The SMTP relay (see :mod:`k5emu.app` for the service protocol)."""

    name = 'smtp'

    def __init__(self, app, host, port, smtps_port):
        self.app = app
        self.host = host
        self.port = port
        self.smtps_port = smtps_port
        self.listeners = {}

    @staticmethod
    def add_arguments(parser):
        """Add this service's command line options."""
        parser.add_argument('--smtp-port', type=int, default=0,
                            help='SMTP submission port, STARTTLS required (default 0: pick a free one)')
        parser.add_argument('--smtps-port', type=int, default=0,
                            help='SMTP port with implicit TLS (default 0: pick a free one)')
        parser.add_argument('--no-smtp', action='store_true', help='do not start the SMTP relay')

    @classmethod
    def from_args(cls, app, args):
        """Create the service from the parsed command line (None with --no-smtp)."""
        if args.no_smtp:
            return None
        if AIOSMTPD_IMPORT_ERROR is not None:
            raise ValueError("the SMTP relay needs aiosmtpd (%s): pip install 'fjcloud-mail[emulator]', or start with --no-smtp"
                             % AIOSMTPD_IMPORT_ERROR)
        return cls(app, args.host, args.smtp_port, args.smtps_port)

    @property
    def public_host(self):
        """The address clients connect to."""
        return self.host if self.host not in ('', '0.0.0.0', '::') else '127.0.0.1'

    def _listener(self, port_kind, port):
        handler = RelayHandler(self.app, port_kind)
        options = {
            'hostname': self.host, 'port': port, 'server_hostname': SMTP_HOSTNAME, 'ident': 'k5emu ESMTP %s' % __version__,
            'ready_timeout': READY_TIMEOUT, 'authenticator': handler.authenticate, 'auth_required': True,
        }
        if port_kind == SMTPS:
            return _Listener(handler, ssl_context=self.app.certs.server_context(), auth_require_tls=False, **options)
        return _Listener(handler, tls_context=self.app.certs.server_context(), require_starttls=True, auth_require_tls=True, **options)

    def start(self):
        """Bind both ports and serve in background threads."""
        _quiet_aiosmtpd()
        try:
            for port_kind, port in ((SUBMISSION, self.port), (SMTPS, self.smtps_port)):
                listener = self._listener(port_kind, port)
                listener.start()
                self.listeners[port_kind] = listener
        except BaseException:
            self.stop()
            raise
        self.port = self.listeners[SUBMISSION].port
        self.smtps_port = self.listeners[SMTPS].port
        LOG.info('SMTP relay listening on %s: submission (STARTTLS) port %d, implicit TLS port %d',
                 self.public_host, self.port, self.smtps_port)

    def stop(self):
        """Stop the listeners."""
        while self.listeners:
            port_kind, listener = self.listeners.popitem()
            try:
                listener.stop()
            except Exception:  # pylint: disable=broad-exception-caught; stop the other listener too
                LOG.exception('error while stopping the SMTP %s listener', port_kind)

    def endpoint_info(self):
        """Keys of this service in endpoint.json."""
        return {'smtp': {'host': self.public_host, 'port': self.port, 'smtps_port': self.smtps_port}}
