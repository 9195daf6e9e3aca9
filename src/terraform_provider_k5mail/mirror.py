# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``terraform-provider-k5mail mirror DIR``: install the provider into a packed filesystem mirror.

Terraform installs providers from a registry, or from a filesystem mirror laid
out as ``DIR/HOST/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_OS_ARCH.zip``.
The zip holds one executable: here a shell launcher that runs this
installation's Python with this package, so the mirror follows the venv it was
written from (write it again after moving the venv). The zip is byte-for-byte
the same for the same installation, so the ``h1:`` hash in a lock file stays valid.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import platform
import shlex
import sys
import sysconfig
import zipfile

from terraform_provider_k5mail import __version__

PROG = 'terraform-provider-k5mail'
PROVIDER_SOURCE = 'registry.terraform.io/fjcloud/k5mail'
# Terraform's names of the machine kinds Python reports.
ARCHITECTURES = {'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64',
                 'i386': '386', 'i686': '386', 'armv7l': 'arm'}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so that the same launcher always gives the same zip


def target_platform():
    """Terraform's ``OS_ARCH`` of this machine; ValueError when the launcher (a POSIX shell script) cannot run here."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    if system not in ('linux', 'darwin', 'freebsd', 'openbsd'):
        raise ValueError('the launcher is a POSIX shell script; %s is not supported' % platform.system())
    if machine not in ARCHITECTURES:
        raise ValueError('the machine kind %s has no Terraform name known to %s' % (platform.machine(), PROG))
    return '%s_%s' % (system, ARCHITECTURES[machine])


def import_roots():
    """The directories this package and the collection are imported from, unless Python finds them by itself."""
    import ansible_collections.fjcloud.mail  # pylint: disable=import-outside-toplevel; only the mirror needs it
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    collection_root = os.path.abspath(os.path.join(list(ansible_collections.fjcloud.mail.__path__)[0], '..', '..', '..'))
    default = set(os.path.abspath(path) for path in (sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']))
    roots = []
    for root in (package_root, collection_root):
        if root not in default and root not in roots:
            roots.append(root)
    return roots


def launcher():
    """The shell script Terraform runs: this installation's Python with this package."""
    lines = ['#!/bin/sh',
             '# The Terraform provider fjcloud/k5mail %s, written by `%s mirror`: it runs the' % (__version__, PROG),
             '# installation below (Terraform passes its environment on: OS_*, FJCLOUD_MAIL_*).']
    roots = import_roots()
    if roots:  # a checkout, or a PYTHONPATH install
        lines.append('PYTHONPATH=%s${PYTHONPATH:+:$PYTHONPATH}' % shlex.quote(os.pathsep.join(roots)))
        lines.append('export PYTHONPATH')
    # -P (Python 3.11+): Terraform's working directory is not put on the import path.
    safe_path = ' -P' if sys.version_info >= (3, 11) else ''
    lines.append('exec %s%s -m terraform_provider_k5mail "$@"' % (shlex.quote(sys.executable), safe_path))
    return '\n'.join(lines) + '\n'


def write_mirror(directory):
    """Write the packed mirror under ``directory``; return the path of the zip."""
    name = '%s_%s_%s.zip' % (PROG, __version__, target_platform())
    package_dir = os.path.join(os.path.abspath(directory), *PROVIDER_SOURCE.split('/'))
    os.makedirs(package_dir, exist_ok=True)
    path = os.path.join(package_dir, name)
    entry = zipfile.ZipInfo('%s_v%s' % (PROG, __version__), date_time=ZIP_TIME)
    entry.external_attr = 0o100755 << 16  # a regular file, executable: Terraform keeps the mode when it unpacks
    entry.compress_type = zipfile.ZIP_DEFLATED
    temporary = path + '.tmp'
    with zipfile.ZipFile(temporary, 'w') as archive:
        archive.writestr(entry, launcher())
    os.replace(temporary, path)
    return path


def hcl_string(text):
    """``text`` as an HCL string literal (JSON escapes, and no template sequences)."""
    return json.dumps(text).replace('${', '$${').replace('%{', '%%{')


def cli_configuration(directory):
    """The provider_installation block of a CLI configuration that installs the provider from ``directory``."""
    source = hcl_string(PROVIDER_SOURCE)
    return '\n'.join([
        'provider_installation {',
        '  filesystem_mirror {',
        '    path    = %s' % hcl_string(os.path.abspath(directory)),
        '    include = [%s]' % source,
        '  }',
        '  direct {',
        '    exclude = [%s]' % source,
        '  }',
        '}',
    ]) + '\n'


def mirror_command(args, stdout, stderr):
    if len(args) != 1 or args[0].startswith('-'):
        stderr.write('usage: %s mirror DIR\n' % PROG)
        return 2
    try:
        path = write_mirror(args[0])
    except (OSError, ValueError) as exc:
        stderr.write('%s: cannot write the mirror in %s: %s\n' % (PROG, args[0], exc))
        return 1
    stderr.write('%s: wrote %s; add this to the CLI configuration of Terraform (~/.terraformrc or the file '
                 'TF_CLI_CONFIG_FILE names):\n' % (PROG, path))
    stdout.write(cli_configuration(args[0]))
    return 0
