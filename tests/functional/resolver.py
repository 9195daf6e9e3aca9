# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A private name server on a loopback address, and the command prefix that makes a subprocess use it.

Tests of names that do not resolve must still go through the real resolver of the C library
(getaddrinfo failing with EAI_NONAME), but no lookup may leave the machine: the machine's own
name server is not on loopback. So the subprocess runs in a mount namespace of its own
(``unshare --mount``) where /etc/resolv.conf names only this server, and /etc/nsswitch.conf
looks host names up in /etc/hosts and DNS only. The server answers NXDOMAIN to every query and
records the names asked for, so that a test can show the lookup really reached it.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time

# Runs the command after it with the private files bound over the machine's, in its own mount namespace
# (the machine's files are untouched; the mounts end with the last process of the namespace).
BIND_AND_EXEC = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/nsswitch.conf && shift 2 && exec "$@"'
NSCD_SOCKETS = ('/run/nscd/socket', '/var/run/nscd/socket')
LIFETIME = 600  # seconds; the server stops by itself after that
MAX_RECORDED = 1000
NXDOMAIN = 3


def unavailable():
    """Why a private resolver cannot work on this machine, or None when it can."""
    if not hasattr(os, 'geteuid') or os.geteuid() != 0:
        return 'a private resolver needs root (port 53 on loopback, mount --bind in a new mount namespace)'
    for tool in ('unshare', 'mount', 'sh'):
        if not shutil.which(tool):
            return 'a private resolver needs %s (util-linux)' % tool
    for path in ('/etc/resolv.conf', '/etc/nsswitch.conf'):
        if not os.path.isfile(path):
            return 'a private resolver binds a file over %s, which does not exist here' % path
    for path in NSCD_SOCKETS:
        if os.path.exists(path):
            return 'nscd is running (%s): it would look names up with the machine\'s resolver' % path
    probe = subprocess.run(['unshare', '--mount', '--propagation', 'private', 'true'],
                           capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        return 'unshare --mount is not allowed here: %s' % probe.stderr.strip()[:200]
    return None


def private_nsswitch(text):
    """``text`` of an nsswitch.conf with host names looked up in /etc/hosts and DNS only (no nss plugins)."""
    lines = [line for line in text.splitlines() if not line.strip().startswith('hosts:')]
    return '\n'.join(lines + ['hosts: files dns']) + '\n'


def question(query):
    """The question section of a DNS query (bytes) and the name it asks for, or (None, None) if malformed."""
    if len(query) < 12 or struct.unpack('!H', query[4:6])[0] != 1:
        return None, None
    labels, offset = [], 12
    while offset < len(query) and len(labels) < 128:
        length = query[offset]
        if length == 0:
            end = offset + 5  # the root label, QTYPE and QCLASS
            if end > len(query):
                return None, None
            return query[12:end], '.'.join(labels)
        if length > 63:  # no compression in a query
            return None, None
        labels.append(query[offset + 1:offset + 1 + length].decode('ascii', 'replace'))
        offset += 1 + length
    return None, None


def nxdomain(query, section):
    """The reply to ``query``: same id, opcode and RD; authoritative, NXDOMAIN, the question only."""
    ident, flags = struct.unpack('!HH', query[:4])
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | NXDOMAIN
    return struct.pack('!HHHHHH', ident, reply_flags, 1, 0, 0, 0) + section


class PrivateResolver:
    """A name server on 127.53.x.y:53 answering NXDOMAIN, for the lifetime of a ``with`` block (at most LIFETIME s)."""

    def __init__(self, directory):
        os.makedirs(str(directory), exist_ok=True)
        self.sock = self._bind()
        self.address = self.sock.getsockname()[0]
        self.resolv_conf = os.path.join(str(directory), 'resolv.conf')
        self.nsswitch_conf = os.path.join(str(directory), 'nsswitch.conf')
        with open(self.resolv_conf, 'w') as handle:
            # One try of one second: a lost reply must not slow a test down.
            handle.write('nameserver %s\noptions attempts:1 timeout:1\n' % self.address)
        with open('/etc/nsswitch.conf') as source, open(self.nsswitch_conf, 'w') as handle:
            handle.write(private_nsswitch(source.read()))
        self.queries = []  # (name, query type number), in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @staticmethod
    def _bind():
        """A UDP socket on port 53 of a loopback address of this process's own (xdist workers run side by side)."""
        pid = os.getpid()
        for attempt in range(50):
            number = (pid + attempt) % 65024 + 256
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind(('127.53.%d.%d' % (number // 256, number % 256), 53))
            except OSError:
                sock.close()
                continue
            sock.settimeout(0.2)
            return sock
        raise RuntimeError('no free loopback address for the private name server')

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self):
        deadline = time.monotonic() + LIFETIME
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                query, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            section, name = question(query)
            if section is None:
                continue
            if len(self.queries) < MAX_RECORDED:
                self.queries.append((name.rstrip('.').lower(), struct.unpack('!H', section[-4:-2])[0]))
            self.sock.sendto(nxdomain(query, section), peer)

    def asked_for(self, name):
        """True when a query for ``name`` (any type) reached this server."""
        return any(asked == name.lower() for asked, dummy in self.queries)

    def lookups(self, name):
        """How many times ``name`` was looked up: the most queries of one type for it (A and AAAA go together)."""
        types = [kind for asked, kind in self.queries if asked == name.lower()]
        return max((types.count(kind) for kind in set(types)), default=0)

    def command(self, argv):
        """``argv`` run in a mount namespace of its own where only this server answers host name lookups."""
        return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', BIND_AND_EXEC,
                'fjcloud-private-dns', self.resolv_conf, self.nsswitch_conf] + list(argv)
