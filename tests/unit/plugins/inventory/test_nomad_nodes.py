# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pure parts of the nomad_nodes inventory plugin: addresses, records, host names, host vars, groups.
The plugin itself runs under real ansible-inventory in tests/integration/test_nodes_inventory.py."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.inventory import nomad_nodes


def node(node_id="5a22c1f3-0000-4000-8000-000000000001", name="worker-1", **fields):
    return dict({"ID": node_id, "Name": name, "Datacenter": "dc1", "NodePool": "default", "NodeClass": "",
                 "Status": "ready", "SchedulingEligibility": "eligible", "DrainStrategy": None,
                 "HTTPAddr": "10.0.0.7:4646", "Meta": {"rack": "r1"},
                 "Attributes": {"unique.network.ip-address": "192.168.0.7"}}, **fields)


def test_address_from_http_addr_name_or_attribute():
    assert nomad_nodes.node_address(node(), "http_addr") == "10.0.0.7"
    assert nomad_nodes.node_address(node(HTTPAddr="[fd00::7]:4646"), "http_addr") == "fd00::7"
    assert nomad_nodes.node_address(node(), "name") == "worker-1"
    assert nomad_nodes.node_address(node(), "unique.network.ip-address") == "192.168.0.7"
    assert nomad_nodes.node_address(node(), "platform.aws.public-ipv4") is None


def test_record_host_vars_and_groups():
    record = nomad_nodes.node_record(node(SchedulingEligibility="ineligible", DrainStrategy={"Deadline": 1},
                                          NodePool=""), "http_addr")
    host_vars = nomad_nodes.host_vars_of(record, {"ansible_nomad_address": "https://nomad:4646"})
    assert host_vars == {
        "nomad_node_id": "5a22c1f3-0000-4000-8000-000000000001", "nomad_node_name": "worker-1",
        "nomad_datacenter": "dc1", "nomad_node_pool": "default", "nomad_node_class": "", "nomad_node_status": "ready",
        "nomad_eligible": False, "nomad_draining": True, "nomad_node_meta": {"rack": "r1"},
        "ansible_host": "10.0.0.7", "ansible_nomad_address": "https://nomad:4646",
    }
    assert "ansible_connection" not in host_vars
    assert nomad_nodes.default_groups(record) == (
        "nomad_datacenter_dc1", "nomad_node_pool_default", "nomad_node_status_ready", "nomad_ineligible")
    classed = nomad_nodes.node_record(node(NodeClass="web"), "http_addr")
    assert "nomad_node_class_web" in nomad_nodes.default_groups(classed) and "nomad_eligible" in nomad_nodes.default_groups(classed)


def test_host_names_are_safe_and_unique():
    records = [nomad_nodes.node_record(node(node_id=f"{n}a22c1f3-0000-4000-8000-000000000001", name=name), "name")
               for n, name in ((1, "edge[1]"), (2, "dup"), (3, "dup"))]
    assert nomad_nodes.node_host_names(records) == {
        "1a22c1f3-0000-4000-8000-000000000001": "edge_1_",
        "2a22c1f3-0000-4000-8000-000000000001": "dup-2a22c1f3",
        "3a22c1f3-0000-4000-8000-000000000001": "dup-3a22c1f3",
    }
