# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: appends every task result to the JSON-lines file named by RESULT_FILE.

The results are what Ansible hands to callbacks, so no_log tasks arrive censored.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: result_file
type: aggregate
short_description: write task results to a file for the functional tests
description:
  - Appends one JSON object per host and task to the file named by E(RESULT_FILE).
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'result_file'
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status):
        path = os.environ.get('RESULT_FILE')
        if not path:
            return
        record = dict(result._result, _task=result._task.get_name(), _status=status)
        with open(path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(record, default=str) + '\n')

    def v2_runner_on_ok(self, result):
        self._write(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._write(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._write(result, 'skipped')
