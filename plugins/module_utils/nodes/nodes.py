# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Client nodes: one node by name, full ID or unique ID prefix (the selector's node resolution), lists by
prefix and bexpr filter, and each node's allocation summaries (nomad_node_info, nomad_node)."""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import SelectionNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import (
    NODES_PATH,
    AmbiguousNodePrefixError,
    bexpr_quote,
    is_full_uuid,
    resolve_node_id,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import summarize
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id

NODE_INFO_ARGUMENT_SPEC = dict(
    node=dict(type="str"),
    prefix=dict(type="str"),
    filter=dict(type="str"),
    datacenter=dict(type="str"),
    node_pool=dict(type="str"),
    node_class=dict(type="str"),
    status=dict(type="list", elements="str"),
    eligible=dict(type="bool"),
    allocations=dict(type="bool", default=False),
    fields=dict(type="list", elements="str"),
)
NODE_INFO_MUTUALLY_EXCLUSIVE = [["node", key] for key in
                                ("prefix", "filter", "datacenter", "node_pool", "node_class", "status", "eligible")]
NODE_FACTS = ("ID", "Name", "Status", "SchedulingEligibility", "DrainStrategy", "LastDrain")
NO_NAMESPACE = {"namespace": None}


def node_path(node_id, suffix=""):
    return f"/v1/node/{quote(node_id, safe='')}{suffix}"


def read_node(client, node_id):
    """(the full node, its X-Nomad-Index) or (None, None) when Nomad does not know the ID."""
    try:
        response = client.read(node_path(node_id), NO_NAMESPACE)
    except NomadNotFoundError:
        return None, None
    return response.data, response.index


def find_node(client, node):
    """The full node that `node` names (name, full ID or unique ID prefix, like `nomad node status`), or None.

    Several nodes answering to the same name, or to the same ID prefix, raise AmbiguousNodePrefixError
    listing them."""
    text = str(node).strip()
    if is_full_uuid(text):
        return read_node(client, text.lower())[0]
    node_id = resolve_node_id(client, text)
    if node_id is None:
        named = client.read(NODES_PATH, {"filter": f"Name == {bexpr_quote(text)}", "namespace": None}).data or []
        if len(named) > 1:
            shown = ", ".join(f"{short_id(stub.get('ID', ''))} ({stub.get('Name')})" for stub in named)
            raise AmbiguousNodePrefixError(f'node name "{text}" matched {len(named)} nodes at '
                                           f"{client.options.address}: {shown} (give the node ID)",
                                           address=client.options.address)
        if not named:
            return None
        node_id = named[0]["ID"]
    return read_node(client, node_id)[0]


def require_node(client, node):
    """find_node(), failing with one line when the node does not exist."""
    found = find_node(client, node)
    if found is None:
        raise SelectionNotFoundError(f'node "{node}" not found at {client.options.address}')
    return found


def node_facts(node):
    """What nomad_node returns about a node."""
    return {key: node.get(key) for key in NODE_FACTS}


def list_filter(params):
    """The bexpr of nomad_node_info's list options (the user's `filter` and the named fields, all ANDed)."""
    clauses = [f"({params['filter']})"] if params.get("filter") else []
    for option, field in (("datacenter", "Datacenter"), ("node_pool", "NodePool"), ("node_class", "NodeClass")):
        if params.get(option) is not None:
            clauses.append(f"{field} == {bexpr_quote(params[option])}")
    if params.get("status"):
        clauses.append("(" + " or ".join(f"Status == {bexpr_quote(status)}" for status in params["status"]) + ")")
    if params.get("eligible") is not None:
        wanted = "eligible" if params["eligible"] else "ineligible"
        clauses.append(f"SchedulingEligibility == {bexpr_quote(wanted)}")
    return " and ".join(clauses) or None


def list_nodes(client, params):
    """Node stubs (NodeListStub) narrowed by `prefix` and the list options, in Nomad's order."""
    query = dict(NO_NAMESPACE)
    if params.get("prefix"):
        query["prefix"] = params["prefix"]
    expression = list_filter(params)
    if expression:
        query["filter"] = expression
    return list(client.read(NODES_PATH, query).data or [])


def node_allocations(client, node_id, index=None, wait=None):
    """(the node's allocations, full objects with their job, and the X-Nomad-Index); a blocking query with index."""
    path = node_path(node_id, "/allocations")
    if index is None:
        response = client.read(path, NO_NAMESPACE)
    else:
        response = client.blocking_read(path, NO_NAMESPACE, index, wait)
    return list(response.data or []), response.index


def attach_allocations(client, nodes):
    """Add `Allocations` (summaries, see allocations/summary.summarize) to each node."""
    for node in nodes:
        node["Allocations"] = summarize(node_allocations(client, node["ID"])[0])
    return nodes
