#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_logs
short_description: Read or follow the stdout and stderr logs of tasks of Nomad allocations
version_added: 0.1.0
description:
  - Reads the logs of one task of every allocation that matches a selector or is given by ID or unique ID prefix
    (C(GET /v1/client/fs/logs/<id>), like C(nomad alloc logs)). Many allocations are read concurrently
    (O(parallelism)).
  - Logs are read from the end (C(origin=end)) across Nomad's rotated log files; O(tail_lines) widens the window
    only as far as needed, so a large log is never downloaded whole. Without O(tail_lines) or O(tail_bytes) the
    last O(max_bytes) bytes are returned.
  - Logs of finished tasks and terminal allocations are readable until Nomad garbage-collects them.
  - With O(follow) the module keeps reading new output until O(follow_timeout) passes, a line matches O(until),
    or the task has finished (Nomad's own stream would never end).
  - An error Nomad sends in the middle of a stream, or a stream that breaks off, fails the task; it is never
    returned as log output.
  - A selector that names a O(job), O(namespace) or O(node) that does not exist fails with one line naming it.
author:
  - nomadops.nomad developers (@nomadops)
options:
  task:
    description:
      - The task whose logs are read.
      - Defaults to the only task of the allocation; an allocation with several tasks needs it, and the error lists them.
    type: str
  type:
    description:
      - Which log to read. V(both) reads stdout and stderr (two streams; they are returned separately).
    type: str
    choices: [stdout, stderr, both]
    default: both
  tail_lines:
    description:
      - Only the last this many lines of each log. Must be at least 1. Mutually exclusive with O(tail_bytes).
      - With O(follow), the last this many lines of what was seen when following ended.
    type: int
  tail_bytes:
    description:
      - Only the last this many bytes of each log. Must be at least 1. Mutually exclusive with O(tail_lines).
    type: int
  follow:
    description:
      - Keep reading new output until O(follow_timeout), a line matching O(until), or the end of the task.
      - Following starts at the end of the log window (O(tail_bytes), about four times O(tail_lines) lines of
        120 bytes, or O(max_bytes)), so recent lines count for O(until) too.
    type: bool
    default: false
  follow_timeout:
    description:
      - Seconds to follow at most. When O(until) is set and no line matched in time, the task fails and
        returns the logs seen. Must be at least 0.
    type: int
    default: 60
  until:
    description:
      - A Python regular expression; follow (implies O(follow=true)) until a complete line of stdout or stderr
        matches it (C(re.search)). An invalid expression fails before any request.
      - Fails with the logs seen when O(follow_timeout) passes, or the task finishes, before a line matched.
    type: str
  max_bytes:
    description:
      - Keep at most this many bytes (the most recent) of each log; RV(logs[].truncated) says when more existed.
    type: int
    default: 1048576
  output_encoding:
    description:
      - V(text) decodes the logs as UTF-8 (invalid bytes replaced); V(base64) returns them base64-encoded,
        byte-exact, and leaves the C(*_lines) lists empty.
    type: str
    choices: [text, base64]
    default: text
  parallelism:
    description:
      - How many allocations are read at the same time. Must be at least 1.
    type: int
    default: 10
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.selector
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_READ_ONLY
notes:
  - Needs the C(read-logs) (or C(read-fs)) capability in the namespace of each allocation.
  - Nomad answers a missing capability on this endpoint with status 500 C(Permission denied); the message says
    which capability is missing.
seealso:
  - module: nomadops.nomad.nomad_alloc_fs_info
  - module: nomadops.nomad.nomad_alloc_fetch
  - name: Stream Logs API
    description: The Nomad API this module reads.
    link: https://developer.hashicorp.com/nomad/api-docs/client#stream-logs
"""

EXAMPLES = r"""
- name: Last 20 lines of stdout and stderr of the web job's running allocations
  nomadops.nomad.nomad_alloc_logs:
    job: web
    client_status: [running]
    tail_lines: 20
  register: web_logs

- name: Show them per allocation
  ansible.builtin.debug:
    msg: "{{ item.Name }}: {{ item.stdout_lines }}"
  loop: "{{ web_logs.logs }}"

- name: Wait until the new allocation says it is ready (fails with the lines seen after 120 s)
  nomadops.nomad.nomad_alloc_logs:
    id: 5a22
    task: server
    type: stdout
    until: "^Listening on"
    follow_timeout: 120

- name: Fetch a binary-safe copy of the last 64 KiB of stderr
  nomadops.nomad.nomad_alloc_logs:
    id: 5a22c3f1
    type: stderr
    tail_bytes: 65536
    output_encoding: base64
"""

RETURN = r"""
logs:
  description: One entry per allocation, in the order of the selection.
  returned: always
  type: list
  elements: dict
  contains:
    ID:
      description: The allocation ID.
      type: str
    Name:
      description: The allocation name.
      type: str
    task:
      description: The task whose logs these are.
      type: str
    stdout:
      description: The stdout log (text or base64, see O(output_encoding)); empty when not read.
      type: str
    stderr:
      description: The stderr log; empty when not read.
      type: str
    stdout_lines:
      description: RV(logs[].stdout) split into lines (text encoding only).
      type: list
      elements: str
    stderr_lines:
      description: RV(logs[].stderr) split into lines (text encoding only).
      type: list
      elements: str
    truncated:
      description: Whether O(max_bytes) cut off older output.
      type: bool
    matched:
      description: The line that matched O(until), when it was set.
      type: str
      returned: when O(until) is set
stdout:
  description: The stdout log, when exactly one allocation was read.
  returned: when one allocation was selected
  type: str
  sample: "line 1\nline 2\n"
stderr:
  description: The stderr log, when exactly one allocation was read.
  returned: when one allocation was selected
  type: str
stdout_lines:
  description: RV(stdout) split into lines.
  returned: when one allocation was selected
  type: list
  elements: str
stderr_lines:
  description: RV(stderr) split into lines.
  returned: when one allocation was selected
  type: list
  elements: str
filter:
  description: The server-side filter expression the selector became, or null.
  returned: always
  type: str
"""

import re

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import failure_fields
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_ARGUMENT_SPEC, selector_of
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import namespace_of
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import select
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs import (
    LOG_TYPES,
    LogsRequest,
    read_logs,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs_result import (
    LogsError,
    choose_task,
    describe_logs_error,
    log_entry,
    require_until_matched,
    selector_problem,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.lifecycle import (
    parallelism_message,
    run_bulk,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule, run_with_nomad_errors

ARGUMENT_SPEC = dict(
    SELECTOR_ARGUMENT_SPEC,
    task=dict(type="str"),
    type=dict(type="str", choices=["stdout", "stderr", "both"], default="both"),
    tail_lines=dict(type="int"),
    tail_bytes=dict(type="int"),
    follow=dict(type="bool", default=False),
    follow_timeout=dict(type="int", default=60),
    until=dict(type="str"),
    max_bytes=dict(type="int", default=1048576),
    output_encoding=dict(type="str", choices=["text", "base64"], default="text"),
    parallelism=dict(type="int", default=10),
)


def input_problem(params):
    """One line about the first bad input, checked before any request; None when all is well."""
    for name in ("tail_lines", "tail_bytes", "max_bytes"):
        if params[name] is not None and params[name] < 1:
            return f"{name} must be at least 1, got {params[name]}"
    if params["follow_timeout"] < 0:
        return f"follow_timeout must be at least 0 seconds, got {params['follow_timeout']}"
    if params["until"] is not None:
        try:
            re.compile(params["until"])
        except re.error as exc:
            return f"until is not a valid regular expression ({exc}): {params['until']!r}"
    return selector_problem(params) or parallelism_message(params["parallelism"])


def logs_request(params):
    log_types = LOG_TYPES if params["type"] == "both" else (params["type"],)
    until = re.compile(params["until"]) if params["until"] is not None else None
    return LogsRequest(log_types, params["tail_lines"], params["tail_bytes"], params["follow"],
                       params["follow_timeout"], until, params["max_bytes"])


def read_all(module):
    params = module.params
    client = module.client(pool_size=params["parallelism"] * 2)
    selection = select(client, selector_of(module.params), acting=True)
    allocations, selection_filter = selection.allocations, selection.filter
    request = logs_request(params)

    def read_one(allocation):
        task = choose_task(allocation, params["task"])
        logs = read_logs(client, allocation["ID"], task, request, namespace=namespace_of(allocation))
        entry = log_entry(allocation, task, logs, params["output_encoding"], request)
        require_until_matched(entry, logs, request)
        return entry

    outcomes = run_bulk(allocations, read_one, params["parallelism"], expected_errors=(NomadError, LogsError))
    finish(module, outcomes, selection_filter, params)


def finish(module, outcomes, selection_filter, params):
    entries = [outcome.value or outcome.error.entry for outcome in outcomes
               if outcome.value is not None or getattr(outcome.error, "entry", None)]
    result = dict(changed=False, logs=entries, filter=selection_filter)
    if len(outcomes) == 1 and entries:
        result.update({key: entries[0][key] for key in ("stdout", "stderr", "stdout_lines", "stderr_lines")})
    failed = [outcome for outcome in outcomes if outcome.failed]
    if failed:
        lines = [describe_logs_error(outcome.error, outcome.item) for outcome in failed]
        if len(outcomes) == 1:
            module.fail_json(**dict(answer_fields(failed[0].error), msg=lines[0]), **result)
        module.fail_json(msg=f"{len(failed)} of {len(outcomes)} allocations failed: " + "; ".join(lines), **result)
    if not outcomes:
        result["msg"] = "no allocation matched the selector"
    module.exit_json(**result)


def answer_fields(error):
    """status/address of a failure Nomad answered (failure_fields without its msg); nothing for local checks."""
    return {key: value for key, value in failure_fields(error).items() if key != "msg"}


def main():
    module = NomadAnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                                mutually_exclusive=[("tail_lines", "tail_bytes")])
    problem = input_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    run_with_nomad_errors(module, lambda: read_all(module))


if __name__ == "__main__":
    main()
