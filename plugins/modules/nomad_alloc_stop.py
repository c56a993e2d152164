#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_stop
short_description: Stop Nomad allocations so that Nomad reschedules them
version_added: 0.1.0
description:
  - Stops the allocations that match a selector, or the allocations given by ID or unique ID prefix
    (C(POST /v1/allocation/<id>/stop), like C(nomad alloc stop)).
  - Nomad then stops the tasks and, for service jobs, places a replacement allocation (linked through
    C(NextAllocation)/C(PreviousAllocation)). System jobs get no replacement.
  - For batch jobs the module asks Nomad to reschedule the allocation (C(reschedule=true)), as C(nomad alloc stop)
    does since Nomad 1.11, so that Nomad 1.11 places a replacement. Nomad 1.10 ignores the parameter; there a
    stopped batch allocation ends C(failed) and the job's reschedule policy decides (1.10.3 and later). Before
    1.10.3 a stopped batch allocation ends C(complete) and is not replaced.
  - Idempotent, although Nomad itself is not - it accepts a stop for an allocation that is already stopped and
    creates a new evaluation. This module skips allocations whose desired status is already C(stop) or C(evict)
    or whose client status is C(complete), C(failed) or C(lost), and reports them with C(skipped_reason) and
    C(changed=false).
  - Many allocations are stopped concurrently (O(parallelism)) over one pooled HTTP connection set. Every
    allocation gets its own result. When some fail, the others are still stopped, and the task fails with a
    message that names every failed allocation and the reason. The per-allocation results are returned as well.
  - Refuses to run without any selector option, which would stop every allocation in the namespace.
  - A selector that names a O(job), O(namespace) or O(node) that does not exist fails with one line naming it and
    the address, before anything is sent (checked only when nothing matched). A selector whose job, namespace and
    node exist but that matches no allocation is not an error; the task reports no change and says so in C(msg).
    An O(id) that matches no allocation is an error, before anything is sent.
author:
  - nomadops.nomad developers (@nomadops)
options:
  no_shutdown_delay:
    description:
      - Skip the task group's and tasks' C(shutdown_delay) (Nomad's C(no_shutdown_delay) parameter, like
        C(nomad alloc stop -no-shutdown-delay)).
    type: bool
    default: false
  parallelism:
    description:
      - How many allocations are stopped at the same time. Must be at least 1.
    type: int
    default: 10
  wait:
    description:
      - Wait until every allocation this task stopped has finished (client status C(complete), C(failed) or
        C(lost), or garbage-collected), using Nomad blocking queries on the allocation list (no polling sleeps).
      - It does not wait for the replacement allocations; use M(nomadops.nomad.nomad_alloc_info) with
        O(nomadops.nomad.nomad_alloc_info#module:wait_for=healthy) for that.
      - An allocation still running after O(wait_timeout) counts as a failure (it was stopped, so it is still
        reported with C(changed=true)).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait when O(wait=true).
    type: int
    default: 300
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.selector
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_PREDICT_DIFF
notes:
  - A selector such as O(job) also matches the replacement allocations Nomad placed after an earlier stop, so running
    the same task again stops those. For a repeatable "stop exactly these" task select by O(id), or add
    O(client_status) or O(filter) conditions that the replacements do not meet.
  - Stopping needs the C(alloc-lifecycle) capability in the namespace of each allocation; a token without it
    makes every allocation fail with a message naming the capability.
  - Stop requests are never sent twice. If the connection breaks after a stop request may have reached Nomad, that
    allocation is reported as failed (the stop may or may not have happened) instead of being stopped again.
seealso:
  - module: nomadops.nomad.nomad_alloc_restart
  - module: nomadops.nomad.nomad_alloc_info
  - name: Stop Allocation API
    description: The Nomad API this module calls.
    link: https://developer.hashicorp.com/nomad/api-docs/allocations#stop-allocation
"""

EXAMPLES = r"""
- name: Preview which allocations of job web would stop, with node and client status (run with --check --diff)
  nomadops.nomad.nomad_alloc_stop:
    job: web
  check_mode: true
  diff: true
  register: preview

- name: One line per allocation that would stop
  ansible.builtin.debug:
    msg: "{{ preview.summary | map(attribute='name') | zip(preview.summary | map(attribute='node')) }}"

- name: Stop one allocation by a short ID prefix and let Nomad replace it
  nomadops.nomad.nomad_alloc_stop:
    id: 5a22

- name: Stop every running allocation of the cache group of job web, 20 at a time, and wait until they finished
  nomadops.nomad.nomad_alloc_stop:
    job: web
    task_group: cache
    client_status: [running]
    parallelism: 20
    wait: true
    wait_timeout: 120
  register: stopped

- name: Show the evaluations Nomad created for the stops
  ansible.builtin.debug:
    var: stopped.evaluation_ids

- name: Stop the allocations on a node that is being drained, without the shutdown delay
  nomadops.nomad.nomad_alloc_stop:
    node: node-7
    no_shutdown_delay: true

- name: Preview which allocations of job web would be stopped
  nomadops.nomad.nomad_alloc_stop:
    job: web
  check_mode: true
  register: preview

# Ad-hoc, with NOMAD_ADDR / NOMAD_TOKEN taken from the environment:
#   ansible localhost -m nomadops.nomad.nomad_alloc_stop -a 'id=5a22'
#   ansible localhost -m nomadops.nomad.nomad_alloc_stop -a 'job=web wait=true' --check
"""

RETURN = r"""
summary:
  description:
    - One short entry per selected allocation, in selection order, read before acting; with O(wait), the
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
      description: Whether this allocation was stopped (in check mode, whether it would be).
      type: bool
      sample: true
    EvalID:
      description: The evaluation Nomad created for the stop; V(null) in check mode.
      type: str
      returned: when the allocation was stopped or would be stopped
      sample: 8d1c3f2a-6a1d-4f0e-9d2a-3f5e8b7c1a01
    skipped_reason:
      description: Why the allocation was left alone (it is already stopping or finished).
      type: str
      returned: when the allocation was skipped
      sample: already terminal (ClientStatus complete)
    error:
      description: Why stopping this allocation failed (or why it did not finish within O(wait_timeout)).
      type: str
      returned: when the allocation failed
      sample: "Permission denied: the token needs the alloc-lifecycle capability in namespace 'default'"
  sample:
    - ID: 5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10
      Name: web.frontend[0]
      JobID: web
      Namespace: default
      TaskGroup: frontend
      changed: true
      EvalID: 8d1c3f2a-6a1d-4f0e-9d2a-3f5e8b7c1a01
    - ID: 0b7e2c1a-8d0e-4c1e-9d7e-2f1f6a3b4c5d
      Name: web.frontend[1]
      JobID: web
      Namespace: default
      TaskGroup: frontend
      changed: false
      skipped_reason: already terminal (ClientStatus complete)
evaluation_ids:
  description: The evaluations created by the stops, in the order of RV(allocations); empty in check mode.
  returned: always
  type: list
  elements: str
  sample: [8d1c3f2a-6a1d-4f0e-9d2a-3f5e8b7c1a01]
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_ARGUMENT_SPEC, selector_of
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.results import finish_action, shape_results
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.lifecycle import (
    input_problem,
    run_bulk,
    stop_allocation,
    wait_for_stopped,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import (
    NomadAnsibleModule,
    run_with_nomad_errors,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import select

ARGUMENT_SPEC = dict(
    SELECTOR_ARGUMENT_SPEC,
    no_shutdown_delay=dict(type="bool", default=False),
    parallelism=dict(type="int", default=10),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=300),
)


def stop(module):
    params = module.params
    client = module.client(pool_size=params["parallelism"])
    selection = select(client, selector_of(module.params), acting=True)
    allocations, selection_filter = selection.allocations, selection.filter

    def stop_one(allocation):
        return stop_allocation(client, allocation, params["no_shutdown_delay"], module.check_mode)

    results = shape_results(run_bulk(allocations, stop_one, params["parallelism"]))
    observed = {}
    if params["wait"] and not module.check_mode:
        statuses = wait_for_stopped(client, results, params["wait_timeout"])
        observed = {alloc["ID"]: dict(alloc, **statuses[alloc["ID"]]) for alloc in allocations if alloc["ID"] in statuses}
    evaluation_ids = [entry["EvalID"] for entry in results if entry.get("EvalID")]
    finish_action(module, "stop", allocations, results, selection_filter, observed=observed,
                  evaluation_ids=evaluation_ids)


def main():
    module = NomadAnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    problem = input_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    run_with_nomad_errors(module, lambda: stop(module))


if __name__ == "__main__":
    main()
