# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark-only callback: the moment the controller received each task's result, as JSON lines."""

from __future__ import annotations

DOCUMENTATION = """
    name: bench_task_ends
    type: aggregate
    short_description: Record when each task's result arrived (benchmarks only)
    description:
        - Appends one JSON object (task name, status, Unix time, and the length of C(stdout) and C(stdout_lines) where
          the result has them) per task result to the file named by E(NOMADOPS_BENCH_TASK_ENDS).
        - The lengths let a benchmark check a large output without an C(assert) task, which would template the
          registered output again and add that to the measured time.
    options: {}
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_task_ends"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, status, result):
        ended = time.time()
        path = os.environ.get("NOMADOPS_BENCH_TASK_ENDS")
        if path:
            entry = {"task": str(result.task.name or ""), "status": status, "ended": ended}
            for key in ("stdout", "stdout_lines"):
                if isinstance(result._result.get(key), (str, list)):
                    entry[f"{key}_length"] = len(result._result[key])
            with open(path, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(entry) + "\n")

    def v2_runner_on_ok(self, result):
        self._record("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record("failed", result)
