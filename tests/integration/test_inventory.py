# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nomadops.nomad.nomad_allocs inventory plugin, run by real ansible-inventory and ansible-playbook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import AnsibleRunner
from tests.integration.inventory_source import InventorySource, hostvars, members
from tests.integration.observe import closed_address, line_starting, running_allocations

PLUGIN = "nomadops.nomad.nomad_allocs"
READER = "6b1c0a3e-1d2f-4c5b-8a9e-000000000001"
LIFECYCLE_ONLY = "6b1c0a3e-1d2f-4c5b-8a9e-000000000002"
HOST_VARS = {
    "nomad_alloc_id", "nomad_alloc_name", "nomad_job", "nomad_task_group", "nomad_namespace", "nomad_node_id",
    "nomad_node_name", "nomad_client_status", "nomad_task", "ansible_connection", "ansible_nomad_alloc_id",
    "ansible_nomad_address", "ansible_nomad_namespace",
}
SAFE_HOST_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
EVIL_META = "{{ lookup('ansible.builtin.pipe', 'touch \"$NOMADOPS_INVENTORY_MARKER\"') }}"


EMULATOR_SCENARIO = "inventory.yml"


def scenario_ready(emulator):
    """The scenario's six allocations run."""
    return len(running(emulator)) == 6


EMULATOR_READY = scenario_ready


@pytest.fixture(scope="module")
def runner(emulator, tmp_path_factory):
    return AnsibleRunner(emulator.address, tmp_path_factory.mktemp("inventory"))


def running(emulator, namespace="*"):
    return [a for a in emulator.allocations(namespace) if a["ClientStatus"] == "running"]


def source_file(runner: AnsibleRunner, name: str, options: dict) -> InventorySource:
    """A nomad_allocs source file read with the READER token."""
    return InventorySource(runner, name, options, plugin=PLUGIN, token=READER)


# --------------------------------------------------------------------------------------------- listing
def test_running_allocations_become_hosts_with_documented_vars_and_groups(runner, emulator):
    listing = source_file(runner, "default", {}).listing()
    expected = {a["ID"]: a for a in running(emulator, "default")}
    hosts = hostvars(listing)
    assert sorted(v["nomad_alloc_id"] for v in hosts.values()) == sorted(expected)
    for host, values in hosts.items():
        alloc = expected[values["nomad_alloc_id"]]
        index = re.search(r"\[(\d+)\]$", alloc["Name"]).group(1)
        assert host == f"{alloc['JobID']}-{alloc['TaskGroup']}-{index}-{alloc['ID'][:8]}"
        assert SAFE_HOST_NAME.match(host)
        assert set(values) - {"ansible_nomad_task"} == HOST_VARS
        assert values["nomad_alloc_name"] == alloc["Name"]
        assert values["nomad_job"] == alloc["JobID"] and values["nomad_task_group"] == alloc["TaskGroup"]
        assert values["nomad_node_id"] == alloc["NodeID"] and values["nomad_node_name"] == alloc["NodeName"]
        assert values["nomad_namespace"] == values["ansible_nomad_namespace"] == "default"
        assert values["nomad_client_status"] == "running"
        assert values["ansible_connection"] == "nomadops.nomad.nomad_exec"
        assert values["ansible_nomad_alloc_id"] == alloc["ID"]
        assert values["ansible_nomad_address"] == emulator.address
    web = {h for h, v in hosts.items() if v["nomad_job"] == "web"}
    api = {h for h, v in hosts.items() if v["nomad_job"] == "api"}
    assert len(web) == 3 and len(api) == 1
    # web runs server and sidecar: no exec target unless `task` is given; api's prestart task has finished.
    assert all(hosts[h]["nomad_task"] is None and "ansible_nomad_task" not in hosts[h] for h in web)
    assert [hosts[h]["nomad_task"] for h in api] == ["app"] and [hosts[h]["ansible_nomad_task"] for h in api] == ["app"]
    assert members(listing, "nomad_job_web") == web
    assert members(listing, "nomad_task_group_web_frontend") == web
    assert members(listing, "nomad_node_node_1") == web
    assert members(listing, "nomad_node_node_2") == api
    assert members(listing, "nomad_namespace_default") == web | api
    assert members(listing, "nomad_client_status_running") == web | api
    assert "nomad_job_report" not in listing  # complete, not running
    assert READER not in listing["_stdout"]


def test_namespace_star_hosts_per_task_and_task_option(runner, emulator):
    listing = source_file(runner, "everywhere", {"namespace": "*", "hosts_per": "task"}).listing()
    hosts = hostvars(listing)
    per_alloc = {}
    for host, values in hosts.items():
        per_alloc.setdefault(values["nomad_alloc_id"], []).append(values["nomad_task"])
        assert host.endswith("-" + values["nomad_task"]) and values["ansible_nomad_task"] == values["nomad_task"]
    for alloc in running(emulator):
        assert sorted(per_alloc[alloc["ID"]]) == sorted(alloc["TaskStates"])
    prod = {h for h, v in hosts.items() if v["nomad_namespace"] == "prod"}
    assert len(prod) == 2 and members(listing, "nomad_namespace_prod") == prod
    assert all(hosts[h]["ansible_nomad_namespace"] == "prod" for h in prod)

    servers = hostvars(source_file(runner, "servers", {"task": "server"}).listing())
    assert sorted(v["nomad_alloc_id"] for v in servers.values()) == sorted(
        a["ID"] for a in running_allocations(emulator, "web"))
    assert {v["ansible_nomad_task"] for v in servers.values()} == {"server"}


def test_meta_keyed_groups_compose_and_groups(runner, emulator):
    listing = source_file(runner, "meta", {
        "meta": True,
        "keyed_groups": [{"key": "nomad_meta.team | default('none')", "prefix": "team"},
                         {"key": "nomad_meta.tier", "prefix": "", "separator": ""}],
        "compose": {"release_channel": "'canary' if nomad_alloc_name.endswith('[0]') else 'stable'"},
        "groups": {"first_of_each": "nomad_alloc_name.endswith('[0]')"},
        "task": "server",
        "leading_separator": False,
    }).listing()
    hosts = hostvars(listing)
    assert len(hosts) == 3
    assert members(listing, "team_payments") == set(hosts)
    assert members(listing, "edge") == set(hosts)
    for values in hosts.values():
        assert values["nomad_meta"] == {"team": "payments", "tier": "edge", "role": "http", "motd": EVIL_META}
        assert values["release_channel"] == ("canary" if values["nomad_alloc_name"].endswith("[0]") else "stable")
    assert [hosts[h]["nomad_alloc_name"] for h in members(listing, "first_of_each")] == ["web.frontend[0]"]

    everything = source_file(runner, "meta-all", {"meta": True, "keyed_groups": [{"key": "nomad_meta.team", "prefix": "team"}]})
    listing = everything.listing()
    assert {hostvars(listing)[h]["nomad_job"] for h in members(listing, "team_core")} == {"api"}


def test_use_extra_vars_in_compose_and_lenient_compose_without_strict(runner, emulator):
    source = source_file(runner, "extra", {"job": "api", "use_extra_vars": True,
                                           "compose": {"stage": "release_stage", "owner": "no_such_var.name"}})
    [values] = hostvars(source.listing("-e", "release_stage=canary")).values()
    assert values["stage"] == "canary"
    assert "owner" not in values  # strict is false: an expression that fails is skipped


def test_cache_hit_sends_no_list_request_and_failed_refresh_keeps_the_cache(runner, emulator, tmp_path):
    source = source_file(runner, "cached", {
        "cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"),
        "cache_timeout": 3600,
    })
    emulator.control.reset_requests()
    first = source.listing()
    assert emulator.control.requests().get("GET /v1/allocations") == 1
    assert READER not in "".join(p.read_text() for p in (tmp_path / "cache").iterdir())

    emulator.control.reset_requests()
    second = source.listing()
    assert "GET /v1/allocations" not in emulator.control.requests()
    assert hostvars(second) == hostvars(first)

    emulator.control.add_fault(method="GET", path="^/v1/allocations$", count=10, action="status", status=500,
                               body="No cluster leader")
    try:
        refresh = source.run("--list", "--flush-cache")
        assert refresh.returncode != 0 and "No cluster leader" in refresh.stderr
    finally:
        emulator.control.clear_faults()
    emulator.control.reset_requests()
    assert hostvars(source.listing()) == hostvars(first)
    assert "GET /v1/allocations" not in emulator.control.requests()


# --------------------------------------------------------------------------------------------- untrusted data
def test_api_data_is_never_templated(runner, emulator, tmp_path):
    marker = tmp_path / "templated"
    source = source_file(runner, "evil", {"meta": True, "job": "web", "compose": {"motd": "nomad_meta.motd"}})
    playbook = runner.workdir / "evil-play.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "nomad_job_web", "gather_facts": False,
        "tasks": [{"name": "show motd", "ansible.builtin.debug": {"msg": "{{ motd }} {{ nomad_meta.motd }}"}}],
    }]))
    env = {"NOMADOPS_INVENTORY_MARKER": str(marker), "NOMAD_TOKEN": READER}
    run = runner.playbook(str(playbook), env=env, args=("-i", str(source.path), "-e", "ansible_connection=local"))
    run.assert_ok()
    shown = [entry["result"]["msg"] for entry in run.results if entry["task"] == "show motd"]
    assert shown == [f"{EVIL_META} {EVIL_META}"] * 3
    assert not marker.exists()

    # AWX stores `ansible-inventory --list --export` and serves it back to jobs as a script inventory.
    export = tmp_path / "export.json"
    export.write_text(source.listing()["_stdout"])
    script = tmp_path / "awx_inventory.sh"
    script.write_text(f"#!/bin/sh\ncat '{export}'\n")
    script.chmod(0o755)
    run = runner.playbook(str(playbook), env=env, args=("-i", str(script), "-e", "ansible_connection=local"))
    run.assert_ok()
    assert [entry["result"]["msg"] for entry in run.results if entry["task"] == "show motd"] == [f"{EVIL_META} {EVIL_META}"] * 3
    assert not marker.exists()


# --------------------------------------------------------------------------------------------- bad inputs
BAD_INPUTS = [
    ({"jbo": "web"}, None, "unknown option(s) jbo; this plugin takes: "),
    ({"meta": "maybe"}, None, "meta must be true or false (got 'maybe')"),
    ({"timeout": "soon"}, None, f"Config 'timeout' for {PLUGIN} has an invalid value: Invalid value provided for 'float': 'soon'"),
    ({"hosts_per": "container"}, None, "Invalid value 'container' for config 'hosts_per'"),
    ({"filter": "JobID =="}, None, "GET /v1/allocations failed: 400 failed to create result paginator"),
    ({"address": "CLOSED", "retries": 0}, None, "cannot reach Nomad at http://127.0.0.1:"),
    ({}, LIFECYCLE_ONLY, "GET /v1/allocations failed: 403 Permission denied"),
    ({"job": "api", "strict": True, "compose": {"owner": "no_such_var.name"}}, None, "Could not set owner for host api-api-0-"),
]


@pytest.mark.parametrize("options, token, message", BAD_INPUTS, ids=[
    "unknown-option", "not-a-bool", "not-a-number", "bad-hosts_per", "bad-filter", "unreachable", "no-read-job",
    "strict-compose"])
def test_bad_input_fails_with_one_line_naming_the_file(runner, emulator, options, token, message):
    options = {k: (closed_address() if v == "CLOSED" else v) for k, v in options.items()}
    source = source_file(runner, "bad", options)
    proc = source.run("--list", env={"NOMAD_TOKEN": token or READER})
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    failure = line_starting(proc.stderr, "[WARNING]: Failed to parse inventory with ")
    assert f"{source.path}: " in failure and message in failure.partition(f"{source.path}: ")[2], proc.stderr
    assert (token or READER) not in proc.stdout + proc.stderr


def test_without_unparsed_failed_ansible_only_warns_but_shows_the_line(runner, emulator):
    source = source_file(runner, "bad-default", {"hosts_per": "container"})
    proc = source.run("--list", fatal=False)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["_meta"]["hostvars"] == {}
    failure = line_starting(proc.stderr, "[WARNING]: Failed to parse inventory with ")
    assert f"{source.path}: Invalid value 'container' for config 'hosts_per'" in failure, proc.stderr


def test_nothing_selected_warns_and_lists_no_host(runner, emulator):
    source = source_file(runner, "nothing", {"job": "wbe"})
    proc = source.run("--list")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["_meta"]["hostvars"] == {}
    assert f'{source.path}: no allocation matched JobID == "wbe"' in proc.stderr


# --------------------------------------------------------------------------------------------- end to end
def test_play_over_the_inventory_writes_a_file_in_every_allocation(runner, emulator):
    """Needs the nomadops.nomad.nomad_exec connection plugin (branch conn)."""
    source = source_file(runner, "e2e", {"job": "web", "task": "server"})
    playbook = runner.workdir / "e2e-play.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "nomad_job_web", "gather_facts": False,
        "tasks": [
            {"name": "task dir", "ansible.builtin.raw": 'printf %s "$NOMAD_TASK_DIR"', "register": "task_dir"},
            {"name": "write", "ansible.builtin.copy": {
                "dest": "{{ task_dir.stdout }}/from-inventory.txt", "mode": "0644",
                "content": "{{ inventory_hostname }} {{ nomad_alloc_id }}\n"}},
        ],
    }]))
    run = runner.playbook(str(playbook), env={"NOMAD_TOKEN": READER}, args=(
        "-i", str(source.path), "--forks", "3", "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"))
    run.assert_ok()
    for alloc in running_allocations(emulator, "web"):
        task_dir = Path(emulator.control.tasks(alloc["ID"])["server"]["task_dir"])
        host, alloc_id = (task_dir / "from-inventory.txt").read_text().split()
        assert alloc_id == alloc["ID"] and host.endswith(alloc["ID"][:8])


def test_connection_options_reach_hosts_but_environment_tls_paths_do_not(runner, emulator, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not used over http\n")
    configured = hostvars(source_file(runner, "tls-file", {"job": "api", "ca_cert": str(ca_file), "region": "global",
                                                           "validate_certs": False}).listing())
    [values] = configured.values()
    assert values["ansible_nomad_ca_cert"] == str(ca_file)
    assert values["ansible_nomad_region"] == "global" and values["ansible_nomad_validate_certs"] is False
    from_environment = hostvars(source_file(runner, "tls-env", {"job": "api"}).listing(env={"NOMAD_CACERT": str(ca_file)}))
    [values] = from_environment.values()
    assert "ansible_nomad_ca_cert" not in values  # AWX writes NOMAD_CACERT's file anew for every job


def test_token_from_the_file_never_reaches_the_output_even_at_vvvv(runner, emulator):
    source = source_file(runner, "token-in-file", {"job": "web", "token": READER})
    proc = source.run("--list", "--export", "-vvvv", env={"NOMAD_TOKEN": None, "ANSIBLE_VERBOSE_TO_STDERR": "true"})
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["_meta"]["hostvars"]) == 3
    assert READER not in proc.stdout + proc.stderr
    failing = source_file(runner, "token-in-file-bad", {"job": "web", "token": READER, "filter": "JobID =="})
    proc = failing.run("--list", "-vvvv", env={"NOMAD_TOKEN": None})
    assert proc.returncode != 0
    assert READER not in proc.stdout + proc.stderr
