#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_node
short_description: Drain a Nomad client node, cancel its drain, or set its scheduling eligibility
version_added: 0.1.0
description:
  - Drains a client node (C(POST /v1/node/<id>/drain), like C(nomad node drain -enable)) and waits until Nomad reports
    the drain complete, optionally until the replacements of the moved allocations are healthy; cancels a drain; marks
    a node eligible or ineligible for scheduling (C(nomad node eligibility)).
  - Idempotent - a node already draining with the same spec, or ineligible with nothing left that the drain would
    move, is V(ok); so is a node that already has the eligibility asked for.
  - Runs on the controller (an action); with C(-v) the wait reports how many allocations are left on the node.
  - A completed drain leaves the node ineligible (Nomad's rule). O(drain=false) cancels a drain and makes the node
    eligible again, also after a drain that completed or was cancelled, unless O(keep_ineligible=true).
author:
  - nomadops.nomad developers (@nomadops)
options:
  node:
    description:
      - The node's name, full ID or a unique ID prefix. Several nodes that answer to it fail the task, listing them.
    type: str
    required: true
  eligible:
    description:
      - Whether the node should be eligible for new placements. Nomad refuses to make a draining node eligible -
        cancel the drain with O(drain=false) instead.
    type: bool
  drain:
    description:
      - V(true) drains the node - its allocations move to other nodes, by each group's C(migrate) block, and the
        node becomes ineligible. V(false) cancels a drain.
    type: bool
  drain_deadline:
    description:
      - Seconds after which Nomad stops whatever is still on the node. Like the CLI, 3600 when not given. Must be
        more than 0.
    type: int
  drain_force:
    description: Stop every allocation at once (no migration in turn), like C(nomad node drain -force).
    type: bool
    default: false
  drain_no_deadline:
    description: Drain without a deadline (batch allocations may keep the drain going for a long time).
    type: bool
    default: false
  ignore_system_jobs:
    description: Leave the allocations of system jobs on the node.
    type: bool
    default: false
  drain_message:
    description: A message stored with the drain (its meta C(message), like C(nomad node drain -m)).
    type: str
  keep_ineligible:
    description: With O(drain=false), leave the node ineligible.
    type: bool
    default: false
  wait:
    description:
      - Wait until Nomad reports the drain complete (blocking queries on the node). Defaults to V(true) for
        O(drain=true).
    type: bool
  wait_for:
    description:
      - V(complete) - the drain is complete; V(healthy) - also every replacement of a moved allocation is healthy
        (the health of M(nomadops.nomad.nomad_alloc_info)'s C(wait_for=healthy)).
    type: str
    choices: [complete, healthy]
    default: complete
  wait_timeout:
    description:
      - Seconds to wait. Defaults to the drain deadline plus 300 (300 with O(drain_force), 3600 with
        O(drain_no_deadline)).
    type: int
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details: Nothing is sent; RV(allocations) lists the allocations the drain would move.
  diff_mode:
    support: none
notes:
  - Needs C(node:write) (and C(read-job) in the namespaces of the allocations to report them).
  - A drain that hits its deadline marks in RV(allocations) the allocations it force-stopped (C(forced)) and warns
    naming them.
  - The drain spec compared for idempotence is the deadline (or force, or none) and O(ignore_system_jobs); a different
    O(drain_message) alone does not update a running drain.
seealso:
  - module: nomadops.nomad.nomad_node_info
  - name: Node drain
    description: How Nomad drains nodes and migrates allocations.
    link: https://developer.hashicorp.com/nomad/docs/manage/migrate-workloads
"""

EXAMPLES = r"""
- name: Drain worker-1, at most 30 minutes, until every moved allocation runs healthy elsewhere
  nomadops.nomad.nomad_node:
    node: worker-1
    drain: true
    drain_deadline: 1800
    drain_message: kernel update
    wait_for: healthy
  register: drained

- name: Show where the allocations went
  ansible.builtin.debug:
    msg: "{{ drained.allocations | map(attribute='replacement.node') | list }}"

- name: Back in service after the maintenance
  nomadops.nomad.nomad_node:
    node: worker-1
    drain: false

- name: Stop new placements on a node without moving anything
  nomadops.nomad.nomad_node:
    node: 5e2f9a1c
    eligible: false
"""

RETURN = r"""
node:
  description: The node after the change (and the wait).
  returned: always
  type: dict
  sample: {"ID": "aaaa0000-0000-4000-8000-00000000000a", "Name": "worker-1", "Status": "ready",
           "SchedulingEligibility": "ineligible", "DrainStrategy": null,
           "LastDrain": {"Status": "complete", "StartedAt": "2026-01-01T10:00:00Z", "UpdatedAt": "2026-01-01T10:02:00Z",
                         "AccessorID": "token:acls-disabled", "Meta": {"message": "kernel update"}}}
allocations:
  description:
    - The allocations the drain moved (in check mode, would move) - each allocation's summary, its full C(id), its
      C(replacement) (C(id), C(node), C(client_status), C(healthy); null when none was placed) and, when the drain hit
      its deadline, C(forced).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "5e2f9a1c-0000-4000-8000-000000000001", "name": "web.app[0]", "client_status": "complete",
            "desired_status": "stop", "replacement": {"id": "9b1d0c2e-0000-4000-8000-000000000002", "node": "worker-2",
                                                    "client_status": "running", "healthy": true}}]
"""
