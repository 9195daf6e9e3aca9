# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator process: shared objects, services, endpoint.json, command line.

A *service* is a class listed in :data:`SERVICE_CLASSES` with:

- ``add_arguments(parser)`` (static): add its command line options;
- ``from_args(app, args)`` (class method): return an instance, or None to stay off;
- ``start()`` / ``stop()``: start serving in background threads / stop;
- ``endpoint_info()``: a dict merged into ``endpoint.json``
  (the HTTPS service gives ``url``, ``auth_url``, ``ca_cert``; the SMTP relay gives ``smtp``);
- optionally ``reset()``: called by ``POST /_emulator/reset``.

Services reach the shared objects through the :class:`App`: ``settings``,
``directory``, ``state`` (``state.smtp_credentials()`` / ``state.check_smtp_login()``),
``identity``, ``mail``, ``faults``, ``log``, ``certs`` (``certs.server_context()``),
``messages`` (the :class:`k5emu.messages.MessageStore` of accepted mail).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import secrets
import signal
import sys
import threading

from . import DEFAULT_NAMESPACE, __version__
from .admin import Admin
from .certs import ensure_certs
from .config import ConfigError, Settings, load_config
from .faults import FaultQueue
from .keystone import Identity
from .mailapi import MailApi
from .messages import MessageStore
from .reqlog import RequestLog
from .server import HttpsService
from .smtp import SmtpService
from .state import State
from .statedir import ENDPOINT_FILE, StateDirError, prepare_state_dir, remove_endpoint_file, tighten_modes
from .util import atomic_write_json

LOG = logging.getLogger('k5emu')

SERVICE_CLASSES = [HttpsService, SmtpService]


class App:
    """Everything one emulator process holds."""

    def __init__(self, args):
        self.args = args
        self.state_dir = prepare_state_dir(args.state_dir)
        # Before anything else: a reader must never take the endpoint of an emulator that is gone.
        if remove_endpoint_file(self.state_dir):
            LOG.info('removed the endpoint.json of an earlier emulator')
        tighten_modes(self.state_dir)
        self.endpoint_path = os.path.join(self.state_dir, ENDPOINT_FILE)
        self.admin_secret = secrets.token_urlsafe(32)
        self.settings = Settings(
            min_interval=args.min_interval,
            token_ttl=args.token_ttl,
            xml_namespace=args.xml_namespace,
            token_header_case=args.token_header_case,
            user_agent_check=not args.no_user_agent_check,
            lockout_attempts=args.lockout_attempts,
            lockout_window=args.lockout_window,
            lockout_duration=args.lockout_duration,
            max_24hour_send=args.max_24hour_send,
            max_send_rate=args.max_send_rate,
        )
        self.directory = load_config(args.config)
        self.certs = ensure_certs(self.state_dir)
        self.state = State(os.path.join(self.state_dir, 'state.json'), self.directory.projects)
        self.identity = Identity(self.directory, self.settings)
        self.messages = MessageStore(os.path.join(self.state_dir, 'messages'))
        self.mail = MailApi(self.identity, self.state, self.settings, self.messages)
        self.faults = FaultQueue()
        self.log = RequestLog(os.path.join(self.state_dir, 'requests.jsonl'))
        self.admin = Admin(self, self.admin_secret)
        self.services = []
        self._stop = threading.Event()
        for service_class in SERVICE_CLASSES:
            service = service_class.from_args(self, args)
            if service is not None:
                self.services.append(service)

    @property
    def public_url(self):
        """Base URL of the HTTPS service (the mail endpoint of the catalog)."""
        return self.identity.public_url

    @public_url.setter
    def public_url(self, value):
        self.identity.public_url = value

    def endpoint_info(self, with_secret=True):
        """Return the content of endpoint.json (``with_secret=False``: without ``admin_secret``, for logs)."""
        info = {}
        for service in self.services:
            info.update(service.endpoint_info())
        info['pid'] = os.getpid()
        if with_secret:
            info['admin_secret'] = self.admin_secret
        return info

    def write_endpoint(self):
        """(Re)write endpoint.json atomically, 0600; services may call it when their info changes."""
        atomic_write_json(self.endpoint_path, self.endpoint_info(), mode=0o600)

    def reset(self):
        """Clear state, tokens, lockouts, rate limit clocks, faults, the request log and the stored messages."""
        self.state.reset()
        self.identity.reset()
        self.mail.reset()
        self.faults.clear()
        self.log.clear()
        self.messages.clear()
        for service in self.services:
            reset = getattr(service, 'reset', None)
            if reset is not None:
                reset()
        LOG.info('emulator reset')

    def request_stop(self, *_signal_args):
        """Ask the main loop to stop (signal handler)."""
        self._stop.set()

    def run(self):
        """Start the services, write endpoint.json, serve until SIGTERM/SIGINT, stop."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        started = []
        try:
            for service in self.services:
                service.start()
                started.append(service)
            self.write_endpoint()
            LOG.info('k5emu %s ready: %s', __version__, json.dumps(self.endpoint_info(with_secret=False), sort_keys=True))
            parent = os.getppid() if getattr(self.args, 'exit_with_parent', False) else None
            while not self._stop.wait(0.5):
                if parent is not None and os.getppid() != parent:
                    LOG.warning('the parent process exited')
                    break
            LOG.info('stopping')
        finally:
            for service in reversed(started):
                try:
                    service.stop()
                except Exception:  # pylint: disable=broad-exception-caught; keep stopping the others
                    LOG.exception('error while stopping the %s service', getattr(service, 'name', service))
            self._remove_endpoint()
        return 0

    def _remove_endpoint(self):
        try:
            with open(self.endpoint_path, 'r', encoding='utf-8') as handle:
                if json.load(handle).get('pid') != os.getpid():
                    return
            os.unlink(self.endpoint_path)
        except (OSError, ValueError):
            pass


def build_parser():
    """Return the command line parser (services add their own options)."""
    parser = argparse.ArgumentParser(prog='k5emu', description='Emulator of the K5 Email Delivery Service (Keystone + mail API + SMTP relay).')
    parser.add_argument('--version', action='version', version='%(prog)s ' + __version__)
    parser.add_argument('--state-dir', required=True,
                        help='directory for state.json, endpoint.json, certificates and logs: created 0700 if absent, '
                             'else it must be yours and closed to group and others')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    parser.add_argument('--config', help='JSON file with contracts, projects and users (default: built-in demo contract)')
    parser.add_argument('--min-interval', type=float, default=1.0,
                        help='minimum seconds between accepted mail API requests per contract (default 1.0; 0 disables)')
    parser.add_argument('--token-ttl', type=float, default=10800.0, help='token lifetime in seconds (default 10800)')
    parser.add_argument('--xml-namespace', default=DEFAULT_NAMESPACE,
                        help="default namespace of success documents (default %s; '' for none)" % DEFAULT_NAMESPACE)
    parser.add_argument('--token-header-case', choices=('canonical', 'lower'), default='canonical',
                        help='send X-Subject-Token (canonical) or x-subject-token (lower)')
    parser.add_argument('--no-user-agent-check', action='store_true', help='accept any User-Agent on the mail API')
    parser.add_argument('--lockout-attempts', type=int, default=5, help='failed passwords that lock a user (default 5; 0 disables)')
    parser.add_argument('--lockout-window', type=float, default=900.0, help='seconds in which failures count (default 900)')
    parser.add_argument('--lockout-duration', type=float, default=900.0, help='seconds a user stays locked (default 900)')
    parser.add_argument('--max-24hour-send', type=float, default=200.0,
                        help='Max24HourSend of GetSendQuota, the daily quota of SendEmail/SendRawEmail in recipients (default 200)')
    parser.add_argument('--max-send-rate', type=float, default=1.0, help='MaxSendRate of GetSendQuota (default 1; not enforced)')
    parser.add_argument('--exit-with-parent', action='store_true', help='stop when the parent process exits (used by k5emu.control)')
    parser.add_argument('--log-level', default='INFO', choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'), help='stderr log level')
    for service_class in SERVICE_CLASSES:
        service_class.add_arguments(parser)
    return parser


def main(argv=None):
    """Command line entry point."""
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # whatever the emulator creates is private: files 0600, directories 0700
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, args.log_level),
                        format='%(asctime)s k5emu[%(process)d] %(levelname)s %(name)s: %(message)s')
    if importlib.util.find_spec('trustme') is None:
        # The emulator's own dependencies are an extra of the distribution: say so in one line, not a traceback.
        LOG.error("cannot start: the emulator needs trustme: pip install 'fjcloud-mail[emulator]'")
        return 2
    try:
        app = App(args)
    except (ConfigError, StateDirError, ValueError, OSError) as exc:
        LOG.error('cannot start: %s', exc)
        return 2
    try:
        return app.run()
    except OSError as exc:
        LOG.error('cannot serve: %s', exc)
        return 2
