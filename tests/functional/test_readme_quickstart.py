# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's quickstart, run as written: its shell blocks, in order, in one bash.

The blocks are found by their ``<!-- quickstart:NAME -->`` markers. They run in a
temporary HOME (so ``~/fjcloud-quickstart`` is inside the test's directory), from
the checkout, with nothing of the test session in the environment. Only the two
commands that would reach PyPI are stood in for, by shell functions that run this
file as a script:

- ``python3 -m venv DIR`` makes the venv with this interpreter and puts this
  interpreter's site-packages (ansible-core, requests, lxml, trustme, aiosmtpd) on
  its path, as a download of the same packages would;
- ``pip install ...`` installs, without the index, the wheel built from the checkout
  (for ``.[extras]``; the extras must exist) and, for a requirement such as
  ``ansible-core``, checks that this interpreter has it and writes its commands into
  the venv, as pip does.

Everything else (the venv's activation, ``k5emu`` started from the venv, the wait
for endpoint.json, the playbook, its runs, the admin request and the stop) runs as
a user runs it, against the emulator on 127.0.0.1.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile

import pytest

from packaging_harness import REPO_ROOT, clean_env

BLOCK = re.compile(r'^<!-- quickstart:(\w+) -->\n```sh\n(.*?)^```$', re.M | re.S)
ORDER = ['install', 'emulator', 'playbook', 'run', 'verify', 'stop']
MARKER = '@@quickstart:%s@@'
RECAP = re.compile(r'^localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0\b', re.M)
MESSAGE = re.compile(r'"msg": "SMTP user (\w+); sender@example.com is (\w+)"')
SCRIPT_TIMEOUT = 300

# The wheel (the dists fixture) is built once for this group, shared with test_packaging.py and test_release.py.
pytestmark = pytest.mark.xdist_group('packaging')

# The stand-ins, defined before the README's blocks; "$@" of a function are the command's arguments.
STAND_INS = '''
python3() {
    if [ "$1" = -m ] && [ "$2" = venv ]; then shift 2; "$QS_PYTHON" "$QS_SCRIPT" venv "$@"; else command python3 "$@"; fi
}
pip() { "$QS_PYTHON" "$QS_SCRIPT" pip "$@"; }
set -eo pipefail
'''


def quickstart_blocks(readme):
    """``[(name, shell text)]`` of the README's quickstart, in the order written."""
    return BLOCK.findall(readme)


# ---------------------------------------------------------------------------
# The stand-ins (this file run as a script by the shell functions above)

def stand_in_venv(args):
    """``python3 -m venv DIR``: the venv, with this interpreter's packages on its path (no download)."""
    assert len(args) == 1 and not args[0].startswith('-'), 'the README runs python3 -m venv with one directory: %s' % args
    target = os.path.abspath(args[0])
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', target], check=True)
    purelib = subprocess.run([os.path.join(target, 'bin', 'python'), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = sorted(set(sysconfig.get_paths()[key] for key in ('purelib', 'platlib')))
    with open(os.path.join(purelib, 'quickstart-test-packages.pth'), 'w', encoding='utf-8') as handle:
        handle.write(''.join(path + '\n' for path in ours))
    return 0


def stand_in_pip(args):
    """``pip install REQ...`` into the active venv, without the index."""
    assert args[:1] == ['install'] and len(args) > 1, 'the README runs pip install REQUIREMENTS: %s' % args
    venv = os.environ.get('VIRTUAL_ENV')
    assert venv, 'pip install ran outside a virtualenv: the README must activate one first'
    for requirement in args[1:]:
        assert not requirement.startswith('-'), 'option %s: the stand-in knows none' % requirement
        path, extras = (requirement.split('[', 1) + [''])[:2]
        if os.path.exists(path):
            assert os.path.samefile(path, REPO_ROOT), 'pip install %s: not the checkout (run in %s)' % (requirement, os.getcwd())
            install_checkout(venv, [extra for extra in extras.rstrip(']').split(',') if extra])
        else:
            provide(venv, importlib.metadata.distribution(requirement))
    return 0


def install_checkout(venv, extras):
    """The wheel built from the checkout (QS_WHEEL), and what it and its ``extras`` require."""
    wheel = os.environ['QS_WHEEL']
    subprocess.run([sys.executable, '-m', 'pip', '--python', os.path.join(venv, 'bin', 'python'), 'install', '-q',
                    '--no-deps', '--no-index', '--disable-pip-version-check', wheel], check=True)
    with zipfile.ZipFile(wheel) as archive:
        name = next(name for name in archive.namelist() if name.endswith('.dist-info/METADATA'))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode('utf-8'))
    provided = metadata.get_all('Provides-Extra') or []
    unknown = sorted(set(extras) - set(provided))
    assert not unknown, 'fjcloud-mail has no extra %s (it has %s)' % (unknown, provided)
    from packaging.requirements import Requirement  # ansible-core's dependency, so always here
    for line in metadata.get_all('Requires-Dist') or []:
        requirement = Requirement(line)
        if requirement.marker is None or any(requirement.marker.evaluate({'extra': extra}) for extra in extras):
            dist = importlib.metadata.distribution(requirement.name)
            assert requirement.specifier.contains(dist.version, prereleases=True), \
                '%s is needed, the test interpreter has %s' % (requirement, dist.version)
            provide(venv, dist)


def provide(venv, dist):
    """``dist`` of this interpreter (on the venv's path already) with its commands in the venv, as pip writes them."""
    for entry in dist.entry_points.select(group='console_scripts'):
        path = os.path.join(venv, 'bin', entry.name)
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write('#!%s\nimport sys\nfrom %s import %s\nsys.exit(%s())\n' % (
                os.path.join(venv, 'bin', 'python'), entry.module, entry.attr.split('.')[0], entry.attr))
        os.chmod(path, 0o755)


# ---------------------------------------------------------------------------
# The test

def sections(output):
    """The script's output split at the markers: ``{block name: its output}``."""
    parts = re.split(r'^@@quickstart:(\w+)@@$', output, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_readme_quickstart_runs_as_written(dists, tmp_path):
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as handle:
        blocks = quickstart_blocks(handle.read())
    assert [block[0] for block in blocks] == ORDER

    home = tmp_path / 'home'
    home.mkdir()
    state = tmp_path / 'module-state'
    state.mkdir(mode=0o700)
    script = STAND_INS + ''.join('echo %s\n%s' % (MARKER % name, text) for name, text in blocks)
    env = clean_env(HOME=str(home), QS_PYTHON=sys.executable, QS_SCRIPT=os.path.abspath(__file__), QS_WHEEL=str(dists[1]),
                    FJCLOUD_MAIL_STATE_DIR=str(state), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-local'),
                    ANSIBLE_REMOTE_TMP=str(tmp_path / 'ansible-remote'), ANSIBLE_NOCOLOR='1')
    # Output to a file, not a pipe: a k5emu left running would hold a pipe open. Its own session, so that
    # whatever it started is stopped with it if a block fails.
    log = tmp_path / 'quickstart.log'
    with open(log, 'w', encoding='utf-8') as handle:
        process = subprocess.Popen(['bash', '-c', script], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        process.wait(SCRIPT_TIMEOUT)
    finally:
        if process.returncode != 0:  # a block failed or hung: stop what it left (a passing run is checked below)
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            process.wait(10)
    output = log.read_text(encoding='utf-8')
    assert process.returncode == 0, output
    out = sections(output)
    quickstart = home / 'fjcloud-quickstart'

    # Installed into the venv: the collection and k5emu from the wheel, not from the checkout.
    venv_packages = sorted((quickstart / 'venv' / 'lib').glob('python*/site-packages'))
    assert len(venv_packages) == 1
    assert (venv_packages[0] / 'ansible_collections' / 'fjcloud' / 'mail' / 'galaxy.yml').is_file()
    assert (venv_packages[0] / 'k5emu' / '__main__.py').is_file()
    assert ' ready: ' in out['emulator']

    # The first run changes something, the second nothing, with the same SMTP user.
    assert [int(changed) for changed in RECAP.findall(out['run'])] == [2, 0], out['run']
    runs = MESSAGE.findall(out['run']) + MESSAGE.findall(out['verify'])
    assert len(runs) == 3, output
    users, statuses = zip(*runs)
    assert statuses == ('Pending', 'Pending', 'Success')
    assert len(set(users)) == 1
    assert [int(changed) for changed in RECAP.findall(out['verify'])] == [0], out['verify']

    # What the emulator holds (state.json is kept after it stops): that SMTP user, the address verified.
    emulator_state = json.loads((quickstart / 'k5emu' / 'state.json').read_text())
    project = emulator_state['contracts']['0123456789abcdef0123456789abcdef']  # kept per project id
    assert project['smtp_user']['user'] == users[0]
    assert project['identities']['sender@example.com']['status'] == 'Success'
    assert project['smtp_user']['password'] not in output
    assert 'demo-password' not in output
    requests_log = [json.loads(line) for line in (quickstart / 'k5emu' / 'requests.jsonl').read_text().splitlines()]
    assert [record['status'] for record in requests_log if record['action'] == 'CreateSMTPUser'] == [200, 409, 409]

    # The last block stopped the emulator: it removes endpoint.json on SIGTERM.
    endpoint = quickstart / 'k5emu' / 'endpoint.json'
    deadline = time.monotonic() + 15
    while endpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if endpoint.exists():
        os.kill(json.loads(endpoint.read_text())['pid'], signal.SIGTERM)
        raise AssertionError('k5emu still ran after the last block of the quickstart')


if __name__ == '__main__':
    sys.exit({'venv': stand_in_venv, 'pip': stand_in_pip}[sys.argv[1]](sys.argv[2:]))
