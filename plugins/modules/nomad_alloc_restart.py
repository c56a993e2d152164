#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_restart
short_description: Restart tasks of Nomad allocations in place
version_added: 0.1.0
description:
  - Restarts one task, the running tasks, or all tasks of the allocations that match a selector or are given by ID
    or unique ID prefix, in place on the same node (C(POST /v1/client/allocation/<id>/restart), like
    C(nomad alloc restart)). The allocation keeps its ID; Nomad counts the restart in the task's C(Restarts).
  - With O(task), that task must exist in the allocation's task group and be running, else that allocation fails
    with a message naming it and its tasks, and nothing is sent to it.
  - With O(all_tasks), every task is restarted, also tasks that are not running (for example a finished prestart
    task runs again), in lifecycle order.
  - With neither, the tasks running at the time are restarted (Nomad ignores the others); an allocation without a
    running task fails.
  - Allocations that have finished (client status C(complete), C(failed) or C(lost)) are skipped and reported
    with C(skipped_reason) when the selector reached them; an allocation given by O(id) that has finished fails,
    as C(nomad alloc restart) does.
  - O(task) naming a lifecycle task that has finished (for example a prestart task) fails with a hint to use
    O(all_tasks=true).
  - Always reports a change for every allocation it restarted.
  - Many allocations are restarted concurrently (O(parallelism)). When some fail, the others are still restarted,
    and the task fails with a message naming every failed allocation; per-allocation results are returned too.
  - Refuses to run without any selector option, which would restart every allocation in the namespace.
  - A selector that names a O(job), O(namespace) or O(node) that does not exist fails with one line naming it and
    the address, before anything is sent (checked only when nothing matched). A selector whose job, namespace and
    node exist but that matches no allocation is not an error; the task reports no change and says so in C(msg).
    An O(id) that matches no allocation is an error, before anything is sent.
author:
  - nomadops.nomad developers (@nomadops)
options:
  task:
    description:
      - Restart only this task of each allocation. Mutually exclusive with O(all_tasks).
    type: str
  all_tasks:
    description:
      - Restart every task of each allocation, including tasks that are not running. Mutually exclusive with O(task).
    type: bool
    default: false
  parallelism:
    description:
      - How many allocations are restarted at the same time. Must be at least 1.
      - With O(wait=true) an allocation counts until its tasks run again, so at most this many allocations are
        restarting at any moment.
    type: int
    default: 10
  wait:
    description:
      - After restarting an allocation, wait until every restarted task runs again (state C(running) with a
        higher C(Restarts) count or a newer C(LastRestart)), using Nomad blocking queries on the allocation
        (no polling sleeps). Tasks with a lifecycle hook that are not sidecars (prestart, poststart, poststop) run once
        and exit, so they are not waited for.
      - An allocation whose tasks do not run again within O(wait_timeout) counts as a failure (it was restarted,
        so it is still reported with C(changed=true)).
      - O(wait=true) is the same as O(wait_for=running).
    type: bool
    default: false
  wait_for:
    description:
      - Wait after each restart until this condition holds for the allocation; setting it implies O(wait=true).
      - V(running) - every restarted task runs again (see O(wait)).
      - V(healthy) - as V(running), and the allocation is healthy, with the same meaning as the
        O(nomadops.nomad.nomad_alloc_info#module:wait_for=healthy) of M(nomadops.nomad.nomad_alloc_info) - all its
        tasks running, and every Nomad service check of the allocation (C(GET /v1/allocation/<id>/checks))
        passing with a result newer than the restart. Nomad's deployment health is set once and never reset by
        an in-place restart, so a verdict from before the restart is not trusted.
      - On timeout the allocation's error names the checks that do not pass, with their output.
    type: str
    choices: [running, healthy]
  wait_timeout:
    description:
      - Seconds to wait for each allocation when O(wait=true) or O(wait_for) is set.
    type: int
    default: 300
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.selector
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_PREDICT_DIFF
notes:
  - In check mode every selected allocation is read and the task is validated, so unknown or stopped tasks are
    reported exactly as in a real run, but nothing is restarted.
  - Restarting needs the C(alloc-lifecycle) capability in the namespace of each allocation.
  - A restart request is never sent twice. If the connection breaks after it may have reached Nomad, that
    allocation is reported as failed.
  - To restart a job's allocations in batches gated on health, use the
    R(nomadops.nomad.alloc_rolling_restart,ansible_collections.nomadops.nomad.alloc_rolling_restart_role) role.
seealso:
  - module: nomadops.nomad.nomad_alloc_signal
  - module: nomadops.nomad.nomad_alloc_stop
  - name: Restart Allocation API
    description: The Nomad API this module calls.
    link: https://developer.hashicorp.com/nomad/api-docs/allocations#restart-allocation
"""

EXAMPLES = r"""
- name: Restart job web, then list tasks that have restarted more than three times with their last event
  nomadops.nomad.nomad_alloc_restart:
    job: web
    client_status: [running]
  register: restarted_web

- name: Tasks that restart too often
  ansible.builtin.debug:
    msg: "{{ restarted_web.summary | map(attribute='tasks') | flatten | selectattr('restarts', 'gt', 3) }}"

- name: Restart the server task of every running allocation of job web, two at a time, each until it runs again
  nomadops.nomad.nomad_alloc_restart:
    job: web
    client_status: [running]
    task: server
    parallelism: 2
    wait: true
    wait_timeout: 120

- name: Restart web one allocation at a time, each until its service checks pass again
  nomadops.nomad.nomad_alloc_restart:
    job: web
    client_status: [running]
    parallelism: 1
    wait_for: healthy
    wait_timeout: 120

- name: Restart all tasks of one allocation, including its prestart task
  nomadops.nomad.nomad_alloc_restart:
    id: 5a22
    all_tasks: true
  register: restarted

- name: Show which tasks were restarted
  ansible.builtin.debug:
    msg: "{{ restarted.allocations | map(attribute='tasks') | list }}"

- name: Check that every allocation of job web has a running server task, without restarting anything
  nomadops.nomad.nomad_alloc_restart:
    job: web
    task: server
  check_mode: true

# Ad-hoc, with NOMAD_ADDR / NOMAD_TOKEN taken from the environment:
#   ansible localhost -m nomadops.nomad.nomad_alloc_restart -a 'id=5a22 task=server wait=true'
#   ansible localhost -m nomadops.nomad.nomad_alloc_restart -a 'job=web all_tasks=true'
"""

RETURN = r"""
summary:
  description:
    - One short entry per selected allocation, in selection order, read before acting; with O(wait) or O(wait_for), the
      state the wait observed after acting instead (for example the new restart count and last event).
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
      description: Whether this allocation was restarted (in check mode, would be).
      type: bool
      sample: true
    tasks:
      description: The tasks that were restarted (in check mode, would be restarted).
      type: list
      elements: str
      sample: [server]
    skipped_reason:
      description: Why the allocation was left alone (it has finished).
      type: str
      returned: when the allocation was skipped
      sample: "allocation is terminal (ClientStatus complete); its tasks no longer run"
    error:
      description:
        - Why restarting this allocation failed, or why it did not run again (or was not healthy) within
          O(wait_timeout).
      type: str
      returned: when the allocation failed
      sample: 'restarted, but not healthy within 60s: check "ready" failure: nomad: http status 503'
  sample:
    - ID: 5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10
      Name: web.frontend[0]
      JobID: web
      Namespace: default
      TaskGroup: frontend
      changed: true
      tasks: [server]
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_ARGUMENT_SPEC, selector_of
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.results import OBSERVED, finish_action, shape_results
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.lifecycle import (
    refuse_explicit_skip,
    input_problem,
    restart_allocation,
    run_bulk,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import (
    NomadAnsibleModule,
    run_with_nomad_errors,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import select

ARGUMENT_SPEC = dict(
    SELECTOR_ARGUMENT_SPEC,
    task=dict(type="str"),
    all_tasks=dict(type="bool", default=False),
    parallelism=dict(type="int", default=10),
    wait=dict(type="bool", default=False),
    wait_for=dict(type="str", choices=["running", "healthy"]),
    wait_timeout=dict(type="int", default=300),
)


def wait_condition(params):
    """`running`/`healthy` when restart should wait, else None (wait=true alone means running)."""
    return params["wait_for"] or ("running" if params["wait"] else None)


def task_choice_problem(params):
    # Not AnsibleModule's mutually_exclusive: that would also refuse an explicit all_tasks=false next to task.
    if params["task"] and params["all_tasks"]:
        return (
            "task and all_tasks are mutually exclusive: set task to restart one task, "
            "or all_tasks=true to restart every task"
        )
    return None


def restart(module):
    params = module.params
    client = module.client(pool_size=params["parallelism"])
    selector = selector_of(module.params)
    selection = select(client, selector, acting=True)
    allocations, selection_filter, explicit = selection.allocations, selection.filter, selection.explicit_ids
    observed = {}  # what each wait saw after the restart: the summary and the diff's after side show it

    def restart_one(allocation):
        value = restart_allocation(
            client,
            allocation,
            task=params["task"],
            all_tasks=params["all_tasks"],
            check_mode=module.check_mode,
            wait=wait_condition(params),
            wait_timeout=params["wait_timeout"],
        )
        if OBSERVED in value:
            observed[allocation["ID"]] = value[OBSERVED]
        return refuse_explicit_skip(value, allocation, explicit, "restart")

    results = shape_results(run_bulk(allocations, restart_one, params["parallelism"]))
    finish_action(module, "restart", allocations, results, selection_filter, observed=observed)


def main():
    module = NomadAnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    problem = task_choice_problem(module.params) or input_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    run_with_nomad_errors(module, lambda: restart(module))


if __name__ == "__main__":
    main()
