# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nomadops.nomad.nomad_nodes inventory plugin and playbooks/node_maintenance.yml, run by real ansible-inventory
and ansible-playbook against the emulator (tests/emulator/scenarios/nodes-inventory.yml: seven nodes, ACLs on,
virtual allocations spread over them). The maintenance playbook test changes eligibility and moves allocations,
so it runs last and leaves every node as it found it (eligible)."""

from __future__ import annotations

import json

import pytest
import requests
import yaml

from tests.integration.conftest import REPO_ROOT, AnsibleRunner
from tests.integration.inventory_source import InventorySource, hostvars, members
from tests.integration.observe import line_starting

PLUGIN = "nomadops.nomad.nomad_nodes"
EMULATOR_SCENARIO = "nodes-inventory.yml"
MANAGEMENT = "00000000-0000-4000-8000-0000000000a1"
READER = "00000000-0000-4000-8000-0000000000a2"
JOBS_ONLY = "00000000-0000-4000-8000-0000000000a3"
READY = {"maint-1", "maint-2", "web-1", "web-2", "batch-1", "edge_1_"}
NODE_IDS = {
    "maint-1": "11110000-0000-4000-8000-000000000001", "maint-2": "11110000-0000-4000-8000-000000000002",
    "web-1": "22220000-0000-4000-8000-000000000001", "web-2": "22220000-0000-4000-8000-000000000002",
    "batch-1": "33330000-0000-4000-8000-000000000001", "edge_1_": "44440000-0000-4000-8000-000000000001",
    "old-1": "55550000-0000-4000-8000-000000000001",
}
EVIL_MOTD = "{{ lookup('ansible.builtin.pipe', 'touch \"$NOMADOPS_INVENTORY_MARKER\"') }}"


@pytest.fixture(scope="module")
def runner(emulator, tmp_path_factory):
    return AnsibleRunner(emulator.address, tmp_path_factory.mktemp("nodes-inventory"))


def source_file(runner: AnsibleRunner, name: str, options: dict) -> InventorySource:
    """A nomad_nodes source file read with the READER token."""
    return InventorySource(runner, name, options, plugin=PLUGIN, token=READER)


def node_reads(counts):
    return {key: count for key, count in counts.items() if key.startswith(("GET /v1/nodes", "GET /v1/node/"))}


# --------------------------------------------------------------------------------------------- listing
def test_ready_nodes_become_hosts_with_documented_vars_and_groups(runner, emulator):
    listing = source_file(runner, "default", {}).listing()
    hosts = hostvars(listing)
    assert set(hosts) == READY  # old-1 is down; "edge[1]" is made safe for host patterns
    for host, values in hosts.items():
        assert values["nomad_node_id"] == NODE_IDS[host]
        assert values["nomad_node_status"] == "ready" and values["nomad_draining"] is False
        assert values["ansible_nomad_address"] == emulator.address
        assert "ansible_connection" not in values  # nodes are reached over SSH
    assert hosts["web-1"] == {
        "nomad_node_id": NODE_IDS["web-1"], "nomad_node_name": "web-1", "nomad_datacenter": "dc1",
        "nomad_node_pool": "default", "nomad_node_class": "web", "nomad_node_status": "ready",
        "nomad_eligible": True, "nomad_draining": False, "nomad_node_meta": {"rack": "r1", "motd": EVIL_MOTD},
        "ansible_host": "10.1.0.1", "ansible_nomad_address": emulator.address,
    }
    assert hosts["edge_1_"]["nomad_node_name"] == "edge[1]" and hosts["edge_1_"]["nomad_node_class"] == ""
    assert hosts["batch-1"]["nomad_eligible"] is False and hosts["batch-1"]["nomad_node_pool"] == "batch"
    assert members(listing, "nomad_datacenter_dc1") == {"maint-1", "maint-2", "web-1", "web-2"}
    assert members(listing, "nomad_datacenter_dc2") == {"batch-1", "edge_1_"}
    assert members(listing, "nomad_node_pool_batch") == {"batch-1"}
    assert members(listing, "nomad_node_class_web") == {"web-1", "web-2"}
    assert members(listing, "nomad_node_class_maint") == {"maint-1", "maint-2"}
    assert members(listing, "nomad_node_status_ready") == READY
    assert members(listing, "nomad_ineligible") == {"batch-1"}
    assert members(listing, "nomad_eligible") == READY - {"batch-1"}
    assert READER not in listing["_stdout"]


def test_selector_options_narrow_the_listing_on_the_server(runner, emulator):
    def selected(name, options):
        return set(hostvars(source_file(runner, name, options).listing()))

    everything = source_file(runner, "every-status", {"status": []}).listing()
    assert set(hostvars(everything)) == READY | {"old-1"}
    assert members(everything, "nomad_node_status_down") == {"old-1"}
    assert selected("down", {"status": ["down"]}) == {"old-1"}
    assert selected("ineligible", {"eligible": False}) == {"batch-1"}
    assert selected("rack-r1-web", {"filter": 'Meta.rack == "r1"', "node_class": "web"}) == {"web-1"}
    assert selected("dc2", {"datacenter": "dc2"}) == {"batch-1", "edge_1_"}
    assert selected("pool", {"node_pool": "batch"}) == {"batch-1"}
    assert selected("prefix", {"prefix": "2222"}) == {"web-1", "web-2"}

    nothing = source_file(runner, "nothing", {"node_class": "wbe"})
    proc = nothing.run("--list")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["_meta"]["hostvars"] == {}
    assert f'{nothing.path}: no node matched NodeClass == "wbe" and (Status == "ready") at {emulator.address}' in proc.stderr


def test_address_from_http_addr_name_or_an_attribute(runner, emulator):
    by_name = hostvars(source_file(runner, "by-name", {"address_from": "name"}).listing())
    assert {host: values["ansible_host"] for host, values in by_name.items()} == {
        host: values["nomad_node_name"] for host, values in by_name.items()}
    by_hostname = hostvars(source_file(runner, "by-attr", {"address_from": "unique.hostname"}).listing())
    assert by_hostname["edge_1_"]["ansible_host"] == "edge[1]"
    by_ip = hostvars(source_file(runner, "by-ip", {"address_from": "unique.network.ip-address"}).listing())
    assert by_ip["maint-2"]["ansible_host"] == "10.9.0.2"

    public = source_file(runner, "by-public", {"address_from": "platform.aws.public-ipv4"}).listing()
    hosts = hostvars(public)
    assert hosts["web-1"]["ansible_host"] == "203.0.113.7"
    assert all("ansible_host" not in values for host, values in hosts.items() if host != "web-1")
    warning = line_starting(public["_stderr"], "[WARNING]: nomadops.nomad.nomad_nodes: ")
    assert 'address_from "platform.aws.public-ipv4" is not set on node(s) batch-1, edge_1_, maint-1, maint-2, web-2' in warning


def test_constructed_keyed_groups_compose_and_groups(runner, emulator):
    listing = source_file(runner, "constructed", {
        "keyed_groups": [{"key": "nomad_node_meta.rack | default('none')", "prefix": "rack"},
                         {"key": "nomad_node_class", "prefix": "class", "default_value": "none"}],
        "compose": {"ansible_user": "'admin' if nomad_node_class == 'web' else 'ops'"},
        "groups": {"first_datacenter": "nomad_datacenter == 'dc1'"},
    }).listing()
    hosts = hostvars(listing)
    assert members(listing, "rack_r1") == {"maint-1", "web-1"}
    assert members(listing, "rack_r2") == {"maint-2", "web-2"}
    assert members(listing, "rack_none") == {"batch-1", "edge_1_"}
    assert members(listing, "class_none") == {"batch-1", "edge_1_"}
    assert members(listing, "first_datacenter") == {"maint-1", "maint-2", "web-1", "web-2"}
    assert {host: values["ansible_user"] for host, values in hosts.items()} == {
        host: ("admin" if host.startswith("web") else "ops") for host in READY}


def test_cache_hit_reads_nothing_from_nomad_and_never_stores_the_token(runner, emulator, tmp_path):
    source = source_file(runner, "cached", {
        "cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"),
        "cache_timeout": 3600,
    })
    emulator.control.reset_requests()
    first = source.listing()
    reads = node_reads(emulator.control.requests())
    assert reads.pop("GET /v1/nodes") == 1 and sorted(reads) == sorted(f"GET /v1/node/{NODE_IDS[host]}" for host in READY)
    assert READER not in "".join(path.read_text() for path in (tmp_path / "cache").iterdir())

    emulator.control.reset_requests()
    second = source.listing()
    assert node_reads(emulator.control.requests()) == {}
    assert hostvars(second) == hostvars(first)

    emulator.control.reset_requests()
    other_token = source.listing(env={"NOMAD_TOKEN": MANAGEMENT})  # each token has its own cache entry
    assert node_reads(emulator.control.requests()).get("GET /v1/nodes") == 1
    assert hostvars(other_token) == hostvars(first)


def test_token_never_reaches_the_output_even_at_vvvv(runner, emulator):
    source = source_file(runner, "token-in-file", {"token": READER, "node_class": "web"})
    proc = source.run("--list", "--export", "-vvvv", env={"NOMAD_TOKEN": None, "ANSIBLE_VERBOSE_TO_STDERR": "true"})
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["_meta"]["hostvars"]) == {"web-1", "web-2"}
    assert READER not in proc.stdout + proc.stderr
    failing = source_file(runner, "token-in-file-bad", {"token": READER, "filter": "Name =="})
    proc = failing.run("--list", "-vvvv", env={"NOMAD_TOKEN": None})
    assert proc.returncode != 0
    assert READER not in proc.stdout + proc.stderr


def test_node_data_is_never_templated(runner, emulator, tmp_path):
    marker = tmp_path / "templated"
    source = source_file(runner, "evil", {"node_class": "web", "compose": {"motd": "nomad_node_meta.motd | default('')"}})
    playbook = runner.workdir / "evil-play.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "web-1", "gather_facts": False,
        "tasks": [{"name": "show motd", "ansible.builtin.debug": {"msg": "{{ motd }} {{ nomad_node_meta.motd }}"}}],
    }]))
    run = runner.playbook(str(playbook), env={"NOMADOPS_INVENTORY_MARKER": str(marker), "NOMAD_TOKEN": READER},
                          args=("-i", str(source.path), "-e", "ansible_connection=local"))
    run.assert_ok()
    assert [entry["result"]["msg"] for entry in run.results if entry["task"] == "show motd"] == [f"{EVIL_MOTD} {EVIL_MOTD}"]
    assert not marker.exists()


# --------------------------------------------------------------------------------------------- bad inputs
BAD_INPUTS = [
    ({"statu": ["ready"]}, None, "unknown option(s) statu; this plugin takes: "),
    ({"eligible": "maybe"}, None, "eligible must be true or false (got 'maybe')"),
    ({"status": ["redy"]}, None, "Invalid value ['redy'] for config 'status' for nomadops.nomad.nomad_nodes"),
    ({"filter": "Name =="}, None, "GET /v1/nodes failed: 400 failed to read filter expression"),
    ({"prefix": "abc"}, None, "GET /v1/nodes failed: 500 index error: Input (without hyphens) must be even length"),
    ({}, JOBS_ONLY, "GET /v1/nodes failed: 403 Permission denied (check that the token's policy has node read)"),
]


@pytest.mark.parametrize("options, token, message", BAD_INPUTS, ids=[
    "unknown-option", "not-a-bool", "bad-status", "bad-filter", "odd-prefix", "no-node-read"])
def test_bad_input_fails_with_one_line_naming_the_file(runner, emulator, options, token, message):
    source = source_file(runner, "bad", options)
    proc = source.run("--list", env={"NOMAD_TOKEN": token or READER})
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    failure = line_starting(proc.stderr, "[WARNING]: Failed to parse inventory with ")
    assert f"{source.path}: " in failure and message in failure.partition(f"{source.path}: ")[2], proc.stderr
    assert (token or READER) not in proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------- the maintenance playbook
MAINTENANCE_CHECK = [
    {"name": "Read the node under maintenance",
     "nomadops.nomad.nomad_node_info": {"node": "{{ nomad_node_id }}", "allocations": True}},
]


def node_events(emulator, node_id):
    response = requests.get(f"{emulator.address}/v1/node/{node_id}", headers={"X-Nomad-Token": MANAGEMENT}, timeout=10)
    return [(event["CreateIndex"], event["Message"]) for event in response.json()["Events"]]


def test_maintenance_playbook_drains_maintains_and_reenables_one_node_at_a_time(runner, emulator):
    source = source_file(runner, "maint", {"address": emulator.address, "node_class": "maint"})
    maintenance = runner.workdir / "maintenance-check.yml"
    maintenance.write_text(yaml.safe_dump(MAINTENANCE_CHECK, sort_keys=False))
    playbook = REPO_ROOT / "playbooks" / "node_maintenance.yml"
    emulator.control.reset_requests()
    typo = runner.playbook(str(playbook), env={"NOMAD_TOKEN": MANAGEMENT}, nomad_addr=False, args=(
        "-i", str(source.path), "-e", "node_maintenance_tasks=no-such-patch.yml"))
    assert typo.rc != 0
    assert f"node_maintenance_tasks: no such file {runner.workdir / 'no-such-patch.yml'}; give the path" in typo.output
    assert [key for key in emulator.control.requests() if not key.startswith("GET ")] == []  # nothing drained

    # No NOMAD_ADDR: the drain reaches Nomad through the address the inventory gives each host.
    run = runner.playbook(str(playbook), env={"NOMAD_TOKEN": MANAGEMENT}, nomad_addr=False, verbosity=1, args=(
        "-i", str(source.path), "-e", "node_maintenance_run_on=localhost",
        "-e", f"node_maintenance_tasks={maintenance}"))
    run.assert_ok()
    assert MANAGEMENT not in run.output

    order = [(entry["task"], entry["host"]) for entry in run.results]
    drain, check, enable = ("Drain the node and wait until its allocations run healthy on other nodes",
                            "Read the node under maintenance", "Make the node eligible for scheduling again")
    assert [step for step in order if step[0] in (drain, check, enable)] == [
        (drain, "maint-1"), (check, "maint-1"), (enable, "maint-1"),
        (drain, "maint-2"), (check, "maint-2"), (enable, "maint-2")]
    for entry in run.results:
        result = entry["result"]
        if entry["task"] == drain:
            # its own two allocations, and on maint-2 also those of maint-1 that were moved there
            assert result["changed"] is True and len(result["allocations"]) >= 2, result
            assert all(moved["replacement"]["node"] != entry["host"] and moved["replacement"]["healthy"] is True
                       for moved in result["allocations"]), result
        elif entry["task"] == check:  # during the maintenance: ineligible, nothing left running on the node
            [node] = result["nodes"]
            assert node["SchedulingEligibility"] == "ineligible" and node["DrainStrategy"] is None
            assert [alloc for alloc in node["Allocations"] if alloc["client_status"] == "running"] == []
        elif entry["task"] == enable:
            assert result["changed"] is True and result["node"]["SchedulingEligibility"] == "eligible"

    # The emulator's node events: maint-2's drain started only after maint-1 was eligible again.
    first, second = (dict((message, index) for index, message in node_events(emulator, NODE_IDS[name]))
                     for name in ("maint-1", "maint-2"))
    assert first["Node drain strategy set"] < first["Node drain complete"] < first["Node marked as eligible for scheduling"]
    assert first["Node marked as eligible for scheduling"] < second["Node drain strategy set"]
    assert second["Node drain complete"] < second["Node marked as eligible for scheduling"]

    listing = hostvars(source.listing())
    assert {host: values["nomad_eligible"] for host, values in listing.items()} == {"maint-1": True, "maint-2": True}
