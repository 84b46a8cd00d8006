# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A benchmark-only callback plugin: the wall time of every task, appended as JSON lines to the file named by
CAIRN_TASK_TIMES ({"task": name, "host": host, "seconds": s, "status": ok|changed|failed|skipped})."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: cairn_task_times
type: aggregate
short_description: write the wall time of every task to a file (benchmarks only)
description: Appends one JSON line per task result to the file named by CAIRN_TASK_TIMES.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'cairn_task_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.monotonic()

    def _write(self, result, status):
        path = os.environ.get('CAIRN_TASK_TIMES')
        started = self._started.get(result._task._uuid)
        if not path or started is None:
            return
        with open(path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps({'task': result._task.get_name(), 'host': result._host.get_name(),
                                     'seconds': round(time.monotonic() - started, 3), 'status': status}) + '\n')

    def v2_runner_on_ok(self, result):
        self._write(result, 'changed' if result._result.get('changed') else 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._write(result, 'skipped')
