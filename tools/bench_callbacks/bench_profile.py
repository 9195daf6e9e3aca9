# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-task timing of a playbook run for tools/bench.py, like ansible.posix's profile_tasks.

Each task (and handler) is timed from its start to the next one's start, and its results
are counted by status; the list is written as JSON to $BENCH_PROFILE_FILE at the end.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: bench_profile
type: aggregate
short_description: per-task timing for tools/bench.py
description: Writes each task's wall time and result counts to the file named by BENCH_PROFILE_FILE.
requirements: [enabled in the configuration]
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_profile'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks = []
        self.started = None

    def _close(self):
        if self.tasks and self.tasks[-1]['seconds'] is None:
            self.tasks[-1]['seconds'] = time.monotonic() - self.started

    def _start(self, task, handler=False):
        self._close()
        self.started = time.monotonic()
        self.tasks.append(dict(name=('HANDLER ' if handler else '') + task.get_name(), seconds=None,
                               ok=0, changed=0, skipped=0, failed=0))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task, handler=True)

    def _count(self, result, status):
        if self.tasks:
            self.tasks[-1][status] += 1
            if status == 'ok' and result._result.get('changed'):
                self.tasks[-1]['changed'] += 1

    def v2_runner_on_ok(self, result):
        self._count(result, 'ok')

    def v2_runner_on_skipped(self, result):
        self._count(result, 'skipped')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result, 'failed')

    def v2_playbook_on_stats(self, stats):
        self._close()
        with open(os.environ['BENCH_PROFILE_FILE'], 'w', encoding='utf-8') as handle:
            json.dump(self.tasks, handle)
