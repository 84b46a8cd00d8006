# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test-only callback plugin that holds a playbook at the start of one task, so that a test can run another
operation beside it (a prune during a restore) or kill it there, at a known point.

CAIRN_GATE_TASK names the task (the end of its name, as ansible-playbook prints it); CAIRN_GATE_DIR is a
directory where the plugin creates ``reached`` when the task is about to start, then waits until the test
creates ``go`` (or for CAIRN_GATE_TIMEOUT seconds, 300 by default)."""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: cairn_gate
type: aggregate
short_description: hold a playbook at one task (tests only)
description: Holds the play at the start of the task named by CAIRN_GATE_TASK until CAIRN_GATE_DIR/go exists.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'cairn_gate'
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_task_start(self, task, is_conditional):
        wanted = os.environ.get('CAIRN_GATE_TASK')
        directory = os.environ.get('CAIRN_GATE_DIR')
        if not wanted or not directory or not task.get_name().endswith(wanted):
            return
        with open(os.path.join(directory, 'reached'), 'w', encoding='utf-8') as handle:
            handle.write('%d\n' % os.getpid())
        deadline = time.monotonic() + float(os.environ.get('CAIRN_GATE_TIMEOUT', '300'))
        while not os.path.exists(os.path.join(directory, 'go')) and time.monotonic() < deadline:
            time.sleep(0.1)
