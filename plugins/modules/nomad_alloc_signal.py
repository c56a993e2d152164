#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_signal
short_description: Send a POSIX signal to the tasks of Nomad allocations
version_added: 0.1.0
description:
  - Sends a signal to one task, or to every running task, of the allocations that match a selector or are given by
    ID or unique ID prefix (C(POST /v1/client/allocation/<id>/signal), like C(nomad alloc signal)).
  - The signal name is checked before anything is sent. Nomad's C(exec) and C(raw_exec) drivers silently turn a
    name they do not know into C(SIGINT), so an unknown name fails the task instead.
  - Without O(task), the module reads each allocation and signals only its running tasks, one request per task.
    Nomad itself would fail the whole request when any task of the allocation is not running (for example a
    finished prestart task, L(hashicorp/nomad#28105,https://github.com/hashicorp/nomad/issues/28105)).
  - With O(task), a task that is not part of the allocation, or does not run, fails that allocation with a
    message naming the allocation and its tasks, and nothing is sent to it.
  - Allocations that have finished (client status C(complete), C(failed) or C(lost)) are skipped and reported
    with C(skipped_reason) when the selector reached them; an allocation given by O(id) that has finished fails,
    as C(nomad alloc signal) does.
  - Always reports a change for every allocation it signalled; a signal cannot be checked for afterwards.
  - Many allocations are signalled concurrently (O(parallelism)). When some fail, the others are still signalled,
    and the task fails with a message naming every failed allocation; per-allocation results are returned too.
  - Refuses to run without any selector option, which would signal every allocation in the namespace.
  - A selector that names a O(job), O(namespace) or O(node) that does not exist fails with one line naming it and
    the address, before anything is sent (checked only when nothing matched). A selector whose job, namespace and
    node exist but that matches no allocation is not an error; the task reports no change and says so in C(msg).
    An O(id) that matches no allocation is an error, before anything is sent.
author:
  - nomadops.nomad developers (@nomadops)
options:
  signal:
    description:
      - The signal to send, as a POSIX signal name, with or without the C(SIG) prefix, in any case
        (V(SIGHUP), V(HUP) and V(hup) are the same). It is sent as C(SIGXXX).
      - Accepted names are C(SIGABRT), C(SIGALRM), C(SIGBUS), C(SIGCHLD), C(SIGCONT), C(SIGFPE), C(SIGHUP),
        C(SIGILL), C(SIGINT), C(SIGKILL), C(SIGPIPE), C(SIGPOLL), C(SIGPROF), C(SIGQUIT), C(SIGSEGV), C(SIGSTOP),
        C(SIGSYS), C(SIGTERM), C(SIGTRAP), C(SIGTSTP), C(SIGTTIN), C(SIGTTOU), C(SIGURG), C(SIGUSR1), C(SIGUSR2),
        C(SIGVTALRM), C(SIGWINCH), C(SIGXCPU) and C(SIGXFSZ).
      - Required, unlike C(nomad alloc signal) whose default is C(SIGKILL); a task that only names allocations
        should not kill them by accident.
    type: str
    required: true
  task:
    description:
      - Only signal this task of each allocation. It must exist in the allocation's task group and be running.
      - Without it, every task of the allocation that is running at the time is signalled.
    type: str
  parallelism:
    description:
      - How many allocations are signalled at the same time. Must be at least 1.
    type: int
    default: 10
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.selector
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_PREDICT_DIFF
notes:
  - In check mode the signal name is validated and every selected allocation is read, so unknown or stopped
    tasks are reported exactly as in a real run, but no signal is sent.
  - Signalling needs the C(alloc-lifecycle) capability in the namespace of each allocation.
  - A signal request is never sent twice. If the connection breaks after it may have reached Nomad, that
    allocation is reported as failed.
seealso:
  - module: nomadops.nomad.nomad_alloc_restart
  - name: Signal Allocation API
    description: The Nomad API this module calls.
    link: https://developer.hashicorp.com/nomad/api-docs/allocations#signal-allocation
"""

EXAMPLES = r"""
- name: Show what a SIGHUP to job web would reach, per allocation, without sending it
  nomadops.nomad.nomad_alloc_signal:
    job: web
    signal: SIGHUP
  check_mode: true
  diff: true

- name: Make every running task of job web reload its configuration
  nomadops.nomad.nomad_alloc_signal:
    job: web
    client_status: [running]
    signal: SIGHUP

- name: Send USR1 to the server task of two allocations given by short ID
  nomadops.nomad.nomad_alloc_signal:
    id: [5a22, 8d1c]
    task: server
    signal: usr1
  register: signalled

- name: Show which tasks got the signal
  ansible.builtin.debug:
    msg: "{{ signalled.allocations | map(attribute='tasks') | list }}"

- name: Check that the task exists and runs everywhere, without signalling
  nomadops.nomad.nomad_alloc_signal:
    job: web
    task: server
    signal: SIGTERM
  check_mode: true

# Ad-hoc, with NOMAD_ADDR / NOMAD_TOKEN taken from the environment:
#   ansible localhost -m nomadops.nomad.nomad_alloc_signal -a 'job=web signal=SIGHUP'
#   ansible localhost -m nomadops.nomad.nomad_alloc_signal -a 'id=5a22 task=server signal=USR1'
"""

RETURN = r"""
summary:
  description:
    - One short entry per selected allocation, in selection order, read before acting.
    - Each has C(id) (short ID), C(name), C(node), C(client_status), C(desired_status), C(health) (C(healthy),
      C(unhealthy) or null when Nomad tracks no deployment health), C(modified) and C(tasks).
    - C(tasks) is a list (sorted by name) of C(task), C(state), C(failed), C(restarts), C(last_event)
      (event type, a colon and its message) and C(last_event_time) (ISO 8601, UTC).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 5a222182
      name: web.frontend[0]
      node: node-1
      client_status: running
      desired_status: run
      health: healthy
      modified: "2024-05-01T12:00:03Z"
      tasks:
        - task: server
          state: running
          failed: false
          restarts: 1
          last_event: "Restarting: Task restarting in 1s"
          last_event_time: "2024-05-01T12:00:02Z"
filter:
  description:
    - The server-side filter expression the selector became (sent as C(filter) to C(GET /v1/allocations)), or null
      when none was needed (only O(id) given).
  returned: always
  type: str
  sample: 'JobID == "web" and (ClientStatus == "running")'
msg:
  description: Why nothing was done, when the selector matched no allocation.
  returned: when no allocation was selected
  type: str
  sample: 'no allocation matched the selector (filter: JobID == "web"); nothing to do'
signal:
  description: The signal that was sent (or would be sent), in its canonical C(SIGXXX) spelling.
  returned: always
  type: str
  sample: SIGHUP
allocations:
  description:
    - One entry per selected allocation, in selection order, including the skipped and the failed ones.
  returned: always
  type: list
  elements: dict
  contains:
    ID:
      description: Allocation ID.
      type: str
      sample: 5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10
    Name:
      description: Allocation name (C(<job>.<group>[<index>])).
      type: str
      sample: web.frontend[0]
    JobID:
      description: Job of the allocation.
      type: str
      sample: web
    Namespace:
      description: Namespace of the allocation.
      type: str
      sample: default
    TaskGroup:
      description: Task group of the allocation.
      type: str
      sample: frontend
    changed:
      description: Whether at least one task of this allocation was signalled (in check mode, would be).
      type: bool
      sample: true
    tasks:
      description:
        - The tasks that were signalled (in check mode, would be signalled).
        - When a later task of the same allocation failed, the tasks signalled before it.
      type: list
      elements: str
      sample: [server, logs]
    skipped_reason:
      description: Why the allocation was left alone (it has finished).
      type: str
      returned: when the allocation was skipped
      sample: "allocation is terminal (ClientStatus complete); its tasks no longer run"
    error:
      description: Why signalling this allocation failed.
      type: str
      returned: when the allocation failed
      sample: "task 'init' is not running (state dead)"
  sample:
    - ID: 5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10
      Name: web.frontend[0]
      JobID: web
      Namespace: default
      TaskGroup: frontend
      changed: true
      tasks: [server, logs]
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_ARGUMENT_SPEC, selector_of
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.results import finish_action, shape_results
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.lifecycle import (
    refuse_explicit_skip,
    input_problem,
    run_bulk,
    signal_allocation,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import (
    NomadAnsibleModule,
    run_with_nomad_errors,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import select
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.signals import normalize_signal

ARGUMENT_SPEC = dict(
    SELECTOR_ARGUMENT_SPEC,
    signal=dict(type="str", required=True),
    task=dict(type="str"),
    parallelism=dict(type="int", default=10),
)


def send_signal(module, signal):
    params = module.params
    client = module.client(pool_size=params["parallelism"])
    selector = selector_of(module.params)
    selection = select(client, selector, acting=True)
    allocations, selection_filter, explicit = selection.allocations, selection.filter, selection.explicit_ids

    def signal_one(allocation):
        value = signal_allocation(client, allocation, signal, params["task"], module.check_mode)
        return refuse_explicit_skip(value, allocation, explicit, "signal")

    results = shape_results(run_bulk(allocations, signal_one, params["parallelism"]))
    finish_action(module, "signal", allocations, results, selection_filter, signal=signal)


def main():
    module = NomadAnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    problem = input_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    run_with_nomad_errors(module, lambda: send_signal(module, normalize_signal(module.params["signal"])))


if __name__ == "__main__":
    main()
