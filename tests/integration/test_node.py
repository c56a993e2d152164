# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_node and nomad_node_info against the emulator (tests/emulator/scenarios/nodes-module.yml: virtual
allocations, ACLs on): drains that respect migrate.max_parallel and wait for complete / healthy replacements, a
deadline that force-stops, ignore_system_jobs, idempotent reruns, keep_ineligible, eligibility, check mode without
a write, and the bad inputs as one line. Each test works on its own nodes, so the tests may share an emulator."""

from __future__ import annotations

import re

import requests

from tests.integration.conftest import AnsibleRunner

EMULATOR_SCENARIO = "nodes-module.yml"
MANAGEMENT = "00000000-0000-4000-8000-000000000001"
READER = "00000000-0000-4000-8000-000000000002"
NODE = "nomadops.nomad.nomad_node"
INFO = "nomadops.nomad.nomad_node_info"
JOB = "nomadops.nomad.nomad_job"
NODE_A = "aaaa0000-0000-4000-8000-00000000000a"

PINNED_JOB = '''job "%(name)s" {
  datacenters = ["dc1"]
  type        = "%(type)s"
  node_pool   = "%(pool)s"
  %(constraint)s
  group "g" {
    count = 1
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
    }
  }
}
'''
ON_NODE_C = 'constraint {\n    attribute = "${node.unique.name}"\n    value     = "node-c"\n  }'


def pinned(name, kind, pool="default", constraint=ON_NODE_C):
    return PINNED_JOB % {"name": name, "type": kind, "pool": pool, "constraint": constraint}


def play(tasks):
    return [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def test_drain_moves_in_turn_waits_for_healthy_and_is_idempotent(ansible_runner: AnsibleRunner, integration_emulator):
    tasks = [
        {"name": "info", INFO: {"node": "node-a", "allocations": True}},
        {"name": "list", INFO: {"filter": 'Meta.rack == "r1"', "status": ["ready"], "fields": ["ID", "Name"]}},
        {"name": "missing", INFO: {"node": "nosuch"}},
        {"name": "by prefix", INFO: {"prefix": "eeee", "fields": ["Name"]}},
        {"name": "by class and pool", INFO: {"node_class": "web", "datacenter": "dc1", "node_pool": "default"}},
        {"name": "all", INFO: {}},
        {"name": "drain", NODE: {"node": "node-a", "drain": True, "drain_deadline": 600, "drain_message": "kernel",
                                 "wait_for": "healthy"}},
        {"name": "drain again", NODE: {"node": "node-a", "drain": True, "drain_deadline": 600}},
        {"name": "undrain keep", NODE: {"node": "node-a", "drain": False, "keep_ineligible": True}},
        {"name": "undrain", NODE: {"node": "node-a", "drain": False}},
        {"name": "undrain again", NODE: {"node": "node-a", "drain": False}},
        {"name": "ineligible", NODE: {"node": "bbbb00", "eligible": False}},
        {"name": "ineligible again", NODE: {"node": "node-b", "eligible": False}},
        {"name": "ineligible listed", INFO: {"eligible": False, "node_pool": "default"}},
        {"name": "eligible", NODE: {"node": "node-b", "eligible": True}},
    ]
    run = ansible_runner.playbook(play(tasks), env={"NOMAD_TOKEN": MANAGEMENT}, verbosity=1).assert_ok()
    assert re.search(r"node \"node-a\": \d allocation\(s\) left to move", run.output)  # progress at -v
    info = run.task("info")
    assert info["count"] == 1 and len(info["nodes"][0]["Allocations"]) == 8
    assert [node["Name"] for node in run.task("list")["nodes"]] == ["node-a"]
    assert run.task("by prefix")["nodes"] == [{"Name": "amb-1"}, {"Name": "amb-2"}]
    assert [node["Name"] for node in run.task("by class and pool")["nodes"]] == ["node-a"]
    assert run.task("all")["count"] == 6
    missing = run.task("missing")
    assert missing["nodes"] == [] and any("nosuch" in warning for warning in missing.get("warnings", []))

    drain = run.task("drain")
    assert drain["changed"] is True
    assert drain["node"]["SchedulingEligibility"] == "ineligible" and drain["node"]["DrainStrategy"] is None
    assert drain["node"]["LastDrain"]["Status"] == "complete"
    assert drain["node"]["LastDrain"]["Meta"] == {"message": "kernel"}
    assert len(drain["allocations"]) == 8
    for entry in drain["allocations"]:
        replacement = entry["replacement"]
        assert replacement["node"] != "node-a" and replacement["healthy"] is True, entry
        assert "forced" not in entry
    # migrate.max_parallel 2 with min_healthy_time 300ms: per job, the third replacement is created only after
    # the first two were healthy for 300ms (observed in the emulator's allocations).
    headers = {"X-Nomad-Token": MANAGEMENT}
    replacement_ids = {entry["replacement"]["id"] for entry in drain["allocations"]}
    by_job = {}
    for allocation in requests.get(f"{integration_emulator.address}/v1/allocations", headers=headers,
                                   params={"namespace": "*"}, timeout=10).json():
        if allocation["ID"] in replacement_ids:
            by_job.setdefault(allocation["JobID"], []).append(allocation["CreateTime"])
    assert len(by_job) == 2
    for times in by_job.values():
        times.sort()
        assert len(times) == 4 and times[2] - times[0] >= 300_000_000 and times[3] - times[1] >= 300_000_000, times

    assert run.task("drain again")["changed"] is False
    keep = run.task("undrain keep")
    assert keep["changed"] is False and keep["node"]["SchedulingEligibility"] == "ineligible"
    undrain = run.task("undrain")
    assert undrain["changed"] is True and undrain["node"]["SchedulingEligibility"] == "eligible"
    assert run.task("undrain again")["changed"] is False
    assert run.task("ineligible")["changed"] is True
    assert run.task("ineligible again")["changed"] is False
    assert [node["Name"] for node in run.task("ineligible listed")["nodes"]] == ["node-b"]
    eligible = run.task("eligible")
    assert eligible["changed"] is True and eligible["node"]["SchedulingEligibility"] == "eligible"


def test_deadline_force_stops_and_system_jobs_stay(ansible_runner: AnsibleRunner, integration_emulator):
    tasks = [
        {"name": "batch", JOB: {"spec": pinned("nightly", "batch"), "wait": False}},
        {"name": "system", JOB: {"spec": pinned("agent", "system"), "wait": False}},
        {"name": "drain", NODE: {"node": "node-c", "drain": True, "drain_deadline": 2, "ignore_system_jobs": True}},
        {"name": "drain again", NODE: {"node": "node-c", "drain": True, "drain_deadline": 2,
                                       "ignore_system_jobs": True}},
        {"name": "left", INFO: {"node": "node-c", "allocations": True}},
        {"name": "undrain", NODE: {"node": "node-c", "drain": False}},
    ]
    run = ansible_runner.playbook(play(tasks), env={"NOMAD_TOKEN": MANAGEMENT}).assert_ok()
    drain = run.task("drain")
    assert drain["changed"] is True and drain["node"]["LastDrain"]["Status"] == "complete"
    assert [entry["name"] for entry in drain["allocations"]] == ["nightly.g[0]"]
    assert drain["allocations"][0]["forced"] is True
    assert any("reached its deadline" in warning and "nightly.g[0]" in warning for warning in drain["warnings"])
    assert run.task("drain again")["changed"] is False
    left = run.task("left")["nodes"][0]["Allocations"]
    assert [entry["name"] for entry in left if entry["client_status"] == "running"] == ["agent.g[0]"]
    assert run.task("undrain")["node"]["SchedulingEligibility"] == "eligible"


def test_check_mode_sends_no_write(ansible_runner: AnsibleRunner, integration_emulator):
    tasks = [
        {"name": "drain", NODE: {"node": "node-b", "drain": True}},
        {"name": "ineligible", NODE: {"node": "node-b", "eligible": False}},
    ]
    integration_emulator.control.reset_requests()
    run = ansible_runner.playbook(play(tasks), env={"NOMAD_TOKEN": MANAGEMENT}, check=True).assert_ok()
    writes = {key: count for key, count in integration_emulator.control.requests().items()
              if not key.startswith("GET ")}
    assert writes == {}
    drain = run.task("drain")
    assert drain["changed"] is True and drain["node"]["SchedulingEligibility"] == "eligible"
    assert run.task("ineligible")["changed"] is True


def test_bad_inputs_fail_with_one_line(ansible_runner: AnsibleRunner, integration_emulator):
    def failing(name, args, **extra):
        return {"name": name, NODE: args, "ignore_errors": True, **extra}

    tasks = [
        {"name": "hold", JOB: {"spec": pinned("hold", "batch", pool="spare", constraint=""), "wait": False}},
        {"name": "hold drain", NODE: {"node": "spare", "drain": True, "drain_no_deadline": True, "wait": False}},
        failing("unknown", {"node": "nosuch", "drain": True}),
        failing("ambiguous", {"node": "eeee0000", "eligible": False}),
        failing("negative", {"node": "node-b", "drain": True, "drain_deadline": -5}),
        failing("force and deadline", {"node": "node-b", "drain": True, "drain_force": True, "drain_deadline": 5}),
        failing("eligible while draining", {"node": "spare", "eligible": True}),
        failing("reader", {"node": "spare", "drain": False, "token": "{{ lookup('env', 'READER_TOKEN') }}"}),
        failing("timeout", {"node": "spare", "drain": True, "drain_no_deadline": True, "wait_timeout": 1}),
        {"name": "still draining", INFO: {"node": "spare"}},
        {"name": "cancel", NODE: {"node": "spare", "drain": False}},
        {"name": "force", NODE: {"node": "amb-1", "drain": True, "drain_force": True}},
        {"name": "force again", NODE: {"node": "amb-1", "drain": True, "drain_force": True}},
    ]
    run = ansible_runner.playbook(play(tasks), env={"NOMAD_TOKEN": MANAGEMENT, "READER_TOKEN": READER},
                                  verbosity=4).assert_ok()
    assert MANAGEMENT not in run.output and READER not in run.output
    assert run.task("hold drain")["changed"] is True
    expected = {
        "unknown": 'node "nosuch" not found',
        "ambiguous": 'node prefix "eeee0000" matched 2 nodes',
        "negative": "drain_deadline must be more than 0 seconds (got -5)",
        "force and deadline": "mutually exclusive",
        "eligible while draining": "Nomad refuses to make a draining node eligible",
        "reader": "ermission denied",
        "timeout": 'timed out after 1 s waiting for the drain of node "spare": 1 allocation(s) left on the node: hold.g[0]',
    }
    for name, text in expected.items():
        result = run.task(name)
        assert result["_status"] in ("failed", "ignored") and text in result["msg"] and "\n" not in result["msg"], (name, result)
    assert "amb-1" in run.task("ambiguous")["msg"] and "amb-2" in run.task("ambiguous")["msg"]
    assert run.task("still draining")["nodes"][0]["DrainStrategy"] is not None
    cancel = run.task("cancel")
    assert cancel["changed"] is True and cancel["node"]["SchedulingEligibility"] == "eligible"
    assert cancel["node"]["LastDrain"]["Status"] == "canceled"
    force = run.task("force")
    assert force["changed"] is True and force["node"]["LastDrain"]["Status"] == "complete"
    assert run.task("force again")["changed"] is False
