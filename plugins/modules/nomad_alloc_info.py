#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_info
short_description: List or read Nomad allocations, optionally waiting for a condition
version_added: 0.1.0
description:
  - Lists the allocations that match a selector (one server-side filter, all pages), or reads allocations by ID or
    unique ID prefix.
  - Returns list stubs for a selector and full allocation objects when O(id) is given.
  - Never fails because nothing matched; it returns an empty list. When the O(namespace), O(job) or O(node) given
    does not exist, it also warns, naming it and the address (checked only when nothing matched).
  - Every result has a readable C(summary) (one short entry per allocation) and the C(filter) expression sent.
  - Can attach each allocation's Nomad services, and can wait (with Nomad's blocking queries) until the selected
    allocations are running, healthy, terminal or gone.
author:
  - nomadops.nomad developers (@nomadops)
options:
  per_page:
    description:
      - Page size for listing. Pages are followed transparently, so this only changes how many requests are made.
      - Unset means Nomad returns everything in one answer. At most 2147483647 (Nomad reads it as a 32-bit number).
    type: int
  limit:
    description:
      - Return at most this many allocations (stops listing early).
    type: int
  reverse:
    description:
      - List in reverse order (newest first when listing a namespace, descending IDs with O(prefix)).
    type: bool
    default: false
  resources:
    description:
      - Include C(AllocatedResources) in the list stubs. Full objects (O(id) given) always include them.
    type: bool
    default: false
  task_states:
    description:
      - Include C(TaskStates) in the list stubs. Set to V(false) to make large listings smaller.
        Full objects (O(id) given) always include them.
    type: bool
    default: true
  services:
    description:
      - Attach the Nomad-native services of each allocation (C(GET /v1/allocation/<id>/services) in the allocation's
        namespace) under the key C(Services) of each returned allocation.
      - Services registered in Consul are not returned by Nomad's API and are not included.
    type: bool
    default: false
  checks:
    description:
      - Attach the results of each allocation's Nomad service checks (C(GET /v1/allocation/<id>/checks) in the
        allocation's namespace) under the key C(Checks) of each returned allocation, as Nomad returns them - a
        dict keyed by check ID of C(Check), C(Service), C(Group), C(Task), C(Mode) (C(healthiness) or
        C(readiness)), C(Status) (C(success), C(failure) or C(pending)), C(StatusCode), C(Output) and
        C(Timestamp) (Unix seconds).
      - An allocation without Nomad-provider checks (or one being stopped) gets an empty dict. Checks of services
        registered in Consul are not reported by Nomad's API.
    type: bool
    default: false
  wait_for:
    description:
      - Wait until the selected allocations reach this condition, using Nomad blocking queries (no polling sleeps).
      - V(running) - at least one selected allocation should run, and every one that should run has client status
        C(running).
      - V(healthy) - as V(running), and each is healthy - all its tasks running (a finished prestart, poststart
        or poststop task is fine), Nomad's deployment health C(true) where Nomad tracks it, and every Nomad
        service check of the allocation (C(GET /v1/allocation/<id>/checks), healthiness and readiness checks)
        passing with a result newer than the latest start or restart of its tasks.
      - Nomad never resets an allocation's deployment health after an in-place restart, so a deployment health
        verdict older than the latest task (re)start is not trusted; the task states and the checks decide.
      - Check results are not part of Nomad's blocking queries, so while the wait waits for a check it re-reads
        at least every 2 seconds.
      - For V(running) and V(healthy), an allocation that failed or was lost while Nomad still wants it to run
        (desired status C(run)) and that has no replacement yet (no C(NextAllocation)) keeps the wait going; on
        timeout the message names it, and names every failing check with its output. Allocations that should not
        run any more (stopped, or replaced) are not waited for.
      - V(terminal) - every selected allocation has finished (client status C(complete), C(failed) or C(lost)).
      - V(absent) - no allocation matches the selector any more (for example after C(client_status=[running])
        allocations were stopped, or after garbage collection).
      - The module fails when O(wait_timeout) passes first, reporting what it last saw.
      - With O(id), waiting for V(running) or V(healthy) fails at once when one of those allocations failed, or
        none of them should run any more, since they can never run again (a replacement has another ID); a
        selector such as O(job) keeps waiting, because Nomad may place replacement allocations.
    type: str
    choices: [running, healthy, terminal, absent]
  wait_timeout:
    description:
      - Seconds to wait for O(wait_for).
    type: int
    default: 300
  fields:
    description:
      - Keep only these keys of each returned allocation (for example V([ID, Name, ClientStatus])), applied before
        the result is returned, so large job specs never reach the output.
      - A name that is no key of any returned allocation gives a warning (field names are Go names, case-sensitive).
      - C(summary) is built before the fields are applied, so it is always complete. For a large listing that
        does not read it, set O(summary=false) as well.
    type: list
    elements: str
  summary:
    description:
      - Build the readable C(summary) of the returned allocations.
      - V(false) leaves C(summary) out of the result. A large listing then returns (and Ansible encodes,
        decodes, copies and registers) only the allocations themselves; with O(fields) the summary of five-key
        allocations would otherwise be more values than the allocations.
      - O(fields) does not change the summary (it is built before the fields are applied), so a play that keeps
        a few keys still reads complete summaries; leaving it out is this explicit choice.
    type: bool
    default: true
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.selector
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_READ_ONLY
notes:
  - The same data is available in templates and loops through the P(nomadops.nomad.nomad_alloc#lookup) lookup.
  - Large listings cost time per returned value, and most of it is Ansible's (the module's result is encoded,
    decoded, copied for the callbacks and registered), not Nomad's. For thousands of allocations, narrow on the
    server first (O(job), O(client_status), O(node), O(filter)), then keep only the keys the play uses with
    O(fields), O(task_states=false) and O(summary=false); for a listing that only feeds a loop or a template, the lookup skips the
    module process altogether. BENCHMARKS.md in the collection's repository has the measurements.
seealso:
  - plugin: nomadops.nomad.nomad_alloc
    plugin_type: lookup
  - name: Nomad allocations API
    description: The HTTP API this module reads.
    link: https://developer.hashicorp.com/nomad/api-docs/allocations
"""

EXAMPLES = r"""
- name: List the running allocations of job web
  nomadops.nomad.nomad_alloc_info:
    job: web
    client_status: [running]
  register: web

- name: Show their IDs and nodes
  ansible.builtin.debug:
    msg: "{{ web.allocations | map(attribute='ID') | zip(web.allocations | map(attribute='NodeName')) }}"

- name: Read one allocation by a short ID prefix, with its services
  nomadops.nomad.nomad_alloc_info:
    id: 5a22
    services: true
  register: one

- name: Every failed allocation in every namespace, with a raw filter
  nomadops.nomad.nomad_alloc_info:
    namespace: "*"
    client_status: [failed]
    filter: 'Job.Type == "service"'

- name: Only the keys needed, and a readable summary of each allocation
  nomadops.nomad.nomad_alloc_info:
    job: web
    fields: [ID, Name, NodeName, ClientStatus]
  register: web_short

- name: Ten thousand allocations, two keys each, without the summary that nothing reads
  nomadops.nomad.nomad_alloc_info:
    namespace: "*"
    fields: [ID, NodeName]
    task_states: false
    summary: false
  register: everything

- name: Tasks of job web that restarted more than twice, with their last event
  ansible.builtin.debug:
    msg: "{{ web_short.summary | map(attribute='tasks') | flatten | selectattr('restarts', 'gt', 2) }}"

- name: Allocations on a node given by a unique node ID prefix, like nomad node status
  nomadops.nomad.nomad_alloc_info:
    node: 4f2a81c9

- name: Wait until every allocation of web is healthy (tasks running, service checks passing)
  nomadops.nomad.nomad_alloc_info:
    job: web
    wait_for: healthy
    wait_timeout: 120

- name: Read the service check results of job web
  nomadops.nomad.nomad_alloc_info:
    job: web
    client_status: [running]
    checks: true
  register: web_checks

- name: Show the checks that do not pass (Group is the allocation's name)
  ansible.builtin.debug:
    msg: "{{ item.Group }}: check {{ item.Check }} is {{ item.Status }} ({{ item.Output }})"
  loop: >-
    {{ web_checks.allocations | map(attribute='Checks') | map('dict2items') | flatten
       | map(attribute='value') | rejectattr('Status', 'equalto', 'success') | list }}

- name: Connection settings for all nomadops.nomad modules at once
  module_defaults:
    group/nomadops.nomad.nomad:
      address: https://nomad.example.com:4646
      ca_cert: /etc/nomad.d/ca.pem
      token: "{{ nomad_token }}"
  block:
    - name: List allocations on one node
      nomadops.nomad.nomad_alloc_info:
        node: node-1

# Ad-hoc, with NOMAD_ADDR / NOMAD_TOKEN taken from the environment:
#   ansible localhost -m nomadops.nomad.nomad_alloc_info -a 'job=web'
#   ansible localhost -m nomadops.nomad.nomad_alloc_info -a 'id=5a22 services=true'
"""

RETURN = r"""
allocations:
  description:
    - The selected allocations, as Nomad returns them (Go field names).
    - List stubs (C(GET /v1/allocations)) for a selector; full allocation objects (C(GET /v1/allocation/<id>)) when
      O(id) is given. Missing keys mean zero values, as in Nomad's own JSON.
    - With O(services=true), each has a C(Services) list.
    - With O(checks=true), each has a C(Checks) dict (check ID to result, see O(checks)).
    - With O(fields), only those keys. When the module fails (a O(wait_for) that timed out), the job spec
      (C(Job)) is left out of each allocation.
  returned: always
  type: list
  elements: dict
  sample:
    - ID: 5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10
      Name: web.frontend[0]
      Namespace: default
      JobID: web
      TaskGroup: frontend
      NodeID: 0b7e2c1a-8d0e-4c1e-9d7e-2f1f6a3b4c5d
      NodeName: node-1
      DesiredStatus: run
      ClientStatus: running
      CreateIndex: 12
      ModifyIndex: 15
count:
  description: Number of allocations returned.
  returned: always
  type: int
  sample: 3
index:
  description:
    - Nomad's C(X-Nomad-Index) of the last read (the allocations table index), usable for your own blocking queries.
    - Null when nothing was read from a list endpoint.
  returned: always
  type: int
  sample: 1042
summary:
  description:
    - One short entry per returned allocation, in order, built before O(fields) is applied.
    - Not returned with O(summary=false).
    - Each has C(id) (short ID), C(name), C(node), C(client_status), C(desired_status), C(health) (C(healthy),
      C(unhealthy) or null when Nomad tracks no deployment health), C(modified) and C(tasks).
    - C(tasks) is a list (sorted by name) of C(task), C(state), C(failed), C(restarts), C(last_event)
      (event type, a colon and its message) and C(last_event_time) (ISO 8601, UTC).
  returned: unless O(summary=false)
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
          restarts: 0
          last_event: "Started: Task started by client"
          last_event_time: "2024-05-01T12:00:02Z"
filter:
  description:
    - The server-side filter expression the selector became (sent as C(filter) to C(GET /v1/allocations)), or null
      when none was needed (only O(id) given).
  returned: always
  type: str
  sample: 'JobID == "web" and (ClientStatus == "running")'
waited:
  description: Seconds spent waiting for O(wait_for).
  returned: when O(wait_for) is set
  type: float
  sample: 4.2
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.reads import (
    LIST_ARGUMENT_SPEC,
    read_selection,
    wait_for_allocations,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule, run_with_nomad_errors
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import (
    ListOptions,
    explain_empty_selection,
    select,
    sent_filter,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_ARGUMENT_SPEC, resolve_node_selector, selector_of
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import keep_fields, summarize, without_job
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.health import WAIT_CONDITIONS

ARGUMENT_SPEC = dict(
    SELECTOR_ARGUMENT_SPEC,
    **LIST_ARGUMENT_SPEC,
    checks=dict(type="bool", default=False),
    wait_for=dict(type="str", choices=list(WAIT_CONDITIONS)),
    wait_timeout=dict(type="int", default=300),
    fields=dict(type="list", elements="str"),
    summary=dict(type="bool", default=True),
)


def readable_facts(module, allocations, selection_filter, why_empty=None, failed=False):
    """`allocations` (only `fields`; without job specs when failing), `summary` (unless `summary: false`) and
    `filter`, and a warning naming the missing job, namespace or node when nothing matched (`why_empty`)."""
    if not allocations and why_empty:
        module.warn(why_empty)
    kept, unknown = keep_fields(without_job(allocations) if failed else allocations, module.params["fields"])
    if unknown:
        module.warn(f"fields {', '.join(unknown)} name no key of the returned allocations")
    facts = dict(allocations=kept, count=len(kept), filter=selection_filter)
    if module.params["summary"]:
        facts["summary"] = summarize(allocations)
    return facts


def list_or_wait(module):
    client = module.client()
    list_options = ListOptions.from_params(module.params)
    condition = module.params["wait_for"]
    if condition is None:
        selection = select(client, selector_of(module.params), list_options)
        allocations, index = read_selection(client, selection, services=module.params["services"],
                                            checks=module.params["checks"])
        why_empty = selection.why_empty
        if not allocations and selection.allocations:  # garbage-collected between the listing and the reads
            why_empty = explain_empty_selection(client, selection.selector)
        facts = readable_facts(module, allocations, selection.filter, why_empty)
        listings = {key: facts.pop(key) for key in ("allocations", "summary") if key in facts}
        module.exit_json_with_listings(listings, changed=False, index=index, **facts)

    timeout = module.params["wait_timeout"]
    if timeout < 0:
        module.fail_json(msg=f"wait_timeout must be 0 or more seconds (got {timeout})")
    selector = resolve_node_selector(client, selector_of(module.params))  # the wait lists again each round: resolve once
    outcome = wait_for_allocations(client, selector, list_options, condition, timeout,
                                   services=module.params["services"], checks=module.params["checks"])
    facts = dict(index=outcome.index, waited=round(outcome.waited, 3))
    why_empty = None
    if not outcome.value and condition != "absent":
        why_empty = explain_empty_selection(client, selector)
    facts.update(readable_facts(module, outcome.value, sent_filter(selector), why_empty, failed=not outcome.met))
    if not outcome.met:
        progress = outcome.progress
        if outcome.hopeless:
            message = f"the allocations can no longer become {condition}: {progress}"
        else:
            message = f"timed out after {timeout} s waiting for the allocations to be {condition}: {progress}"
        module.fail_json(msg=message, **facts)
    module.exit_json(changed=False, **facts)


def main():
    module = NomadAnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_with_nomad_errors(module, lambda: list_or_wait(module))


if __name__ == "__main__":
    main()
