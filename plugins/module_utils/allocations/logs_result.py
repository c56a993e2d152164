# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What nomad_alloc_logs makes of one allocation: which task, the result entry, and one-line failures."""

from __future__ import annotations

import base64

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadError, OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import allocation_label, task_names
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs import split_lines
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import missing_selector_message

LAST_LINES_IN_MESSAGE = 3


class LogsError(OperationFailed):
    """A problem with one allocation's logs; `entry` holds the logs seen so far, if any."""

    def __init__(self, message, entry=None):
        super().__init__(message)
        self.entry = entry


def selector_problem(params):
    message = missing_selector_message(params)
    return None if message is None else f"{message} to choose whose logs to read"


def choose_task(allocation, task):
    """The task to read: `task` when the allocation has it, else its only task."""
    names = task_names(allocation)
    if task is not None:
        if task not in names:
            raise LogsError(f"no task {task!r} in this allocation; its tasks are: {', '.join(names) or 'none'}")
        return task
    if len(names) == 1:
        return names[0]
    raise LogsError(f"the allocation has several tasks ({', '.join(names) or 'none'}): set task to one of them")


def _encoded(data, encoding):
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii"), []
    text = data.decode("utf-8", "replace")
    return text, [line.decode("utf-8", "replace") for line in split_lines(data)]


def log_entry(allocation, task, logs, encoding, request):
    entry = dict(ID=allocation.get("ID"), Name=allocation.get("Name"), task=task, truncated=logs.truncated)
    for log_type in ("stdout", "stderr"):
        entry[log_type], entry[f"{log_type}_lines"] = _encoded(logs.data.get(log_type, b""), encoding)
    if request.until is not None:
        entry["matched"] = logs.matched
    return entry


def require_until_matched(entry, logs, request):
    if request.until is None or logs.matched is not None:
        return
    why = "the task finished" if logs.task_finished else f"follow_timeout ({request.follow_timeout} s) passed"
    seen = [line for log_type in request.log_types for line in split_lines(logs.data.get(log_type, b""))]
    tail = " | ".join(line.decode("utf-8", "replace") for line in seen[-LAST_LINES_IN_MESSAGE:])
    raise LogsError(f"no line matched until {request.until.pattern!r} before {why}; last lines seen: "
                    f"{tail or '(none)'}", entry=entry)


def describe_logs_error(error, allocation):
    """One line naming the allocation, with the fix where it is obvious."""
    label = allocation_label(allocation)
    if isinstance(error, NomadError):
        text = " ".join(str(getattr(error, "nomad_message", None) or error).split())
        if text == "Permission denied" or error.status == 403:
            namespace = allocation.get("Namespace") or "default"
            text = f"Permission denied: the token needs the read-logs or read-fs capability in namespace {namespace!r}"
        return f"{label}: {text}"
    return f"{label}: {error}"
