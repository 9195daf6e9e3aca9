# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``terraform-provider-k5mail`` command: serve Terraform, or install itself into a filesystem mirror.

Terraform starts the provider about three times per plan, so this module
imports nothing heavy: the plugin server (``tf``, gRPC, protobuf) and the
collection's client are imported only when Terraform's handshake is there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os
import sys

from terraform_provider_k5mail import __version__

PROG = 'terraform-provider-k5mail'
# go-plugin's handshake: Terraform sets this variable for every provider it starts, and nothing else does.
MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE'
MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2'
BAD_USAGE, FAILED = 2, 1
HELP = '''usage: %(prog)s mirror DIR
       %(prog)s [--help | --version]

The Terraform provider fjcloud/k5mail: the SMTP user, the sender identities and the
send quota of the FUJITSU K5 Email Delivery Service. Terraform starts it; by hand it
only installs itself:

  mirror DIR    write DIR/registry.terraform.io/fjcloud/k5mail/%(prog)s_%(version)s_OS_ARCH.zip,
                a launcher of this installation, and print the provider_installation block
                of Terraform's CLI configuration that installs it from DIR (no registry)

options:
  -h, --help    show this help and exit
  --version     show the version (the collection's) and exit
'''
NOT_BY_HAND = ('%(prog)s %(version)s is the Terraform provider fjcloud/k5mail: Terraform starts it (with its plugin '
               'handshake), it does not run by hand. To install it: %(prog)s mirror DIR (see --help)\n')


def main(argv=None, environ=None, stdout=None, stderr=None):
    """Console script entry point; returns the exit status (only when not serving Terraform)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    names = dict(prog=PROG, version=__version__)
    if argv in (['--help'], ['-h']):
        stdout.write(HELP % names)
        return 0
    if argv == ['--version']:
        stdout.write('%s %s\n' % (PROG, __version__))
        return 0
    if argv[:1] == ['mirror']:
        from terraform_provider_k5mail.mirror import mirror_command
        return mirror_command(argv[1:], stdout, stderr)
    if environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        stderr.write(NOT_BY_HAND % names)
        return BAD_USAGE
    # Serving Terraform: whatever goes to stdout before the handshake line breaks it.
    missing = [name for name in ('tf', 'requests', 'lxml') if importlib.util.find_spec(name) is None]
    if missing:
        stderr.write("%s: missing Python packages: %s; pip install 'fjcloud-mail[terraform]'\n" % (PROG, ', '.join(missing)))
        return FAILED
    from terraform_provider_k5mail.provider import serve
    serve()
    return 0
