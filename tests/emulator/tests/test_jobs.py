# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Register, plan, read, stop/purge, evaluations and placement of jobs: reference nomad-jobs-behaviour.md
(sections named per test). One emulator of scenarios/jobs.yml (virtual allocations) for the module; every
test uses its own job ID."""
from __future__ import annotations

import copy

from conftest import MANAGEMENT, Api
from jobfiles import parse, register, web_hcl

READER = "00000000-0000-4000-8000-000000000002"
WRITER = "00000000-0000-4000-8000-000000000004"


def get_job(api, job_id: str) -> dict:
    response = api.get(f"/v1/job/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def live_allocs(api, job_id: str) -> list:
    response = api.get(f"/v1/job/{job_id}/allocations")
    assert response.status_code == 200, response.text
    return [alloc for alloc in response.json() if alloc["DesiredStatus"] == "run"]


def plan(api, job: dict) -> dict:
    response = api.post(f"/v1/job/{job['ID']}/plan", json={"Job": job, "Diff": True})
    assert response.status_code == 200, response.text
    return response.json()


def test_register_creates_version_0_and_places_allocations(jobs_api):
    """§2.6 (new job: JobModifyIndex = EvalCreateIndex = Index, X-Nomad-Index), §4.1, §8.1 (complete eval)."""
    response = jobs_api.put("/v1/jobs", json={"Job": parse(jobs_api, web_hcl("reg"))})
    assert response.status_code == 200, response.text
    result = response.json()
    assert list(result) == ["EvalID", "EvalCreateIndex", "JobModifyIndex", "Warnings", "Index", "LastContact",
                            "KnownLeader", "NextToken"]
    assert result["JobModifyIndex"] == result["EvalCreateIndex"] == result["Index"]
    assert response.headers["X-Nomad-Index"] == str(result["Index"])
    job = get_job(jobs_api, "reg")
    assert (job["Version"], job["JobModifyIndex"], job["Status"]) == (0, result["JobModifyIndex"], "running")
    assert job["Datacenters"] == ["dc1"] and job["NodePool"] == "default" and job["Stop"] is False
    evaluation = jobs_api.get(f"/v1/evaluation/{result['EvalID']}").json()
    assert (evaluation["Status"], evaluation["TriggeredBy"], evaluation["Type"]) == ("complete", "job-register",
                                                                                     "service")
    assert "FailedTGAllocs" not in evaluation and "NodeID" not in evaluation  # zero fields omitted
    allocs = live_allocs(jobs_api, "reg")
    assert sorted(alloc["Name"] for alloc in allocs) == ["reg.web[0]", "reg.web[1]"]
    assert {alloc["NodeName"] for alloc in allocs} <= {"node-1", "node-2"}  # dc1 only
    by_eval = jobs_api.get(f"/v1/evaluation/{result['EvalID']}/allocations").json()
    assert sorted(alloc["ID"] for alloc in by_eval) == sorted(alloc["ID"] for alloc in allocs)
    # the existing allocation endpoints serve them
    alloc = jobs_api.allocation(allocs[0]["ID"])
    assert alloc["Job"]["ID"] == "reg" and alloc["ClientStatus"] == "running"
    listed = jobs_api.get("/v1/jobs", params={"prefix": "reg"}).json()
    assert [stub["ID"] for stub in listed] == ["reg"]


def test_unchanged_register_keeps_version_but_creates_eval(jobs_api):
    """§2.7 / §2.6 row "unchanged": same version and JobModifyIndex, new EvalID; reformatted HCL is no change."""
    first = register(jobs_api, parse(jobs_api, web_hcl("same")))
    again = register(jobs_api, parse(jobs_api, web_hcl("same", reformatted=True)))
    assert again["JobModifyIndex"] == first["JobModifyIndex"]
    assert again["EvalID"] != first["EvalID"] and again["EvalCreateIndex"] > first["EvalCreateIndex"]
    assert again["Index"] == again["EvalCreateIndex"]
    assert get_job(jobs_api, "same")["Version"] == 0
    versions = jobs_api.get("/v1/job/same/versions").json()
    assert [version["Version"] for version in versions["Versions"]] == [0]
    evals = jobs_api.get("/v1/job/same/evaluations").json()
    assert {evaluation["ID"] for evaluation in evals} == {first["EvalID"], again["EvalID"]}


def test_reformatted_file_plans_as_no_change(jobs_api):
    """§3.4/§3.6: an unchanged job plans as Diff Type None with `ignore` only (CLI exit 0)."""
    register(jobs_api, parse(jobs_api, web_hcl("fmt")))
    result = plan(jobs_api, parse(jobs_api, web_hcl("fmt", reformatted=True)))
    assert result["Diff"]["Type"] == "None"
    assert result["Diff"]["TaskGroups"][0]["Type"] == "None"
    assert result["Diff"]["TaskGroups"][0]["Updates"] == {"ignore": 2}
    updates = result["Annotations"]["DesiredTGUpdates"]["web"]
    assert (updates["Ignore"], updates["Place"], updates["DestructiveUpdate"]) == (2, 0, 0)
    assert result["JobModifyIndex"] == get_job(jobs_api, "fmt")["JobModifyIndex"] == result["Index"]


def test_changed_env_is_an_edited_task_and_a_destructive_update(jobs_api):
    """§3.4 (Edited task, `Env[FOO]` field, `forces create/destroy update`), §3.3 DesiredTGUpdates, §2.3 n."""
    register(jobs_api, parse(jobs_api, web_hcl("envjob")))
    before = {alloc["ID"] for alloc in live_allocs(jobs_api, "envjob")}
    changed = parse(jobs_api, web_hcl("envjob").replace('FOO = "bar"', 'FOO = "baz"'))
    result = plan(jobs_api, changed)
    diff = result["Diff"]
    assert diff["Type"] == "Edited" and diff["Fields"] is None
    group = diff["TaskGroups"][0]
    assert (group["Type"], group["Updates"]) == ("Edited", {"create/destroy update": 2})
    task = group["Tasks"][0]
    assert (task["Type"], task["Name"], task["Annotations"]) == ("Edited", "server",
                                                                 ["forces create/destroy update"])
    assert task["Fields"] == [{"Type": "Edited", "Name": "Env[FOO]", "Old": "bar", "New": "baz", "Annotations": None}]
    updates = result["Annotations"]["DesiredTGUpdates"]["web"]
    assert (updates["DestructiveUpdate"], updates["Place"], updates["Ignore"]) == (2, 0, 0)
    # registering it replaces both allocations with version 1 ones
    outcome = register(jobs_api, changed)
    job = get_job(jobs_api, "envjob")
    assert (job["Version"], job["JobModifyIndex"]) == (1, outcome["JobModifyIndex"])
    after = live_allocs(jobs_api, "envjob")
    assert {alloc["JobVersion"] for alloc in after} == {1} and not before & {alloc["ID"] for alloc in after}
    replaced = [alloc for alloc in jobs_api.get("/v1/job/envjob/allocations").json() if alloc["ID"] in before]
    assert {(alloc["DesiredStatus"], alloc["ClientStatus"]) for alloc in replaced} == {("stop", "complete")}
    assert {alloc["NextAllocation"] for alloc in replaced} == {alloc["ID"] for alloc in after}


def test_plan_of_a_new_job_and_count_change(jobs_api):
    """§3.4 (new job: Added, `forces create`; Count field annotations) and §3.3 (JobModifyIndex 0 for a new job)."""
    job = parse(jobs_api, web_hcl("fresh"))
    result = plan(jobs_api, job)
    assert (result["JobModifyIndex"], result["Diff"]["Type"]) == (0, "Added")
    group = result["Diff"]["TaskGroups"][0]
    assert group["Type"] == "Added" and group["Updates"] == {"create": 2}
    assert group["Tasks"][0]["Annotations"] == ["forces create"]
    assert live_allocs(jobs_api, "fresh") == []  # plan writes nothing
    register(jobs_api, job)
    bigger = copy.deepcopy(job)
    bigger["TaskGroups"][0]["Count"] = 3
    group = plan(jobs_api, bigger)["Diff"]["TaskGroups"][0]
    assert group["Fields"] == [{"Type": "Edited", "Name": "Count", "Old": "2", "New": "3",
                                "Annotations": ["forces create"]}]
    # a new version whose tasks did not change: the running allocations are updated in place
    assert group["Updates"] == {"create": 1, "in-place update": 2}


def test_enforce_index(jobs_api):
    """§2.3 g: the three EnforceIndex errors are 500s with Nomad's texts; the right index registers."""
    job = parse(jobs_api, web_hcl("cas"))
    missing = jobs_api.post("/v1/jobs", json={"Job": job, "EnforceIndex": True, "JobModifyIndex": 7})
    assert (missing.status_code, missing.text) == (500, "Enforcing job modify index 7: job does not exist")
    created = register(jobs_api, job, EnforceIndex=True, JobModifyIndex=0)
    again = jobs_api.post("/v1/jobs", json={"Job": job, "EnforceIndex": True, "JobModifyIndex": 0})
    assert (again.status_code, again.text) == (500, "Enforcing job modify index 0: job already exists")
    stale = jobs_api.post("/v1/jobs", json={"Job": job, "EnforceIndex": True, "JobModifyIndex": 1})
    assert (stale.status_code, stale.text) == (
        500, f"Enforcing job modify index 1: job exists with conflicting job modify index: {created['JobModifyIndex']}")
    register(jobs_api, job, EnforceIndex=True, JobModifyIndex=created["JobModifyIndex"])


def test_preserve_counts(jobs_api):
    """§2.3 j: PreserveCounts keeps the stored count, so a count-only difference is no change (1.10.5)."""
    job = parse(jobs_api, web_hcl("keep"))
    first = register(jobs_api, job)
    smaller = copy.deepcopy(job)
    smaller["TaskGroups"][0]["Count"] = 1
    kept = register(jobs_api, smaller, PreserveCounts=True)
    assert kept["JobModifyIndex"] == first["JobModifyIndex"]
    assert get_job(jobs_api, "keep")["TaskGroups"][0]["Count"] == 2
    register(jobs_api, smaller)
    assert get_job(jobs_api, "keep")["Version"] == 1
    assert len(live_allocs(jobs_api, "keep")) == 1


def test_submission_and_versions(jobs_api):
    """§4.4 (submission per version, inherited by a new version without one; 400/404 texts) and §4.3."""
    hcl = web_hcl("src")
    submission = {"Source": hcl, "Format": "hcl2", "Variables": "count = 2\n"}
    register(jobs_api, parse(jobs_api, hcl), Submission=submission)
    stored = jobs_api.get("/v1/job/src/submission", params={"version": "0"}).json()
    assert stored == {**submission, "VariableFlags": None, "Namespace": "default", "JobID": "src", "Version": 0,
                      "JobModifyIndex": get_job(jobs_api, "src")["JobModifyIndex"]}
    changed = parse(jobs_api, hcl, "count = 1")
    register(jobs_api, changed)
    assert jobs_api.get("/v1/job/src/submission", params={"version": "1"}).json()["Source"] == hcl
    bad = jobs_api.get("/v1/job/src/submission")
    assert (bad.status_code, bad.text) == (400, "Unable to parse job submission version parameter")
    missing = jobs_api.get("/v1/job/src/submission", params={"version": "9"})
    assert (missing.status_code, missing.text) == (404, "job source not found")
    versions = jobs_api.get("/v1/job/src/versions", params={"diffs": "true"}).json()
    assert [version["Version"] for version in versions["Versions"]] == [1, 0]
    assert versions["Diffs"][0]["TaskGroups"][0]["Fields"][0]["Name"] == "Count"
    none = jobs_api.get("/v1/job/nosuch/versions")
    assert (none.status_code, none.text) == (404, "job versions not found")


def test_register_request_errors(jobs_api):
    """§2.2 (400s in order), §2.4 (validation 500 multierror text), §0.1 (405)."""
    job = parse(jobs_api, web_hcl("errs"))
    cases = [({}, "Job must be specified"), ({"Job": {"Name": "x"}}, "Job ID hasn't been provided"),
             ({"Job": job, "EvalPriority": 101}, "Eval priority must be between 1 and 100 inclusively")]
    for body, text in cases:
        response = jobs_api.post("/v1/jobs", json=body)
        assert (response.status_code, response.text) == (400, text)
    mismatch = jobs_api.post("/v1/job/other", json={"Job": job})
    assert (mismatch.status_code, mismatch.text) == (400, "Job ID does not match name")
    no_driver = copy.deepcopy(job)
    no_driver["TaskGroups"][0]["Tasks"][0]["Driver"] = ""
    invalid = jobs_api.post("/v1/jobs", json={"Job": no_driver})
    assert (invalid.status_code, invalid.text) == (500, (
        "1 error occurred:\n\t* Task group web validation failed: 1 error occurred:\n\t* Task server validation "
        "failed: 1 error occurred:\n\t* Missing task driver\n\n\n\n\n\n"))
    assert jobs_api.request("PATCH", "/v1/jobs").status_code == 405
    assert jobs_api.request("PATCH", "/v1/job/errs").text == "Invalid method"


def test_blocked_evaluation_reports_exhausted_memory(jobs_api):
    """§8.1 (FailedTGAllocs, BlockedEval `blocked`/`queued-allocs`), §3.3 AllocMetric (DimensionExhausted)."""
    job = parse(jobs_api, web_hcl("big"))
    job["NodePool"] = "small"  # two nodes with 1024 MB each
    job["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = 700
    job["TaskGroups"][0]["Count"] = 3
    planned = plan(jobs_api, job)
    assert planned["FailedTGAllocs"]["web"]["DimensionExhausted"] == {"memory": 2}
    result = register(jobs_api, job)
    evaluation = jobs_api.get(f"/v1/evaluation/{result['EvalID']}").json()
    assert evaluation["Status"] == "complete"
    metric = evaluation["FailedTGAllocs"]["web"]
    assert (metric["NodesEvaluated"], metric["NodesExhausted"]) == (2, 2)
    assert metric["DimensionExhausted"] == {"memory": 2}
    assert metric["NodesAvailable"] == {"dc1": 2} and (metric["NodesInPool"], metric["NodePool"]) == (2, "small")
    blocked = jobs_api.get(f"/v1/evaluation/{evaluation['BlockedEval']}").json()
    assert (blocked["Status"], blocked["TriggeredBy"], blocked["PreviousEval"]) == ("blocked", "queued-allocs",
                                                                                    result["EvalID"])
    assert blocked["StatusDescription"] == "created to place remaining allocations"
    assert len(live_allocs(jobs_api, "big")) == 2
    jobs_api.request("DELETE", "/v1/job/big", params={"purge": "true"})  # frees the small pool


def test_blocked_evaluation_runs_again_when_capacity_frees(jobs_api):
    """§8.1: a blocked eval stays `blocked` until capacity appears, then is processed; superseded ones are
    `canceled`."""
    hog = parse(jobs_api, web_hcl("hog"))
    hog["NodePool"] = "small"
    hog["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = 700
    register(jobs_api, hog)
    waiter = copy.deepcopy(hog)
    waiter["ID"] = waiter["Name"] = "waiter"
    waiter["TaskGroups"][0]["Count"] = 1
    first = jobs_api.get(f"/v1/evaluation/{register(jobs_api, waiter)['EvalID']}").json()
    again = jobs_api.get(f"/v1/evaluation/{register(jobs_api, waiter)['EvalID']}").json()
    assert jobs_api.get(f"/v1/evaluation/{first['BlockedEval']}").json()["Status"] == "canceled"
    assert live_allocs(jobs_api, "waiter") == []
    jobs_api.request("DELETE", "/v1/job/hog", params={"purge": "true"})
    unblocked = jobs_api.get(f"/v1/evaluation/{again['BlockedEval']}").json()
    assert unblocked["Status"] == "complete" and "FailedTGAllocs" not in unblocked
    assert [alloc["EvalID"] for alloc in live_allocs(jobs_api, "waiter")] == [again["BlockedEval"]]
    jobs_api.request("DELETE", "/v1/job/waiter", params={"purge": "true"})


def test_constraint_and_datacenter_filtering(jobs_api):
    """§3.6 metric lines: `Constraint "<c>"` filtered nodes; datacenters select nodes (node-3 is in dc2)."""
    job = parse(jobs_api, web_hcl("pinned"))
    job["Datacenters"] = ["dc1", "dc2"]
    job["TaskGroups"][0]["Count"] = 1
    job["TaskGroups"][0]["Constraints"] = [{"LTarget": "${node.unique.name}", "Operand": "=", "RTarget": "node-3"}]
    register(jobs_api, job)
    assert [alloc["NodeName"] for alloc in live_allocs(jobs_api, "pinned")] == ["node-3"]
    job["ID"] = "nowhere"
    job["TaskGroups"][0]["Constraints"][0]["RTarget"] = "node-9"
    metric = plan(jobs_api, job)["FailedTGAllocs"]["web"]
    assert metric["ConstraintFiltered"] == {"${node.unique.name} = node-9": 3}
    assert (metric["NodesFiltered"], metric["NodesAvailable"]) == (3, {"dc1": 2, "dc2": 1})


def test_stop_and_purge(jobs_api):
    """§5.2 (stop: new version with Stop, job-deregister eval of type service; purge; unknown job 200 zeros)."""
    register(jobs_api, parse(jobs_api, web_hcl("gone")))
    stopped = jobs_api.request("DELETE", "/v1/job/gone")
    assert stopped.status_code == 200, stopped.text
    result = stopped.json()
    assert result["JobModifyIndex"] == result["EvalCreateIndex"] == result["Index"]
    job = get_job(jobs_api, "gone")
    assert (job["Stop"], job["Version"], job["Status"]) == (True, 1, "dead")
    evaluation = jobs_api.get(f"/v1/evaluation/{result['EvalID']}").json()
    assert (evaluation["TriggeredBy"], evaluation["Type"]) == ("job-deregister", "service")
    assert live_allocs(jobs_api, "gone") == []
    alloc_ids = [alloc["ID"] for alloc in jobs_api.get("/v1/job/gone/allocations").json()]
    purged = jobs_api.request("DELETE", "/v1/job/gone", params={"purge": "true"})
    assert purged.status_code == 200
    assert jobs_api.get("/v1/job/gone").status_code == 404
    # 1.10.5 purge also deletes the job's allocations (version table "Purge")
    assert jobs_api.get("/v1/job/gone/allocations").json() == []
    assert jobs_api.get(f"/v1/allocation/{alloc_ids[0]}").text == "alloc not found"
    nothing = jobs_api.request("DELETE", "/v1/job/gone", params={"purge": "true"})
    assert nothing.status_code == 200 and nothing.headers["X-Nomad-Index"] == "0"
    assert nothing.json()["EvalID"] == "" and nothing.json()["Index"] == 0
    bad = jobs_api.request("DELETE", "/v1/job/gone", params={"purge": "yes"})
    assert (bad.status_code, bad.text) == (
        500, 'Failed to parse value of "purge" (yes) as a bool: strconv.ParseBool: parsing "yes": invalid syntax')


def test_evaluation_not_found_and_unknown_node_pool(jobs_api):
    """§8.1: unknown evaluation -> 404 `eval not found`; §2.4 node-pool validator text."""
    response = jobs_api.get("/v1/evaluation/00000000-0000-4000-8000-00000000dead")
    assert (response.status_code, response.text) == (404, "eval not found")
    job = parse(jobs_api, web_hcl("pool"))
    job["NodePool"] = "gpu"
    response = jobs_api.post("/v1/jobs", json={"Job": job})
    assert (response.status_code, response.text) == (500, '1 error occurred:\n\t* job "pool" is in nonexistent node '
                                                          'pool "gpu"\n\n')


def test_register_and_plan_need_submit_job(jobs_acl_emulator):
    """§2.3 f (register: submit-job, checked after validation), §3 (plan: submit-job), §4 (reads: read-job)."""
    job = parse(Api(jobs_acl_emulator, token=READER), web_hcl("acljob"))
    reader, writer = Api(jobs_acl_emulator, token=READER), Api(jobs_acl_emulator, token=WRITER)
    denied = reader.post("/v1/jobs", json={"Job": job})
    assert (denied.status_code, denied.text) == (403, "Permission denied")
    assert reader.post("/v1/job/acljob/plan", json={"Job": job}).status_code == 403
    result = register(writer, job)
    assert reader.get(f"/v1/evaluation/{result['EvalID']}").status_code == 200
    # §3.5: with ACLs on, planning the unchanged job is Diff None but "in-place update" (NomadTokenID)
    planned = plan(writer, job)
    assert planned["Diff"]["Type"] == "None"
    assert planned["Diff"]["TaskGroups"][0]["Updates"] == {"in-place update": 2}
    assert get_job(reader, "acljob")["NomadTokenID"] != ""  # the submitter's accessor (ACLs on)
    # NomadTokenID is part of the spec: another token re-registering it makes a new version (§2.7)
    register(Api(jobs_acl_emulator, token=MANAGEMENT), job)
    assert get_job(reader, "acljob")["Version"] == 1
    unknown = Api(jobs_acl_emulator, token="00000000-0000-4000-8000-0000000000ff").post("/v1/jobs", json={"Job": job})
    assert unknown.status_code == 403


def test_system_job_runs_once_per_feasible_node(jobs_api):
    """§2.4 (system count > 1 text) and the system scheduler: one allocation per feasible node, kept on re-run."""
    job = parse(jobs_api, web_hcl("agent"))
    job["Type"] = "system"
    job["Datacenters"] = ["*"]
    job["TaskGroups"][0]["Migrate"] = None  # only service jobs may have one (§2.4)
    too_many = jobs_api.post("/v1/jobs", json={"Job": job})
    assert (too_many.status_code, too_many.text) == (
        500, "1 error occurred:\n\t* Job task group web has count 2. Count cannot exceed 1 with system scheduler\n\n")
    job["TaskGroups"][0]["Count"] = 1
    first = register(jobs_api, job)
    nodes = sorted(alloc["NodeName"] for alloc in live_allocs(jobs_api, "agent"))
    assert nodes == ["node-1", "node-2", "node-3"]  # the default pool, every datacenter
    evaluation = jobs_api.get(f"/v1/evaluation/{first['EvalID']}").json()
    assert evaluation["Type"] == "system"
    register(jobs_api, job)
    assert sorted(alloc["NodeName"] for alloc in live_allocs(jobs_api, "agent")) == nodes
    jobs_api.request("DELETE", "/v1/job/agent", params={"purge": "true"})


def test_register_body_keys_are_case_insensitive(jobs_api):
    """§0.2: bodies are decoded by Go's encoding/json, which matches keys case-insensitively."""
    job = parse(jobs_api, web_hcl("lower"))
    body = {"job": {key.lower(): value for key, value in job.items()}, "enforceindex": True, "jobmodifyindex": 0}
    response = jobs_api.post("/v1/jobs", json=body)
    assert response.status_code == 200, response.text
    stored = get_job(jobs_api, "lower")
    assert stored["TaskGroups"][0]["Tasks"][0]["Env"] == {"FOO": "bar"} and stored["Priority"] == 50
    again = jobs_api.post("/v1/jobs", json=body)
    assert (again.status_code, again.text) == (500, "Enforcing job modify index 0: job already exists")


def test_job_evaluations_match_job_id_prefixes_at_1_10(jobs_api):
    """§4.6 and the version table row "Evals of a job (prefix regression)": at 1.10.x
    `/v1/job/<id>/evaluations` also lists evals of jobs whose ID starts with <id>, case-insensitively."""
    mine = register(jobs_api, parse(jobs_api, web_hcl("pre")))
    other = register(jobs_api, parse(jobs_api, web_hcl("Prefixed")))
    listed = {evaluation["ID"] for evaluation in jobs_api.get("/v1/job/pre/evaluations").json()}
    assert {mine["EvalID"], other["EvalID"]} <= listed
    exact = {evaluation["ID"] for evaluation in jobs_api.get("/v1/job/Prefixed/evaluations").json()}
    assert mine["EvalID"] not in exact


def test_validation_order_and_type_rules(jobs_api):
    """§2.3 c (namespace and node-pool validators before Job.Validate) and §2.4 (group texts, priority)."""
    job = parse(jobs_api, web_hcl("rules"))
    job["Type"] = "batch"
    job["TaskGroups"][0]["Update"] = {"MaxParallel": 1}
    job["Priority"] = 101
    response = jobs_api.post("/v1/jobs", json={"Job": job}, params={"namespace": "nope"})
    assert (response.status_code, response.text) == (500, (
        '3 errors occurred:\n\t* job "rules" is in nonexistent namespace "nope"\n'
        '\t* Task group web validation failed: 2 errors occurred:\n\t* Job type "batch" does not allow update block\n'
        '\t* Job type "batch" does not allow migrate block\n\n\n'
        "\t* job priority must be between [1, 100]\n\n"))


def test_summary_counts_allocations_and_queued(jobs_api):
    """§4.5: per-group counts by client status, `Queued` from the blocked eval; 404 `job not found`."""
    job = parse(jobs_api, web_hcl("summ"))
    job["NodePool"] = "small"
    job["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = 700
    job["TaskGroups"][0]["Count"] = 3
    register(jobs_api, job)
    summary = jobs_api.post("/v1/job/summ/summary").json()  # no method check
    assert summary["Summary"] == {"web": {"Queued": 1, "Complete": 0, "Failed": 0, "Running": 2, "Starting": 0,
                                          "Lost": 0, "Unknown": 0}}
    assert summary["Children"] == {"Pending": 0, "Running": 0, "Dead": 0}
    missing = jobs_api.get("/v1/job/nosuch/summary")
    assert (missing.status_code, missing.text) == (404, "job not found")
    jobs_api.request("DELETE", "/v1/job/summ", params={"purge": "true"})


def test_kill_timeout_change_is_an_in_place_update(jobs_api):
    """§3.4 annotations: a KillTimeout-only task change `forces in-place update`; allocations keep their IDs
    and run the new version."""
    job = parse(jobs_api, web_hcl("inplace"))
    register(jobs_api, job)
    before = sorted(alloc["ID"] for alloc in live_allocs(jobs_api, "inplace"))
    job["TaskGroups"][0]["Tasks"][0]["KillTimeout"] = 9_000_000_000
    result = plan(jobs_api, job)
    task = result["Diff"]["TaskGroups"][0]["Tasks"][0]
    assert task["Annotations"] == ["forces in-place update"]
    assert task["Fields"] == [{"Type": "Edited", "Name": "KillTimeout", "Old": "5000000000", "New": "9000000000",
                               "Annotations": None}]
    assert result["Diff"]["TaskGroups"][0]["Updates"] == {"in-place update": 2}
    register(jobs_api, job)
    after = live_allocs(jobs_api, "inplace")
    assert sorted(alloc["ID"] for alloc in after) == before and {alloc["JobVersion"] for alloc in after} == {1}
