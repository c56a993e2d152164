# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test-only callback: writes every task result as one JSON line, so tests can read what ran."""

from __future__ import annotations

DOCUMENTATION = """
    name: record_results
    type: aggregate
    short_description: Record task results as JSON lines (test suite only)
    description:
        - Appends one JSON object per task result to the file named by E(NOMADOPS_RECORD_RESULTS).
    options: {}
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, status, result):
        path = os.environ.get("NOMADOPS_RECORD_RESULTS")
        if not path:
            return
        entry = {
            # The task's own name: ansible-core 2.21's task_name puts "<role> : " before a role's task names.
            "task": str(result.task.name or "") or result.task_name,
            "host": result.host.get_name(),
            "status": status,
            "result": result.result,
        }
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._record("changed" if result.result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result):
        self._record("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._record("unreachable", result)
