# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS material: a private CA and a server certificate for 127.0.0.1 and localhost.

Generated with ``trustme`` on first start in the state directory and reused
afterwards: ``ca.pem`` (give it to clients), ``ca-key.pem``, ``server-cert.pem``
(certificate chain) and ``server-key.pem``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl

from .util import atomic_write_bytes

LOG = logging.getLogger('k5emu.certs')

SERVER_NAMES = ('127.0.0.1', 'localhost', '::1')


@dataclasses.dataclass(frozen=True)
class CertPaths:
    """Paths of the TLS files in the state directory."""

    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str

    def server_context(self):
        """Return a server-side SSL context presenting the server certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def ensure_certs(state_dir):
    """Create the CA and server certificate unless they exist; return their :class:`CertPaths`."""
    paths = CertPaths(
        ca_cert=os.path.join(state_dir, 'ca.pem'),
        ca_key=os.path.join(state_dir, 'ca-key.pem'),
        server_cert=os.path.join(state_dir, 'server-cert.pem'),
        server_key=os.path.join(state_dir, 'server-key.pem'),
    )
    if all(os.path.exists(p) for p in dataclasses.astuple(paths)):
        return paths
    import trustme

    if os.path.exists(paths.ca_cert) and os.path.exists(paths.ca_key):
        with open(paths.ca_cert, 'rb') as cert, open(paths.ca_key, 'rb') as key:
            ca = trustme.CA.from_pem(cert.read(), key.read())
    else:
        ca = trustme.CA(organization_name='k5emu', organization_unit_name='k5emu test CA')
        atomic_write_bytes(paths.ca_key, ca.private_key_pem.bytes(), mode=0o600)
        atomic_write_bytes(paths.ca_cert, ca.cert_pem.bytes())
    leaf = ca.issue_cert(*SERVER_NAMES, common_name='127.0.0.1')
    atomic_write_bytes(paths.server_key, leaf.private_key_pem.bytes(), mode=0o600)
    atomic_write_bytes(paths.server_cert, b''.join(blob.bytes() for blob in leaf.cert_chain_pems))
    LOG.info('created TLS certificates in %s', state_dir)
    return paths
