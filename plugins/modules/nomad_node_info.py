#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_node_info
short_description: Read Nomad client nodes - one by name or ID, or a list - with their allocations
version_added: 0.1.0
description:
  - With O(node), the node of that name, full ID or unique ID prefix (C(GET /v1/node/<id>), the full node); otherwise
    the nodes (C(GET /v1/nodes), node stubs), narrowed by O(prefix), O(filter) and the named fields. Every node is
    listed unless a filter says otherwise - there is no default status filter.
  - A named node that does not exist is not an error - RV(nodes) is empty and a warning names the node.
  - With O(allocations=true), each node gets C(Allocations) - the summaries of its allocations.
author:
  - nomadops.nomad developers (@nomadops)
options:
  node:
    description:
      - The node's name, full ID or a unique ID prefix. Several nodes that answer to it fail the task, listing them.
    type: str
  status:
    description: Only nodes with one of these statuses (V(ready), V(down), V(initializing), V(disconnected)).
    type: list
    elements: str
  eligible:
    description: Only nodes that are (V(true)) or are not (V(false)) eligible for scheduling.
    type: bool
  allocations:
    description:
      - Attach C(Allocations) to each node - the summary of each of its allocations (ID, name, client and desired
        status, health, tasks), like the C(summary) of the allocation modules.
    type: bool
    default: false
  fields:
    description:
      - Keep only these keys of each node (applied after C(Allocations) is attached); an unknown key is warned about.
    type: list
    elements: str
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.node_selector
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_READ_ONLY
notes:
  - Needs C(node:read); O(allocations) also needs C(read-job) in the namespaces of the allocations.
seealso:
  - module: nomadops.nomad.nomad_node
  - name: Nodes HTTP API
    description: The Nomad API this module reads.
    link: https://developer.hashicorp.com/nomad/api-docs/nodes
"""

EXAMPLES = r"""
- name: Read one node with its allocations
  nomadops.nomad.nomad_node_info:
    node: worker-1
    allocations: true
  register: worker

- name: Show what runs there
  ansible.builtin.debug:
    msg: "{{ worker.nodes[0].Allocations | map(attribute='name') | list if worker.nodes else 'no such node' }}"

- name: Ready, eligible nodes of rack r1, only ID, name and status
  nomadops.nomad.nomad_node_info:
    filter: Meta.rack == "r1"
    status: [ready]
    eligible: true
    fields: [ID, Name, Status]

- name: Nodes that are still draining
  nomadops.nomad.nomad_node_info:
    filter: Drain == true
"""

RETURN = r"""
nodes:
  description:
    - The nodes - the full node for O(node), node stubs for a list - with C(Allocations) when asked.
  returned: always
  type: list
  elements: dict
  sample: [{"ID": "aaaa0000-0000-4000-8000-00000000000a", "Name": "worker-1", "Datacenter": "dc1", "NodePool": "default",
            "Status": "ready", "SchedulingEligibility": "eligible", "Drain": false,
            "Allocations": [{"id": "5e2f9a1c", "name": "web.app[0]", "node": "worker-1", "client_status": "running",
                             "desired_status": "run", "health": "healthy", "modified": "2026-01-01T10:00:00Z",
                             "tasks": []}]}]
count:
  description: How many nodes RV(nodes) holds.
  returned: always
  type: int
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule, run_with_nomad_errors
from ansible_collections.nomadops.nomad.plugins.module_utils.nodes.nodes import (
    NODE_INFO_ARGUMENT_SPEC,
    NODE_INFO_MUTUALLY_EXCLUSIVE,
    attach_allocations,
    find_node,
    list_nodes,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import keep_fields


def read_nodes(module):
    params = module.params
    with module.client(pool_size=4) as client:
        if params["node"] is not None:
            node = find_node(client, params["node"])
            nodes = [node] if node else []
            if not node:
                module.warn(f'node "{params["node"]}" not found at {client.options.address}')
        else:
            nodes = list_nodes(client, params)
        if params["allocations"]:
            attach_allocations(client, nodes)
    nodes, unknown = keep_fields(nodes, params["fields"])
    if unknown:
        module.warn(f"fields names keys no node has: {', '.join(unknown)}")
    module.exit_json_with_listings({"nodes": nodes}, changed=False, count=len(nodes))


def main():
    module = NomadAnsibleModule(argument_spec=NODE_INFO_ARGUMENT_SPEC, mutually_exclusive=NODE_INFO_MUTUALLY_EXCLUSIVE,
                                supports_check_mode=True)
    run_with_nomad_errors(module, lambda: read_nodes(module))


if __name__ == "__main__":
    main()
