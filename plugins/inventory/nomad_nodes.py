# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nomad_nodes inventory plugin: Nomad client nodes as Ansible hosts reached over SSH."""

from __future__ import annotations

DOCUMENTATION = r"""
name: nomad_nodes
short_description: Nomad client nodes as inventory hosts, for OS maintenance between a drain and re-enabling
version_added: 0.1.0
description:
  - Lists the client nodes the node selector matches (C(GET /v1/nodes) with one server-side filter), reads each
    one (C(GET /v1/node/:id), for its meta data and attributes) and adds one host per node, grouped by datacenter,
    node pool, node class, status and scheduling eligibility.
  - The hosts are the machines themselves, reached with the play's usual connection (SSH); this plugin never
    sets C(ansible_connection). Use it with M(nomadops.nomad.nomad_node), delegated to the controller, to drain a
    node, work on it and make it eligible again, one node at a time (see the node maintenance playbook in the
    collection's README).
  - The inventory source is a YAML file whose name ends in C(nomad_nodes.yml) or C(nomad_nodes.yaml) and whose
    O(plugin) key is C(nomadops.nomad.nomad_nodes). Other files are left to other inventory plugins.
  - "Host names are the node names, safe in host patterns: every character other than letters, digits, C(_),
    C(.) and C(-) becomes C(_). Two nodes of the same name (Nomad allows it) get the first 8 characters of their
    IDs appended (C(worker-1-5a22c1f3))."
  - "Host variables: C(nomad_node_id), C(nomad_node_name), C(nomad_datacenter), C(nomad_node_pool),
    C(nomad_node_class) (V('') when the node has none), C(nomad_node_status), C(nomad_eligible) and
    C(nomad_draining) (booleans), C(nomad_node_meta) (the node's meta data), C(ansible_host) (see O(address_from)),
    and the non-secret connection options of this source as C(ansible_nomad_address), C(ansible_nomad_region),
    C(ansible_nomad_tls_server_name) (each only when set), C(ansible_nomad_ca_cert), C(ansible_nomad_ca_path),
    C(ansible_nomad_client_cert), C(ansible_nomad_client_key) (only when set in the file, ini or extra
    variables) and C(ansible_nomad_validate_certs) (only when V(false)), so that M(nomadops.nomad.nomad_node)
    tasks run for a host talk to the Nomad agent its node came from."
  - The token and O(http_auth) are never written to hosts, the cache or the output of C(ansible-inventory);
    modules read them from E(NOMAD_TOKEN), a vaulted C(ansible_nomad_token) or their own options.
  - "Default groups: C(nomad_datacenter_<datacenter>), C(nomad_node_pool_<pool>), C(nomad_node_class_<class>)
    (only for nodes that have a class), C(nomad_node_status_<status>), and C(nomad_eligible) or C(nomad_ineligible),
    sanitised like every inventory plugin's group names (see the C(TRANSFORM_INVALID_GROUP_CHARS) setting)."
  - All data read from Nomad is untrusted, so text in a node's meta data or name is never evaluated as a template.
author:
  - nomadops.nomad developers (@nomadops)
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.connection.plugins
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - nomadops.nomad.node_selector
options:
  plugin:
    description: The name of this plugin; must be V(nomadops.nomad.nomad_nodes) for the file to be used.
    type: str
    required: true
    choices: [nomadops.nomad.nomad_nodes]
  status:
    description:
      - Only nodes whose status is one of these. Set it to V([]) to select every status.
      - A node that is C(down) cannot be reached over SSH either, which is why only C(ready) nodes are selected
        by default.
    type: list
    elements: str
    choices: [initializing, ready, down, disconnected]
    default: [ready]
  eligible:
    description:
      - Only nodes that are (V(true)) or are not (V(false)) eligible for scheduling; both when not set.
    type: bool
  address_from:
    description:
      - What C(ansible_host) is set to.
      - V(http_addr) is the host part of the node's HTTP address (C(HTTPAddr), the address its Nomad agent
        advertises), V(name) the node name (for names that resolve, or an SSH config that maps them).
      - Any other value names a node attribute, for example V(unique.network.ip-address) or V(unique.hostname)
        (see C(nomad node status -verbose <node>)). A node without that attribute gets no C(ansible_host)
        (Ansible then connects to the host name) and a warning names it.
    type: str
    default: http_addr
notes:
  - >-
    Connection options come, highest first, from this file, then the Ansible variables C(ansible_nomad_<option>)
    (for an inventory only extra variables, C(-e), exist at this point), then the C([nomadops_nomad]) ini entries,
    then the C(NOMAD_*) environment variables, then the defaults. O(namespace) does not matter here (nodes belong
    to no namespace).
  - Needs a token with C(node:read).
  - >-
    C(ansible-inventory) and C(ansible-playbook) only warn when an inventory source fails and go on with the others,
    printing this plugin's one-line message in that warning. Set E(ANSIBLE_INVENTORY_UNPARSED_FAILED=true) (ini
    C(unparsed_is_failed) in C([inventory])) to make the failure fatal, as AWX does for inventory updates.
  - >-
    With O(cache=true) the nodes (not the hosts) are cached, so changed O(compose), O(groups) or O(keyed_groups)
    apply on a cache hit; a changed selector, O(address_from), address, region, token or http_auth is a cache
    miss (each token has its own cache entry, keyed by a salted hash of it, never the token itself). A refresh
    that fails leaves the cache as it was. C(--flush-cache) forces a refresh. Mind that eligibility and drains
    change quickly: a cached C(nomad_eligible) may be stale.
  - Selecting nothing is not an error; the source then has no hosts and a warning says what was asked.
  - Reading the nodes costs one request per node besides the listing (at most 8 at a time).
seealso:
  - module: nomadops.nomad.nomad_node
  - module: nomadops.nomad.nomad_node_info
  - plugin: nomadops.nomad.nomad_allocs
    plugin_type: inventory
  - ref: inventory_plugins
    description: How inventory plugins and their YAML files work.
"""

EXAMPLES = r"""
# workers.nomad_nodes.yml -- the ready nodes of datacenter dc1, reached at their advertised address.
# ansible-inventory -i workers.nomad_nodes.yml --graph
# ansible-playbook -i workers.nomad_nodes.yml nomadops.nomad.node_maintenance   (see the README)
plugin: nomadops.nomad.nomad_nodes
address: https://nomad.example.com:4646
ca_cert: /etc/nomad.d/ca.pem
datacenter: dc1

---
# Every node whatever its status, SSH to the address in a node attribute, grouped by the node's rack meta data.
plugin: nomadops.nomad.nomad_nodes
status: []
address_from: unique.network.ip-address
keyed_groups:
  - key: nomad_node_meta.rack | default('none')
    prefix: rack
compose:
  ansible_user: "'ubuntu' if nomad_node_class == 'web' else 'ec2-user'"
groups:
  canary_nodes: nomad_node_meta.canary | default('false') == 'true'

---
# Linux nodes of the batch pool that are eligible, cached for a minute in JSON files.
plugin: nomadops.nomad.nomad_nodes
node_pool: batch
eligible: true
filter: 'Attributes["kernel.name"] == "linux"'
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/nomad_nodes
cache_timeout: 60

---
# An AWX inventory source ("Sourced from a project", file nomad/prod.nomad_nodes.yml) with a credential of the
# "HashiCorp Nomad" type (extensions/awx/nomad_credential_type.yml): its injectors set NOMAD_ADDR, NOMAD_TOKEN,
# NOMAD_CACERT... for the inventory update, so the file names no connection option. The job template that runs
# the maintenance playbook needs the same Nomad credential (for the drain, delegated to the controller) and a
# Machine credential (SSH to the nodes); turn "Update on launch" on, so eligibility is read fresh.
plugin: nomadops.nomad.nomad_nodes
node_pool: default
keyed_groups:
  - key: nomad_node_meta.rack | default('none')
    prefix: rack
"""

from urllib.parse import urlsplit

from ansible_collections.nomadops.nomad.plugins.module_utils.common.concurrency import concurrent_map
from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.nodes.nodes import list_filter, list_nodes, read_node
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id
from ansible_collections.nomadops.nomad.plugins.plugin_utils._inventory_base import NomadInventoryBase, name_part

SELECTOR_OPTIONS = ("prefix", "filter", "datacenter", "node_pool", "node_class", "status", "eligible")
ADDRESS_FROM_HTTP_ADDR = "http_addr"
ADDRESS_FROM_NAME = "name"


# --------------------------------------------------------------------------------------------- records
def http_addr_host(http_addr: str) -> str | None:
    """The host part of Nomad's `HTTPAddr` (`10.0.0.1:4646`, `[fd00::1]:4646`)."""
    if not http_addr:
        return None
    return urlsplit(f"//{http_addr}").hostname


def node_address(node: dict, address_from: str) -> str | None:
    if address_from == ADDRESS_FROM_HTTP_ADDR:
        return http_addr_host(node.get("HTTPAddr") or "") or node.get("Address") or None
    if address_from == ADDRESS_FROM_NAME:
        return node.get("Name") or None
    return (node.get("Attributes") or {}).get(address_from) or None


def node_record(node: dict, address_from: str) -> dict:
    """The part of a full node the inventory needs (what the cache keeps)."""
    return {
        "ID": node["ID"], "Name": node.get("Name") or node["ID"], "Datacenter": node.get("Datacenter") or "",
        "NodePool": node.get("NodePool") or "default", "NodeClass": node.get("NodeClass") or "",
        "Status": node.get("Status") or "", "Eligible": node.get("SchedulingEligibility") == "eligible",
        "Draining": node.get("DrainStrategy") is not None, "Meta": dict(node.get("Meta") or {}),
        "Address": node_address(node, address_from),
    }


# --------------------------------------------------------------------------------------------- hosts
def node_host_names(records: list) -> dict:
    """{node ID: host name}: the sanitised node name, with the short ID appended where names collide."""
    names = {record["ID"]: name_part(record["Name"]) for record in records}
    seen = {}
    for name in names.values():
        seen[name] = seen.get(name, 0) + 1
    return {node_id: (f"{name}-{short_id(node_id)}" if seen[name] > 1 else name) for node_id, name in names.items()}


def host_vars_of(record: dict, connection_vars: dict) -> dict:
    host_vars = {
        "nomad_node_id": record["ID"], "nomad_node_name": record["Name"], "nomad_datacenter": record["Datacenter"],
        "nomad_node_pool": record["NodePool"], "nomad_node_class": record["NodeClass"],
        "nomad_node_status": record["Status"], "nomad_eligible": record["Eligible"],
        "nomad_draining": record["Draining"], "nomad_node_meta": record["Meta"],
    }
    if record["Address"]:
        host_vars["ansible_host"] = record["Address"]
    host_vars.update(connection_vars)
    return host_vars


def default_groups(record: dict) -> tuple:
    groups = [f"nomad_datacenter_{record['Datacenter']}", f"nomad_node_pool_{record['NodePool']}"]
    if record["NodeClass"]:
        groups.append(f"nomad_node_class_{record['NodeClass']}")
    groups.append(f"nomad_node_status_{record['Status']}")
    groups.append("nomad_eligible" if record["Eligible"] else "nomad_ineligible")
    return tuple(groups)


# --------------------------------------------------------------------------------------------- plugin
class InventoryModule(NomadInventoryBase):

    NAME = "nomadops.nomad.nomad_nodes"
    FILE_SUFFIXES = ("nomad_nodes.yml", "nomad_nodes.yaml")
    CACHE_FORMAT = 1
    CACHE_RECORDS_KEY = "nodes"
    IDENTITY_SALT = b"nomadops.nomad.nomad_nodes cache identity\0"
    RECORD_NOUN = "node"

    def _selector(self) -> dict:
        return {name: self.get_option(name) for name in SELECTOR_OPTIONS}

    def _described(self, options, selector: dict) -> str:
        expression = list_filter(selector) or "(no filter)"
        prefix = f' with ID prefix "{selector["prefix"]}"' if selector.get("prefix") else ""
        return f"{expression}{prefix} at {options.address}"

    def _fingerprint_extras(self) -> dict:
        return {"address_from": self.get_option("address_from")}

    def _fetch_records(self, options, selector: dict) -> list:
        address_from = self.get_option("address_from")
        with NomadClient(options, warn=self.display.warning) as client:
            stubs = list_nodes(client, selector)
            nodes = concurrent_map(lambda stub: read_node(client, stub["ID"])[0], stubs)
        # A node purged between the listing and its read is gone: it is no host.
        return [node_record(node, address_from) for node in nodes if node is not None]

    def _populate(self, records: list, options) -> None:
        connection_vars = self._connection_host_vars(options)
        names = node_host_names(records)
        group = self._group_adder()
        for record in sorted(records, key=lambda record: (names[record["ID"]], record["ID"])):
            groups = [group(name) for name in default_groups(record)]
            self._add_host(names[record["ID"]], host_vars_of(record, connection_vars), groups)
        self._warn_about_nodes_without_address(records, names)

    def _warn_about_nodes_without_address(self, records: list, names: dict) -> None:
        missing = sorted(names[record["ID"]] for record in records if not record["Address"])
        if missing:
            address_from = self.get_option("address_from")
            self.display.warning(f'{self.NAME}: address_from "{address_from}" is not set on node(s) {", ".join(missing)}; '
                                 "their ansible_host is left unset (Ansible connects to the host name)")
