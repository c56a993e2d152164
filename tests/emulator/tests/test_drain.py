# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Client nodes, eligibility and drains: reference nomad-deployments-nodes-behaviour.md, Part B (sections named
per test). Each drain test has its own emulator of scenarios/drain.yml (node-a holds 8 virtual allocations of two
jobs with max_parallel 2 and min_healthy_time 300ms, and one process-backed scenario job); waits are blocking
queries, never sleeps."""
from __future__ import annotations

import time

import pytest
from conftest import Api, blocking_until
from jobfiles import parse, register

NODE_A = "aaaa0000-0000-4000-8000-00000000000a"
NODE_B = "bbbb0000-0000-4000-8000-00000000000b"
SPARE = "dddd0000-0000-4000-8000-00000000000d"

SYSTEM_HCL = '''job "sys" {
  type = "system"
  group "agent" {
    task "agent" {
      driver = "raw_exec"
      config { command = "/bin/true" }
    }
  }
}
'''

# max_parallel 0: never drained before the deadline (§6.2, derived consequence)
STUCK_HCL = '''job "stuck" {
  group "app" {
    count = 2
    migrate { max_parallel = 0 }
    task "app" {
      driver = "raw_exec"
      config { command = "/bin/true" }
    }
  }
}
'''


@pytest.fixture
def api(emulator_factory):
    return Api(emulator_factory("drain.yml"))


@pytest.fixture(scope="module")
def shared_api(module_emulators):
    """For tests that do not drain node-a."""
    return Api(module_emulators("drain.yml"))


@pytest.fixture(scope="module")
def intent_api(intent_emulator):
    return Api(intent_emulator, token="00000000-0000-4000-8000-000000000001")


# --- helpers ---------------------------------------------------------------------------------------
def node(api, node_id: str = NODE_A) -> dict:
    response = api.get(f"/v1/node/{node_id}")
    assert response.status_code == 200, response.text
    return response.json()


def drain(api, spec, node_id: str = NODE_A, **body) -> dict:
    response = api.post(f"/v1/node/{node_id}/drain", json={"DrainSpec": spec, **body})
    assert response.status_code == 200, response.text
    return response.json()


def wait_drain_done(api, node_id: str = NODE_A) -> dict:
    return blocking_until(api, f"/v1/node/{node_id}", lambda body: body["DrainStrategy"] is None,
                          "the drain to complete")[-1]


def eligibility(api, value: str, node_id: str = NODE_A):
    return api.post(f"/v1/node/{node_id}/eligibility", json={"Eligibility": value})


def on_node(api, node_id: str = NODE_A) -> list:
    response = api.get(f"/v1/node/{node_id}/allocations")
    assert response.status_code == 200, response.text
    return response.json()


def register_hcl(api, hcl: str) -> None:
    register(api, parse(api, hcl))


# --- reads ---------------------------------------------------------------------------------------------
def test_node_list_and_read_carry_node_fields(shared_api):
    """§5.2 (stub fields, filter on the full node, prefix, `os`), §5.3 (full node, Attributes, Meta, Events, Drain)."""
    stubs = shared_api.get("/v1/nodes").json()
    assert [stub["Name"] for stub in stubs] == ["node-a", "node-b", "node-c", "spare"]
    first = stubs[0]
    assert (first["Address"], first["NodeClass"], first["NodePool"], first["Drain"], first["SchedulingEligibility"],
            first["Status"], first["LastDrain"]) == ("10.0.0.1", "web", "default", False, "eligible", "ready", None)
    assert stubs[3]["NodePool"] == "spare"
    full = node(shared_api)
    assert full["Attributes"]["unique.network.ip-address"] == "10.0.0.1" and full["HTTPAddr"] == "10.0.0.1:4646"
    assert full["Meta"] == {"rack": "r1"} and full["DrainStrategy"] is None and full["SecretID"] == ""
    assert (full["Events"][0]["Message"], full["Events"][0]["Subsystem"]) == ("Node registered", "Cluster")
    by_meta = shared_api.get("/v1/nodes", params={"filter": 'Meta.rack == "r2"'}).json()
    assert [stub["Name"] for stub in by_meta] == ["node-b"]
    by_attribute = shared_api.get("/v1/nodes", params={"filter": 'Attributes["unique.network.ip-address"] == "10.0.0.3"'})
    assert [stub["Name"] for stub in by_attribute.json()] == ["node-c"]
    assert [stub["Name"] for stub in shared_api.get("/v1/nodes", params={"prefix": "bbbb"}).json()] == ["node-b"]
    with_os = shared_api.get("/v1/nodes", params={"os": "true"}).json()
    assert with_os[0]["Attributes"] == {"os.name": "ubuntu"}
    bad = shared_api.get("/v1/nodes", params={"os": "yes"})
    assert (bad.status_code, bad.text) == (400, 'Failed to parse node list fields: Failed to parse value of "os" (yes) '
                                                'as a bool: strconv.ParseBool: parsing "yes": invalid syntax')


def test_node_id_lookups_and_node_allocations(shared_api):
    """§5.1 (exact IDs: short -> 500 memdb text; unknown GET 404), §5.6 (full allocations, unknown node -> [])."""
    short = shared_api.get("/v1/node/aaaa0000")
    assert (short.status_code, short.text) == (500, "node lookup failed: index error: UUID must be 36 characters")
    missing = shared_api.get("/v1/node/eeee0000-0000-4000-8000-00000000000e")
    assert (missing.status_code, missing.text) == (404, "node not found")
    allocs = on_node(shared_api)
    assert len(allocs) == 9 and all(alloc["NodeID"] == NODE_A and "Job" in alloc for alloc in allocs)
    assert on_node(shared_api, "aaaa0000") == [] and on_node(shared_api, NODE_A.upper()) != []
    assert shared_api.get(f"/v1/node/{NODE_A}/allocations").headers["X-Nomad-Index"] == str(
        max(alloc["ModifyIndex"] for alloc in allocs))


def test_eligibility_on_off(shared_api):
    """§5.5: ineligible/eligible with events and the node's index; repeating is 200 with zeros; texts."""
    before = node(shared_api, SPARE)
    response = eligibility(shared_api, "ineligible", SPARE)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["NodeModifyIndex"] == result["Index"] > before["ModifyIndex"] and result["EvalIDs"] is None
    after = node(shared_api, SPARE)
    assert (after["SchedulingEligibility"], after["ModifyIndex"]) == ("ineligible", result["Index"])
    assert after["Events"][-1]["Message"] == "Node marked as ineligible for scheduling"
    again = eligibility(shared_api, "ineligible", SPARE)
    assert again.json() == {"NodeModifyIndex": 0, "EvalIDs": None, "EvalCreateIndex": 0, "Index": 0}
    assert again.headers["X-Nomad-Index"] == "0"
    assert eligibility(shared_api, "eligible", SPARE).status_code == 200
    assert node(shared_api, SPARE)["Events"][-1]["Message"] == "Node marked as eligible for scheduling"
    bad = eligibility(shared_api, "maybe", SPARE)
    assert (bad.status_code, bad.text) == (500, 'invalid scheduling eligibility "maybe"')
    unknown = eligibility(shared_api, "eligible", "eeee0000-0000-4000-8000-00000000000e")
    assert (unknown.status_code, unknown.text) == (500, "node not found")
    empty = shared_api.post(f"/v1/node/{SPARE}/eligibility", data=b"")
    assert (empty.status_code, empty.text) == (400, "Request body is empty")
    assert shared_api.get(f"/v1/node/{SPARE}/eligibility").status_code == 405


def test_node_index_moves_only_when_the_node_changes(shared_api):
    """§0 (blocking queries: return when the index is strictly greater, else at the wait with the same index),
    §5.3 (X-Nomad-Index = the node's ModifyIndex), §5.2 (the list's index = the nodes table index)."""
    a_index = shared_api.get(f"/v1/node/{NODE_A}").headers["X-Nomad-Index"]
    spare_index = shared_api.get(f"/v1/node/{SPARE}").headers["X-Nomad-Index"]
    list_index = shared_api.get("/v1/nodes").headers["X-Nomad-Index"]
    changed = eligibility(shared_api, "ineligible", SPARE).json()["Index"]
    try:
        woken = shared_api.get(f"/v1/node/{SPARE}", params={"index": spare_index, "wait": "30s"})
        assert woken.headers["X-Nomad-Index"] == str(changed) and woken.json()["ModifyIndex"] == changed
        listed = shared_api.get("/v1/nodes", params={"index": list_index, "wait": "30s"})
        assert listed.headers["X-Nomad-Index"] == str(changed)
        unchanged = shared_api.get(f"/v1/node/{NODE_A}", params={"index": a_index, "wait": "200ms"})
        assert unchanged.headers["X-Nomad-Index"] == a_index
    finally:
        eligibility(shared_api, "eligible", SPARE)


def test_ineligible_node_gets_no_placements(shared_api):
    """§5.3 (eligibility), §5.5: the scheduler skips ineligible nodes."""
    for node_id in (NODE_A, "cccc0000-0000-4000-8000-00000000000c"):
        assert eligibility(shared_api, "ineligible", node_id).status_code == 200
    try:
        register_hcl(shared_api, STUCK_HCL.replace('"stuck"', '"placed"'))
        allocs = shared_api.get("/v1/job/placed/allocations").json()
        assert {alloc["NodeID"] for alloc in allocs} == {NODE_B}
    finally:
        for node_id in (NODE_A, "cccc0000-0000-4000-8000-00000000000c"):
            eligibility(shared_api, "eligible", node_id)


def test_drain_request_errors(shared_api):
    """§0 (body decoding), §5.1, §5.4: texts and codes of the drain endpoint."""
    empty = shared_api.post(f"/v1/node/{SPARE}/drain", data=b"")
    assert (empty.status_code, empty.text) == (400, "Request body is empty")
    typed = shared_api.post(f"/v1/node/{SPARE}/drain", json={"DrainSpec": {"Deadline": "1h"}})
    assert (typed.status_code, typed.text) == (400, "json: cannot unmarshal string into Go struct field "
                                                    "NodeUpdateDrainRequest.DrainSpec.Deadline of type time.Duration")
    unknown = shared_api.post("/v1/node/eeee0000-0000-4000-8000-00000000000e/drain", json={})
    assert (unknown.status_code, unknown.text) == (500, "node not found")
    short = shared_api.post("/v1/node/eeee/drain", json={})
    assert (short.status_code, short.text) == (500, "node lookup failed: index error: UUID must be 36 characters")
    assert shared_api.get(f"/v1/node/{SPARE}/drain").status_code == 405
    # a cancel on a node that is not draining: no event, no LastDrain (§5.4)
    assert drain(shared_api, None, SPARE)["Index"] > 0
    assert node(shared_api, SPARE)["LastDrain"] is None


# --- drains ----------------------------------------------------------------------------------------------
def in_flight(allocs: list) -> dict:
    """Per group: replacements placed by the drain that have no health verdict yet."""
    counts = {}
    for alloc in allocs:
        if alloc["JobID"].startswith("vjob") and alloc["NodeID"] != NODE_A and alloc["DesiredStatus"] == "run":
            key = alloc["JobID"]
            waiting = not alloc["DeploymentStatus"] or alloc["DeploymentStatus"].get("Healthy") is None
            counts[key] = counts.get(key, 0) + int(waiting)
    return counts


def replacements(allocs: list) -> list:
    return [alloc for alloc in allocs if alloc["JobID"].startswith("vjob") and alloc["NodeID"] != NODE_A]


def peak_in_flight(placed: list) -> dict:
    """From the index history: per job, the most replacements placed (CreateIndex) and not yet given their health
    verdict (DeploymentStatus.ModifyIndex) at any one index."""
    peaks = {}
    for alloc in placed:
        at = alloc["CreateIndex"]
        waiting = sum(1 for other in placed if other["JobID"] == alloc["JobID"]
                      and other["CreateIndex"] <= at < other["DeploymentStatus"]["ModifyIndex"])
        peaks[alloc["JobID"]] = max(peaks.get(alloc["JobID"], 0), waiting)
    return peaks


def test_drain_moves_max_parallel_at_a_time_and_completes(api):
    """§5.4 (strategy, events, LastDrain), §6.2 (max_parallel per group), §6.3 (system last, completion, stays
    ineligible), §7 (Migrate, stop description, PreviousAllocation/NextAllocation), §8.2 (watching allocations)."""
    register_hcl(api, SYSTEM_HCL)
    system_on_a = [alloc for alloc in on_node(api) if alloc["JobID"] == "sys"]
    assert len(system_on_a) == 1
    result = drain(api, {"Deadline": 0}, Meta={"message": "maintenance"})
    draining = node(api)
    assert draining["Drain"] is True and draining["SchedulingEligibility"] == "ineligible"
    assert draining["DrainStrategy"]["Deadline"] == 0 and draining["DrainStrategy"]["ForceDeadline"] is None
    assert draining["LastDrain"]["Status"] == "draining" and draining["ModifyIndex"] == result["Index"]
    refused = eligibility(api, "eligible")
    assert (refused.status_code, refused.text) == (
        500, "can not set node's scheduling eligibility to eligible while it is draining")
    snapshots = blocking_until(api, "/v1/allocations", lambda allocs: all(
        alloc["DesiredStatus"] == "stop" for alloc in allocs if alloc["NodeID"] == NODE_A
        and alloc["JobID"] != "sys"), "the allocations to move")
    for allocs in snapshots:
        for job, count in in_flight(allocs).items():
            assert count <= 2, f"{job}: {count} replacements in flight (max_parallel 2)"
    healthy = blocking_until(api, "/v1/allocations", lambda allocs: all(
        alloc["DeploymentStatus"] for alloc in replacements(allocs)), "the replacements' health")[-1]
    assert peak_in_flight(replacements(healthy)) == {"vjob-0": 2, "vjob-1": 2}
    done = wait_drain_done(api)
    assert done["SchedulingEligibility"] == "ineligible" and done["Drain"] is False
    assert [event["Message"] for event in done["Events"]] == ["Node registered", "Node drain strategy set",
                                                              "Node drain complete"]
    assert done["Events"][-1]["Details"] is None
    last = done["LastDrain"]
    assert (last["Status"], last["Meta"], last["AccessorID"]) == ("complete", {"message": "maintenance"},
                                                                  "token:acls-disabled")
    old = [alloc for alloc in on_node(api) if alloc["JobID"] != "sys"]
    assert len(old) == 9 and all(alloc["DesiredStatus"] == "stop" and alloc["DesiredTransition"]["Migrate"]
                                 and alloc["DesiredDescription"] == "alloc is being migrated" for alloc in old)
    system = api.allocation(system_on_a[0]["ID"])
    assert (system["DesiredStatus"], system["DesiredDescription"]) == ("stop", "alloc not needed as node is tainted")
    assert system["ModifyIndex"] > max(alloc["ModifyIndex"] for alloc in old if alloc["JobID"].startswith("vjob"))
    for alloc in old:
        replacement = api.allocation(alloc["NextAllocation"])
        assert replacement["PreviousAllocation"] == alloc["ID"] and replacement["Name"] == alloc["Name"]
        assert replacement["NodeID"] != NODE_A
    evals = api.get("/v1/job/proc/evaluations").json()
    assert [evaluation["TriggeredBy"] for evaluation in evals] == ["node-drain"]


def test_drain_deadline_force_stops_the_rest(api):
    """§6.2 (max_parallel 0 waits for the deadline), §6.4 (deadline: everything left moves at once, event detail
    deadline_reached), §5.4 (ForceDeadline = now + Deadline)."""
    register_hcl(api, STUCK_HCL)
    stuck = [alloc for alloc in on_node(api) if alloc["JobID"] == "stuck"]
    assert len(stuck) == 2
    before = time.time()
    drain(api, {"Deadline": 2_000_000_000})
    strategy = node(api)["DrainStrategy"]
    assert strategy["ForceDeadline"] is not None
    done = wait_drain_done(api)
    assert time.time() - before >= 1.9
    assert done["Events"][-1]["Message"] == "Node drain complete"
    assert done["Events"][-1]["Details"] == {"deadline_reached": "true"}
    assert done["LastDrain"]["Status"] == "complete"
    for alloc in stuck:
        moved = api.allocation(alloc["ID"])
        assert moved["DesiredTransition"]["Migrate"] is True and moved["DesiredStatus"] == "stop"
        assert api.allocation(moved["NextAllocation"])["NodeID"] != NODE_A


def test_force_drain_moves_everything_at_once(api):
    """§5.4 (negative Deadline = force, no ForceDeadline), §6.4 (fires immediately)."""
    register_hcl(api, STUCK_HCL)
    drain(api, {"Deadline": -1})
    done = wait_drain_done(api)
    assert done["Events"][-1]["Details"] == {"deadline_reached": "true"}
    assert all(alloc["DesiredStatus"] == "stop" for alloc in on_node(api))


def test_drain_ignoring_system_jobs_leaves_them_running(api):
    """§6.3: with IgnoreSystemJobs the system allocation keeps running on the ineligible node."""
    register_hcl(api, SYSTEM_HCL)
    drain(api, {"Deadline": 0, "IgnoreSystemJobs": True})
    done = wait_drain_done(api)
    assert done["SchedulingEligibility"] == "ineligible"
    left = [alloc for alloc in on_node(api) if alloc["DesiredStatus"] == "run"]
    assert [(alloc["JobID"], alloc["ClientStatus"]) for alloc in left] == [("sys", "running")]


def test_cancel_drain_with_mark_eligible(api):
    """§5.4 (update keeps StartedAt and says "updated"; cancel: "Node drain disabled", LastDrain canceled, MarkEligible),
    §6.4 (marked allocations stay marked), §5.5 (refusal only while draining)."""
    register_hcl(api, STUCK_HCL)
    drain(api, {"Deadline": 0})
    started = node(api)["DrainStrategy"]["StartedAt"]
    drain(api, {"Deadline": 3_600_000_000_000}, Meta={"message": "longer"})
    updated = node(api)
    assert updated["DrainStrategy"]["StartedAt"] == started and updated["DrainStrategy"]["ForceDeadline"]
    assert updated["Events"][-1]["Message"] == "Node drain strategy updated"
    blocking_until(api, f"/v1/node/{NODE_A}/allocations", lambda allocs: all(
        alloc["DesiredStatus"] == "stop" for alloc in allocs if alloc["JobID"] != "stuck"), "the movable allocations")
    drain(api, None, MarkEligible=True, Meta={"cancel_message": "done"})
    cancelled = node(api)
    assert cancelled["DrainStrategy"] is None and cancelled["SchedulingEligibility"] == "eligible"
    assert cancelled["Events"][-1]["Message"] == "Node drain disabled"
    assert (cancelled["LastDrain"]["Status"], cancelled["LastDrain"]["Meta"]) == ("canceled", {"cancel_message": "done"})
    assert [alloc["DesiredStatus"] for alloc in on_node(api) if alloc["JobID"] == "stuck"] == ["run", "run"]
    assert eligibility(api, "eligible").json()["Index"] == 0


def test_node_writes_need_node_write(intent_api):
    """§5.1 (node:read for reads, node:write for eligibility and drain -> 403), §5.4 (AccessorID `token:<accessor>`
    with ACLs on), §6.1 (a node without drainable allocations completes at once)."""
    reader = Api(intent_api.emulator, token="00000000-0000-4000-8000-000000000002")    # node: read
    no_node = Api(intent_api.emulator, token="00000000-0000-4000-8000-000000000003")
    node_2 = "aa22c0de-0000-4000-8000-000000000002"
    assert reader.get(f"/v1/node/{node_2}").status_code == 200
    for answer in (eligibility(reader, "ineligible", node_2),
                   reader.post(f"/v1/node/{node_2}/drain", json={"DrainSpec": {"Deadline": 0}})):
        assert (answer.status_code, answer.text) == (403, "Permission denied")
    denied = no_node.get(f"/v1/node/{node_2}/allocations")
    assert (denied.status_code, denied.text) == (403, "Permission denied")
    drain(intent_api, {"Deadline": 0}, node_2)
    done = wait_drain_done(intent_api, node_2)
    assert done["LastDrain"]["Status"] == "complete"
    accessor = done["LastDrain"]["AccessorID"]
    assert accessor.startswith("token:") and accessor != "token:acls-disabled"


CANARY_HCL = '''job "canaried" {
  group "web" {
    count = 2
    update {
      max_parallel     = 1
      canary           = 1
      min_healthy_time = "100ms"
      healthy_deadline = "30s"
      progress_deadline = "1m"
    }
    migrate {
      min_healthy_time = "100ms"
    }
    task "web" {
      driver = "raw_exec"
      config { command = "/bin/true" }
      env { VERSION = "VERSION_VALUE" }
    }
  }
}
'''


def test_drain_replacement_joins_the_active_deployment(api):
    """§7: a replacement placed while the job's deployment is active joins it (PlacedAllocs+1, DeploymentID);
    the replacement of a canary stays a canary (appended to PlacedCanaries) and its health comes from the group's
    update block (§3.5), not from migrate."""
    register_hcl(api, CANARY_HCL.replace("VERSION_VALUE", "1"))
    blocking_until(api, "/v1/job/canaried/deployment", lambda dep: dep and dep["Status"] == "successful",
                   "the first deployment")
    register_hcl(api, CANARY_HCL.replace("VERSION_VALUE", "2"))
    deployment = blocking_until(api, "/v1/job/canaried/deployment", lambda dep: dep and dep["JobVersion"] == 1 and
                                dep["TaskGroups"]["web"]["HealthyAllocs"] == 1, "a healthy canary")[-1]
    group = deployment["TaskGroups"]["web"]
    canary = api.allocation(group["PlacedCanaries"][0])
    drain(api, {"Deadline": 0}, node_id=canary["NodeID"])
    wait_drain_done(api, canary["NodeID"])
    moved = api.allocation(canary["ID"])
    assert (moved["DesiredStatus"], moved["DesiredDescription"]) == ("stop", "alloc is being migrated")
    replacement = api.allocation(moved["NextAllocation"])
    assert replacement["DeploymentID"] == deployment["ID"] and replacement["DeploymentStatus"]["Canary"] is True
    assert replacement["NodeID"] != canary["NodeID"] and replacement["Job"]["Version"] == 1
    after = blocking_until(api, f"/v1/deployment/{deployment['ID']}",
                           lambda dep: dep["TaskGroups"]["web"]["HealthyAllocs"] == 2, "the replacement's health")[-1]
    group = after["TaskGroups"]["web"]
    assert group["PlacedCanaries"] == [canary["ID"], replacement["ID"]]
    assert group["PlacedAllocs"] == 2 and after["Status"] == "running"  # still waiting for the promotion
    assert api.allocation(replacement["ID"])["DeploymentStatus"]["Healthy"] is True
