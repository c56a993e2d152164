# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Deployments of service jobs with an update block, against /work/shared/reference/nomad-deployments-nodes-behaviour.md
(section numbers in each test). Tests wait with blocking queries on the deployment endpoints, never with sleeps."""
from __future__ import annotations

import time

import pytest
from conftest import MANAGEMENT, READ_ONLY, Api, blocking_until
from jobfiles import deployment_until, parse, register, web_hcl

from tests import hcl_jobs

FAST = 'max_parallel = 1\n    min_healthy_time = "100ms"\n    healthy_deadline = "30s"\n    progress_deadline = "1m"'


def job_hcl(job_id: str, *, update: str = FAST, count: int = 2, version: str = "1", command: str = "",
            check: str = "") -> str:
    """A service job; `version` goes into the environment, so changing it is a destructive update."""
    service = f'name = "{job_id}"\nprovider = "nomad"\n{check}' if check else ""
    task = hcl_jobs.task_hcl(command or hcl_jobs.RUNNING, env={"VERSION": version}, kill_timeout="1s")
    return hcl_jobs.job_hcl(job_id, hcl_jobs.group_hcl(task, count=count, update=update, restart="attempts = 0",
                                                       service=service))


@pytest.fixture(scope="module")
def api(module_emulators):
    return Api(module_emulators("deployments.yml"))


def submit(api: Api, hcl: str) -> dict:
    return register(api, parse(api, hcl))


def watch(api: Api, deployment_id: str, predicate, timeout: float = 60.0) -> dict:
    """Blocking queries on /v1/deployment/:id (its ModifyIndex) until predicate(deployment) holds."""
    return blocking_until(api, f"/v1/deployment/{deployment_id}", predicate, f"deployment {deployment_id}", timeout)[-1]


def terminal(deployment: dict) -> bool:
    return deployment["Status"] in ("successful", "failed", "cancelled")


def job_allocs(api: Api, job_id: str) -> list:
    response = api.get(f"/v1/job/{job_id}/allocations")
    assert response.status_code == 200, response.text
    return response.json()


def job(api: Api, job_id: str) -> dict:
    response = api.get(f"/v1/job/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def live(allocs: list, version=None) -> list:
    return [alloc for alloc in allocs if alloc["DesiredStatus"] == "run" and alloc["ClientStatus"] in ("pending", "running")
            and (version is None or alloc["JobVersion"] == version)]


def post(api: Api, path: str, body=None, **kwargs):
    return api.post(path, json=body, **kwargs) if body is not None else api.post(path, data=b"", **kwargs)


def test_first_registration_deploys_and_marks_the_version_stable(api):
    """§3.1 (the first registration creates a deployment; an unchanged re-registration creates none, its eval names
    the latest deployment), §3.3 (successful marks the version Stable), §2.1, §3.4."""
    registered = submit(api, job_hcl("first"))
    deployment = deployment_until(api, "first", terminal)
    assert api.get(f"/v1/evaluation/{registered['EvalID']}").json()["DeploymentID"] == deployment["ID"]
    assert (deployment["Status"], deployment["StatusDescription"]) == ("successful", "Deployment completed successfully")
    group = deployment["TaskGroups"]["web"]
    assert (group["DesiredTotal"], group["PlacedAllocs"], group["HealthyAllocs"], group["UnhealthyAllocs"]) == (2, 2, 2, 0)
    assert (group["DesiredCanaries"], group["PlacedCanaries"], group["Promoted"], group["AutoRevert"]) == (0, None, False, False)
    assert group["ProgressDeadline"] == 60_000_000_000 and group["RequireProgressBy"].endswith("Z")
    assert (deployment["JobVersion"], deployment["IsMultiregion"], deployment["EvalPriority"]) == (0, False, 50)
    assert job(api, "first")["Stable"] is True
    for stub in job_allocs(api, "first"):
        full = api.allocation(stub["ID"])
        assert full["DeploymentID"] == deployment["ID"]
        status = full["DeploymentStatus"]
        assert (status["Healthy"], status["Canary"]) == (True, False) and status["Timestamp"].endswith("Z")
    allocs = api.get(f"/v1/deployment/allocations/{deployment['ID']}").json()
    assert sorted(alloc["ID"] for alloc in allocs) == sorted(alloc["ID"] for alloc in job_allocs(api, "first"))
    again = submit(api, job_hcl("first"))
    assert api.get(f"/v1/evaluation/{again['EvalID']}").json()["DeploymentID"] == deployment["ID"]
    assert [dep["ID"] for dep in api.get("/v1/job/first/deployments").json()] == [deployment["ID"]]


def test_job_without_update_block_has_no_deployment(api):
    """§3.1 emulator rule (README): the SDK's default update block alone keeps the all-at-once replacement."""
    submit(api, web_hcl("plain"))
    response = api.get("/v1/job/plain/deployment")
    assert (response.status_code, response.json()) == (200, None)
    assert api.get("/v1/job/plain/deployments").json() == []
    assert job(api, "plain")["Stable"] is False


def test_rolling_update_replaces_max_parallel_at_a_time(api):
    """§3.3 (destructive updates limited by max_parallel minus allocations without a verdict), §3.4 counters."""
    submit(api, job_hcl("roll", count=3))
    deployment_until(api, "roll", lambda dep: dep["Status"] == "successful")
    submit(api, job_hcl("roll", count=3, version="2"))
    first = deployment_until(api, "roll", lambda dep: dep["JobVersion"] == 1)
    seen_placed = []

    def check_step(deployment: dict) -> bool:
        allocs = job_allocs(api, "roll")
        fresh = live(allocs, 1)
        waiting = [alloc for alloc in fresh if (alloc["DeploymentStatus"] or {}).get("Healthy") is None]
        assert len(waiting) <= 1, waiting
        assert len(live(allocs)) <= 4
        seen_placed.append(deployment["TaskGroups"]["web"]["PlacedAllocs"])
        return terminal(deployment)

    final = watch(api, first["ID"], check_step)
    assert final["Status"] == "successful"
    assert final["TaskGroups"]["web"]["HealthyAllocs"] == 3 and final["TaskGroups"]["web"]["DesiredTotal"] == 3
    assert seen_placed == sorted(seen_placed) and seen_placed[-1] == 3
    old = [alloc for alloc in job_allocs(api, "roll") if alloc["JobVersion"] == 0]
    assert {alloc["DesiredDescription"] for alloc in old} == {"alloc is being updated due to job update"}
    versions = api.get("/v1/job/roll/versions").json()["Versions"]
    assert [(version["Version"], version["Stable"]) for version in versions] == [(1, True), (0, True)]


CANARY = FAST + "\n    canary = 1"


def test_canaries_wait_for_promotion_then_promote_completes(api):
    """§3.2 (canaries beside the old version), §2.4 texts, §1.6 (promote: Canary false, rollout continues), §3.3."""
    submit(api, job_hcl("canary", update=CANARY))
    deployment_until(api, "canary", lambda dep: dep["Status"] == "successful")
    submit(api, job_hcl("canary", update=CANARY, version="2"))
    deployment = deployment_until(api, "canary", lambda dep: dep["JobVersion"] == 1)
    assert deployment["StatusDescription"] == "Deployment is running but requires manual promotion"
    deployment = watch(api, deployment["ID"], lambda dep: dep["TaskGroups"]["web"]["HealthyAllocs"] == 1)
    group = deployment["TaskGroups"]["web"]
    assert (deployment["Status"], group["DesiredCanaries"], len(group["PlacedCanaries"]), group["Promoted"]) == \
        ("running", 1, 1, False)
    allocs = job_allocs(api, "canary")
    assert len(live(allocs, 0)) == 2 and len(live(allocs, 1)) == 1
    canary = api.allocation(group["PlacedCanaries"][0])
    assert canary["DeploymentStatus"]["Canary"] is True and canary["DeploymentStatus"]["Healthy"] is True
    assert canary["Name"] in {alloc["Name"] for alloc in live(allocs, 0)}

    response = post(api, f"/v1/deployment/promote/{deployment['ID']}", {"DeploymentID": deployment["ID"], "All": True})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["EvalID"] and result["RevertedJobVersion"] is None
    assert result["Index"] == result["EvalCreateIndex"] == result["DeploymentModifyIndex"] == \
        int(response.headers["X-Nomad-Index"])
    final = watch(api, deployment["ID"], terminal)
    assert (final["Status"], final["TaskGroups"]["web"]["Promoted"]) == ("successful", True)
    assert api.allocation(canary["ID"])["DeploymentStatus"]["Canary"] is False
    allocs = job_allocs(api, "canary")
    assert len(live(allocs, 1)) == 2 and not live(allocs, 0)
    assert api.get(f"/v1/evaluation/{result['EvalID']}").json()["TriggeredBy"] == "deployment-watcher"


def test_scale_is_refused_during_an_active_deployment(api):
    """nomad-jobs-behaviour.md §6.2: a count change while the job's latest deployment is active is a 400
    `job scaling blocked due to active deployment`; a scaling event without a count is still recorded."""
    submit(api, job_hcl("scaleblock", update=CANARY))
    deployment_until(api, "scaleblock", lambda dep: dep["Status"] == "successful")
    submit(api, job_hcl("scaleblock", update=CANARY, version="2"))
    deployment = deployment_until(api, "scaleblock", lambda dep: dep["JobVersion"] == 1)
    version_before = job(api, "scaleblock")["Version"]
    refused = post(api, "/v1/job/scaleblock/scale", {"Count": 3, "Target": {"Group": "web"}})
    assert (refused.status_code, refused.text) == (400, "job scaling blocked due to active deployment")
    assert job(api, "scaleblock")["Version"] == version_before
    event_only = post(api, "/v1/job/scaleblock/scale", {"Target": {"Group": "web"}, "Error": True, "Message": "x"})
    assert event_only.status_code == 200, event_only.text
    response = post(api, f"/v1/deployment/fail/{deployment['ID']}", {"DeploymentID": deployment["ID"]})
    assert response.status_code == 200, response.text
    watch(api, deployment["ID"], terminal)
    accepted = post(api, "/v1/job/scaleblock/scale", {"Count": 3, "Target": {"Group": "web"}})
    assert accepted.status_code == 200, accepted.text


def test_auto_promote(api):
    """§3.6 auto-promote and §2.4 `Deployment is running pending automatic promotion`."""
    update = CANARY + "\n    auto_promote = true"
    submit(api, job_hcl("autoprom", update=update))
    deployment_until(api, "autoprom", lambda dep: dep["Status"] == "successful")
    submit(api, job_hcl("autoprom", update=update, version="2"))
    deployment = deployment_until(api, "autoprom", lambda dep: dep["JobVersion"] == 1)
    assert deployment["StatusDescription"] in ("Deployment is running pending automatic promotion", "Deployment is running")
    final = watch(api, deployment["ID"], terminal)
    assert (final["Status"], final["TaskGroups"]["web"]["Promoted"]) == ("successful", True)


def test_plan_shows_canaries_and_max_parallel(api):
    """nomad-jobs-behaviour.md §3.3/§3.6 with §3.3 here: a canary change plans `Canary` and defers the destructive
    updates as `Ignore`; a rolling change plans `max_parallel` destructive updates; planning writes no deployment."""
    for job_id, update, expected, labels in (
            ("plancanary", CANARY, {"Canary": 1, "Ignore": 2, "DestructiveUpdate": 0, "Place": 0},
             {"canary": 1, "ignore": 2}),
            ("planroll", FAST, {"Canary": 0, "Ignore": 1, "DestructiveUpdate": 1, "Place": 0},
             {"create/destroy update": 1, "ignore": 1})):
        submit(api, job_hcl(job_id, update=update))
        deployment = deployment_until(api, job_id, terminal)
        changed = parse(api, job_hcl(job_id, update=update, version="2"))
        response = api.post(f"/v1/job/{job_id}/plan", json={"Job": changed, "Diff": True})
        assert response.status_code == 200, response.text
        planned = response.json()
        updates = planned["Annotations"]["DesiredTGUpdates"]["web"]
        assert {key: updates[key] for key in expected} == expected, job_id
        assert planned["Diff"]["TaskGroups"][0]["Updates"] == labels
        assert api.get(f"/v1/job/{job_id}/deployment").json()["ID"] == deployment["ID"]


MANUAL = 'max_parallel = 1\n    health_check = "manual"\n    canary = 1\n    auto_revert = true'


def manual_canary_deployment(api: Api, job_id: str) -> dict:
    """A deployment that stays `running` until someone acts: its canary never gets a health verdict."""
    submit(api, job_hcl(job_id, update=FAST + "\n    auto_revert = true"))
    deployment_until(api, job_id, lambda dep: dep["Status"] == "successful")
    submit(api, job_hcl(job_id, update=MANUAL, version="2"))
    return deployment_until(api, job_id, lambda dep: dep["JobVersion"] == 1)


def test_promote_needs_healthy_canaries(api):
    """§1.6 step 2: 500 multierror `Task group "web" has 0/1 healthy allocations`; nothing written."""
    deployment = manual_canary_deployment(api, "unpromotable")
    path = f"/v1/deployment/promote/{deployment['ID']}"
    response = post(api, path, {"DeploymentID": deployment["ID"], "Groups": ["web"]})
    assert (response.status_code, response.text) == (
        500, '1 error occurred:\n\t* Task group "web" has 0/1 healthy allocations\n\n')
    after = api.get(f"/v1/deployment/{deployment['ID']}").json()
    assert after["ModifyIndex"] == deployment["ModifyIndex"] and after["TaskGroups"]["web"]["Promoted"] is False


def test_pause_and_resume(api):
    """§1.8: paused / `Deployment is paused` without an eval; resume: running / `Deployment is running` and an eval;
    §0 blocking queries: the index moves exactly when the deployment changes."""
    deployment = manual_canary_deployment(api, "pausable")
    path = f"/v1/deployment/{deployment['ID']}"
    started = time.monotonic()
    idle = api.get(path, params={"index": deployment["ModifyIndex"], "wait": "300ms"})
    assert time.monotonic() - started >= 0.25
    assert int(idle.headers["X-Nomad-Index"]) == deployment["ModifyIndex"]

    response = post(api, f"/v1/deployment/pause/{deployment['ID']}", {"DeploymentID": deployment["ID"], "Pause": True})
    assert response.status_code == 200, response.text
    paused = response.json()
    assert (paused["EvalID"], paused["EvalCreateIndex"]) == ("", 0)
    woken = api.get(path, params={"index": deployment["ModifyIndex"], "wait": "10s"})
    assert int(woken.headers["X-Nomad-Index"]) == paused["DeploymentModifyIndex"]
    assert (woken.json()["Status"], woken.json()["StatusDescription"]) == ("paused", "Deployment is paused")

    response = post(api, f"/v1/deployment/pause/{deployment['ID']}", {"DeploymentID": deployment["ID"], "Pause": False})
    assert response.status_code == 200, response.text
    assert response.json()["EvalID"]
    unblocked = post(api, f"/v1/deployment/unblock/{deployment['ID']}", {"DeploymentID": deployment["ID"]})
    assert (unblocked.status_code, unblocked.headers["X-Nomad-Index"], unblocked.json()["Index"]) == (200, "0", 0)  # §1.10
    resumed = api.get(path).json()
    assert (resumed["Status"], resumed["StatusDescription"]) == ("running", "Deployment is running")


def test_fail_rolls_back_to_the_stable_version(api):
    """§1.7: `Deployment marked as failed - rolling back to job version 0`, RevertedJobVersion, a new version with
    the old spec and its own deployment; §1.5 step 7 texts on the terminal deployment; §1.11 job deployments."""
    deployment = manual_canary_deployment(api, "failing")
    response = post(api, f"/v1/deployment/fail/{deployment['ID']}")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["RevertedJobVersion"] == 0 and result["EvalID"]
    failed = api.get(f"/v1/deployment/{deployment['ID']}").json()
    assert (failed["Status"], failed["StatusDescription"]) == (
        "failed", "Deployment marked as failed - rolling back to job version 0")
    rollback = deployment_until(api, "failing", lambda dep: dep["JobVersion"] == 2 and terminal(dep))
    assert rollback["Status"] == "successful"
    current = job(api, "failing")
    assert (current["Version"], current["Stable"]) == (2, True)
    assert current["TaskGroups"][0]["Tasks"][0]["Env"]["VERSION"] == "1"
    assert not [alloc for alloc in live(job_allocs(api, "failing")) if alloc["JobVersion"] == 1]
    listed = api.get("/v1/job/failing/deployments").json()
    assert [dep["JobVersion"] for dep in listed] == [2, 1, 0]

    for action, body, text in (("fail", None, "can't fail terminal deployment"),
                               ("unblock", {}, "can't unblock terminal deployment"),
                               ("pause", {"Pause": True}, "can't pause terminal deployment"),
                               ("pause", {"Pause": False}, "can't resume terminal deployment"),
                               ("promote", {"All": True}, "can't promote terminal deployment")):
        body = dict(body, DeploymentID=deployment["ID"]) if body is not None else None
        response = post(api, f"/v1/deployment/{action}/{deployment['ID']}", body)
        assert (response.status_code, response.text) == (500, text)


def test_newer_version_and_stop_cancel_the_deployment(api):
    """§3.1: a new version cancels the Active deployment (`Cancelled due to newer version of job`) and stops its
    unpromoted canaries; stopping the job cancels with `Cancelled because job is stopped`; §3.7 terminal is final."""
    first = manual_canary_deployment(api, "superseded")
    canary_id = first["TaskGroups"]["web"]["PlacedCanaries"][0]
    submit(api, job_hcl("superseded", update=MANUAL, version="3"))
    cancelled = api.get(f"/v1/deployment/{first['ID']}").json()
    assert (cancelled["Status"], cancelled["StatusDescription"]) == ("cancelled", "Cancelled due to newer version of job")
    stopped = api.allocation(canary_id)
    assert (stopped["DesiredStatus"], stopped["DesiredDescription"]) == ("stop", "alloc not needed due to job update")
    second = deployment_until(api, "superseded", lambda dep: dep["JobVersion"] == 2)
    assert second["Status"] == "running" and second["TaskGroups"]["web"]["DesiredCanaries"] == 1
    assert api.request("DELETE", "/v1/job/superseded").status_code == 200
    after_stop = api.get(f"/v1/deployment/{second['ID']}").json()
    assert (after_stop["Status"], after_stop["StatusDescription"]) == ("cancelled", "Cancelled because job is stopped")
    assert api.request("DELETE", "/v1/job/superseded", params={"purge": "true"}).status_code == 200
    assert api.get(f"/v1/deployment/{second['ID']}").status_code == 404  # the 1.10 purge deletes deployments


def test_manual_allocation_health(api):
    """§1.9: manual verdicts (counters, server Timestamp, an eval), the per-ID errors, an unhealthy verdict fails
    the deployment with the rollback suffix; §1.5 step 7 text for a terminal deployment."""
    deployment = manual_canary_deployment(api, "manual")
    path = f"/v1/deployment/allocation-health/{deployment['ID']}"
    canary = deployment["TaskGroups"]["web"]["PlacedCanaries"][0]
    other = live(job_allocs(api, "manual"), 0)[0]["ID"]  # an allocation of version 0's deployment
    for body, text in (({}, "must specify at least one healthy/unhealthy allocation ID"),
                       ({"HealthyAllocationIDs": ["abc"]}, 'alloc "abc" lookup failed: index error: UUID must be 36 characters'),
                       ({"HealthyAllocationIDs": ["00000000-0000-4000-8000-0000000000ee"]},
                        'unknown alloc "00000000-0000-4000-8000-0000000000ee"')):
        response = post(api, path, dict(body, DeploymentID=deployment["ID"]))
        assert (response.status_code, response.text) == (500, text)
    response = post(api, path, {"DeploymentID": deployment["ID"], "HealthyAllocationIDs": [other]})
    assert (response.status_code, response.text) == (500, f'alloc "{other}" is not part of deployment "{deployment["ID"]}"')

    response = post(api, path, {"DeploymentID": deployment["ID"], "HealthyAllocationIDs": [canary]})
    assert response.status_code == 200, response.text
    assert response.json()["EvalID"]
    healthy = api.get(f"/v1/deployment/{deployment['ID']}").json()
    assert (healthy["Status"], healthy["TaskGroups"]["web"]["HealthyAllocs"]) == ("running", 1)
    assert api.allocation(canary)["DeploymentStatus"]["Healthy"] is True

    response = post(api, path, {"DeploymentID": deployment["ID"], "UnhealthyAllocationIDs": [canary]})
    assert response.status_code == 200, response.text
    assert response.json()["RevertedJobVersion"] == 0
    failed = api.get(f"/v1/deployment/{deployment['ID']}").json()
    assert (failed["Status"], failed["StatusDescription"]) == (
        "failed", "Failed due to unhealthy allocations - rolling back to job version 0")
    assert (failed["TaskGroups"]["web"]["HealthyAllocs"], failed["TaskGroups"]["web"]["UnhealthyAllocs"]) == (0, 1)
    response = post(api, path, {"DeploymentID": deployment["ID"], "HealthyAllocationIDs": [canary]})
    assert (response.status_code, response.text) == (500, "can't set health of allocations for a terminal deployment")


def test_rollback_to_the_same_specification_is_not_done(api):
    """§2.4/§3.6: the stable version's spec equals the failing version's (it is the rollback itself) -> `... - not
    rolling back to stable job version 0 as current job has same specification`, no new version."""
    update = 'max_parallel = 2\n    health_check = "manual"\n    auto_revert = true'
    submit(api, job_hcl("samespec", update=update))
    first = deployment_until(api, "samespec", lambda dep: dep["TaskGroups"]["web"]["PlacedAllocs"] == 2)
    members = [alloc["ID"] for alloc in api.get(f"/v1/deployment/allocations/{first['ID']}").json()]
    response = post(api, f"/v1/deployment/allocation-health/{first['ID']}",
                    {"DeploymentID": first["ID"], "HealthyAllocationIDs": members})
    assert response.status_code == 200, response.text
    assert api.get(f"/v1/deployment/{first['ID']}").json()["Status"] == "successful"
    submit(api, job_hcl("samespec", update=update, version="2"))
    second = deployment_until(api, "samespec", lambda dep: dep["JobVersion"] == 1)
    assert post(api, f"/v1/deployment/fail/{second['ID']}").json()["RevertedJobVersion"] == 0
    rollback = deployment_until(api, "samespec", lambda dep: dep["JobVersion"] == 2 and dep["TaskGroups"]["web"]["PlacedAllocs"] == 2)
    member = api.get(f"/v1/deployment/allocations/{rollback['ID']}").json()[0]["ID"]
    response = post(api, f"/v1/deployment/allocation-health/{rollback['ID']}",
                    {"DeploymentID": rollback["ID"], "UnhealthyAllocationIDs": [member]})
    assert response.status_code == 200, response.text
    assert response.json()["RevertedJobVersion"] is None
    failed = api.get(f"/v1/deployment/{rollback['ID']}").json()
    assert (failed["Status"], failed["StatusDescription"]) == (
        "failed", "Failed due to unhealthy allocations - not rolling back to stable job version 0 as current job has "
                  "same specification")
    assert job(api, "samespec")["Version"] == 2


def test_promote_without_canaries_is_accepted(api):
    """§1.6: promoting a deployment whose groups have no canaries marks them Promoted and creates an eval (200)."""
    submit(api, job_hcl("nocanary", update='max_parallel = 1\n    health_check = "manual"'))
    deployment = deployment_until(api, "nocanary", lambda dep: True)
    response = post(api, f"/v1/deployment/promote/{deployment['ID']}", {"DeploymentID": deployment["ID"], "All": True})
    assert response.status_code == 200, response.text
    assert response.json()["EvalID"]
    assert api.get(f"/v1/deployment/{deployment['ID']}").json()["TaskGroups"]["web"]["Promoted"] is True


def test_endpoint_errors(api):
    """§1.3 (lookups), §1.4, §1.5 steps 1-5, §1.2 prefix, §1.11 (null latest deployment)."""
    unknown = "00000000-0000-4000-8000-0000000000ff"
    cases = [
        ("GET", f"/v1/deployment/{unknown}", None, 404, "deployment not found"),
        ("GET", "/v1/deployment/abcd", None, 500, "deployment lookup failed: index error: UUID must be 36 characters"),
        ("POST", f"/v1/deployment/fail/{unknown}", None, 500, "deployment not found"),
        ("POST", f"/v1/deployment/promote/{unknown}", {}, 400, "DeploymentID must be specified"),
        ("POST", f"/v1/deployment/promote/{unknown}", {"DeploymentID": "x"}, 400, "Deployment ID does not match"),
        ("POST", f"/v1/deployment/pause/{unknown}", None, 400, "Request body is empty"),
        ("POST", f"/v1/deployment/pause/{unknown}", {"DeploymentID": unknown}, 500, "deployment not found"),
        ("DELETE", f"/v1/deployment/fail/{unknown}", None, 405, "Invalid method"),
        ("POST", "/v1/deployments", None, 405, "Invalid method"),
        ("GET", "/v1/deployment/allocations/abc", None, 500, "index error: UUID must be 36 characters"),
        ("GET", "/v1/deployments?prefix=abc", None, 500, "index error: Input (without hyphens) must be even length"),
    ]
    for method, path, body, status, text in cases:
        kwargs = {"json": body} if body is not None else {"data": b""}
        response = api.request(method, path, **kwargs)
        assert (response.status_code, response.text) == (status, text), (method, path)
    assert api.get(f"/v1/deployment/allocations/{unknown}").json() == []
    assert api.get("/v1/job/nosuchjob/deployment").json() is None
    assert api.get("/v1/job/nosuchjob/deployments").json() == []


def test_deployment_list_prefix_and_namespace(api):
    """§1.2: list ordered by CreateIndex (prefix: by ID), `namespace` filter, index = deployment table, pagination
    (`per_page`, `<CreateIndex>.<ID>` next tokens), `filter` and their 400 texts (1.10)."""
    submit(api, job_hcl("listed"))
    deployment = deployment_until(api, "listed", terminal)
    submit(api, job_hcl("listed-too"))
    deployment_until(api, "listed-too", terminal)
    response = api.get("/v1/deployments", params={"prefix": deployment["ID"][:4]})
    assert deployment["ID"] in [dep["ID"] for dep in response.json()]
    listed = api.get("/v1/deployments").json()
    assert [dep["CreateIndex"] for dep in listed] == sorted(dep["CreateIndex"] for dep in listed)
    assert api.get("/v1/deployments", params={"namespace": "prod"}).json() == []
    assert int(api.get("/v1/deployments").headers["X-Nomad-Index"]) >= deployment["ModifyIndex"]

    first = api.get("/v1/deployments", params={"per_page": 1})
    token = first.headers["X-Nomad-NextToken"]
    assert len(first.json()) == 1 and token == f"{listed[1]['CreateIndex']}.{listed[1]['ID']}"
    rest = api.get("/v1/deployments", params={"next_token": token}).json()
    assert [dep["ID"] for dep in first.json() + rest] == [dep["ID"] for dep in listed]
    filtered = api.get("/v1/deployments", params={"filter": 'JobID == "listed"'}).json()
    assert [dep["ID"] for dep in filtered] == [deployment["ID"]]
    bad = api.get("/v1/deployments", params={"per_page": "x"})
    assert (bad.status_code, bad.text) == (400, "Expect a number for `per_page` query string parameter")
    bad = api.get("/v1/deployments", params={"filter": "JobID =="})
    assert bad.status_code == 400 and bad.text.startswith("failed to create result paginator: failed to read filter")


def test_acl_read_job_and_submit_job(jobs_acl_emulator):
    """§1.12: reads need read-job, writes submit-job on the deployment's namespace (403 `Permission denied`)."""
    manager = Api(jobs_acl_emulator, token=MANAGEMENT)
    submit(manager, job_hcl("guarded", update='max_parallel = 1\n    health_check = "manual"'))
    deployment = deployment_until(manager, "guarded", lambda dep: True)
    reader = Api(jobs_acl_emulator, token=READ_ONLY)
    assert reader.get(f"/v1/deployment/{deployment['ID']}").status_code == 200
    response = post(reader, f"/v1/deployment/fail/{deployment['ID']}")
    assert (response.status_code, response.text) == (403, "Permission denied")
    anonymous = Api(jobs_acl_emulator)
    assert anonymous.get("/v1/deployments").status_code == 403


# --- fault paths with real processes ------------------------------------------------------------------------------
REVERT = 'max_parallel = 1\n    min_healthy_time = "100ms"\n    healthy_deadline = "30s"\n    progress_deadline = "0s"\n' \
         '    auto_revert = true'


def test_failing_version_rolls_back_with_auto_revert(process_api):
    """§3.5 (a task that exits is unhealthy at once), §3.6 (fail early without a progress deadline; auto-revert
    registers the stable version as a new version), §2.4 `Failed due to unhealthy allocations - rolling back to job
    version 0`, §4.1 the rollback deployment is the job's latest."""
    submit(process_api, job_hcl("broken", update=REVERT, count=1))
    deployment_until(process_api, "broken", lambda dep: dep["Status"] == "successful")
    submit(process_api, job_hcl("broken", update=REVERT, count=1, version="2", command="exit 3"))
    rollback = deployment_until(process_api, "broken", lambda dep: dep["JobVersion"] == 2 and terminal(dep))
    assert rollback["Status"] == "successful"
    deployments = process_api.get("/v1/job/broken/deployments").json()
    failed = next(dep for dep in deployments if dep["JobVersion"] == 1)
    assert (failed["Status"], failed["StatusDescription"]) == (
        "failed", "Failed due to unhealthy allocations - rolling back to job version 0")
    assert failed["TaskGroups"]["web"]["UnhealthyAllocs"] == 1
    current = job(process_api, "broken")
    assert (current["Version"], current["TaskGroups"][0]["Tasks"][0]["Env"]["VERSION"]) == (2, "1")
    unhealthy = [alloc for alloc in job_allocs(process_api, "broken") if alloc["JobVersion"] == 1]
    assert unhealthy and (unhealthy[0]["DeploymentStatus"] or {}).get("Healthy") is False
    events = unhealthy[0]["TaskStates"]["server"]["Events"]
    assert [(event["Type"], event["Message"]) for event in events if event["Type"] == "Alloc Unhealthy"] == [
        ("Alloc Unhealthy", "Unhealthy because of failed task")]


def test_check_that_never_passes_fails_at_the_progress_deadline(process_api):
    """§3.5 (checks must pass; unhealthy at healthy_deadline), §3.6 (with a progress deadline the unhealthy
    allocation gets DesiredTransition.Reschedule and the deadline fails the deployment), §2.4 texts."""
    update = 'max_parallel = 1\n    min_healthy_time = "100ms"\n    healthy_deadline = "500ms"\n' \
             '    progress_deadline = "1s"'
    check = 'check {\n        name = "never"\n        type = "script"\n        task = "server"\n' \
            '        command = "/bin/sh"\n        args = ["-c", "exit 2"]\n        interval = "100ms"\n' \
            '        timeout = "1s"\n      }'
    submit(process_api, job_hcl("unready", update=update, count=1, check=check))
    failed = deployment_until(process_api, "unready", terminal)
    assert (failed["Status"], failed["StatusDescription"]) == ("failed", "Failed due to progress deadline")
    alloc = process_api.allocation(job_allocs(process_api, "unready")[0]["ID"])
    assert alloc["DeploymentStatus"]["Healthy"] is False
    assert alloc["DesiredTransition"]["Reschedule"] is True
    checks = process_api.get(f"/v1/allocation/{alloc['ID']}/checks").json()
    assert {result["Status"] for result in checks.values()} == {"failure"}
    assert job(process_api, "unready")["Stable"] is False


def test_default_update_block_deploys_with_the_scenario_switch(process_api):
    """§3.1: Nomad gives a service job without an update block the SDK's default one, hence a deployment; the
    emulator does so with `deployments: all` (deployments-process.yml)."""
    submit(process_api, web_hcl("defaulted").replace('"echo ${var.image} $${HOME} ${NOMAD_ALLOC_ID}"', '"sleep 60"'))
    deployment = deployment_until(process_api, "defaulted", lambda dep: True)
    group = deployment["TaskGroups"]["web"]
    assert (deployment["Status"], group["DesiredTotal"], group["ProgressDeadline"]) == ("running", 2, 600_000_000_000)
    assert process_api.request("DELETE", "/v1/job/defaulted").status_code == 200
    assert process_api.get(f"/v1/deployment/{deployment['ID']}").json()["Status"] == "cancelled"


def test_auto_revert_without_a_stable_version(process_api):
    """§2.4: the first version fails and there is nothing to revert to: `Failed due to unhealthy allocations - no
    stable job version to auto revert to`; §3.6 fail early (progress_deadline 0)."""
    submit(process_api, job_hcl("neverstable", update=REVERT, count=1, command="exit 1"))
    failed = deployment_until(process_api, "neverstable", terminal)
    assert (failed["Status"], failed["StatusDescription"]) == (
        "failed", "Failed due to unhealthy allocations - no stable job version to auto revert to")
    assert job(process_api, "neverstable")["Version"] == 0
