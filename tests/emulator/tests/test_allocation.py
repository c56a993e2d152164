# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GET /v1/allocation/:id and /services (reference §2, §7)."""
from __future__ import annotations

import uuid

from tests.waiting import wait_until


def first(api, job: str) -> dict:
    return sorted(api.by_job(job), key=lambda alloc: alloc["Name"])[0]


def test_full_object(shared_api):
    stub = first(shared_api, "web")
    response = shared_api.get(f"/v1/allocation/{stub['ID']}")
    assert response.status_code == 200
    alloc = response.json()
    assert alloc["ID"] == stub["ID"]
    assert alloc["Job"]["ID"] == "web" and alloc["Job"]["Type"] == "service"
    assert [group["Name"] for group in alloc["Job"]["TaskGroups"]] == ["frontend"]
    for key in ("AllocModifyIndex", "PreviousAllocation", "DeploymentID", "Metrics", "AllocatedResources",
                "Resources", "NetworkStatus", "SigningKeyID"):
        assert key in alloc, key
    assert "JobType" not in alloc
    assert response.headers["X-Nomad-Index"] == str(alloc["ModifyIndex"])
    assert response.headers["X-Nomad-KnownLeader"] == "true"
    assert set(alloc["TaskStates"]) == {"server", "sidecar"}


def test_task_states(shared_api):
    alloc = shared_api.allocation(first(shared_api, "web")["ID"])
    state = alloc["TaskStates"]["server"]
    assert state["State"] == "running"
    assert state["Failed"] is False and state["Restarts"] == 0
    assert state["StartedAt"].endswith("Z") and not state["StartedAt"].startswith("0001")
    assert state["FinishedAt"] == "0001-01-01T00:00:00Z"
    types = [event["Type"] for event in state["Events"]]
    assert types[-1] == "Started"
    assert all(isinstance(event["Time"], int) and event["DisplayMessage"] for event in state["Events"])


def test_upper_case_id_still_found(shared_api):
    alloc_id = first(shared_api, "web")["ID"]
    assert shared_api.get(f"/v1/allocation/{alloc_id.upper()}").json()["ID"] == alloc_id


def test_not_found_and_bad_ids(shared_api):
    missing = shared_api.get(f"/v1/allocation/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.text == "alloc not found"
    assert "X-Nomad-Index" in missing.headers and missing.headers["X-Nomad-KnownLeader"] == "true"
    short = shared_api.get("/v1/allocation/abcd")
    assert short.status_code == 500
    assert short.text == "alloc lookup failed: index error: UUID must be 36 characters"
    empty = shared_api.get("/v1/allocation/")
    assert empty.status_code == 500 and empty.text.endswith("UUID must be 36 characters")
    non_hex = shared_api.get("/v1/allocation/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz")
    assert non_hex.status_code == 500
    assert non_hex.text == "alloc lookup failed: index error: Invalid UUID: encoding/hex: invalid byte: U+007A 'z'"


def test_get_needs_get(shared_api):
    response = shared_api.post(f"/v1/allocation/{first(shared_api, 'web')['ID']}")
    assert response.status_code == 405 and response.text == "Invalid method"


def test_prestart_task_ran_and_finished(shared_api):
    alloc = shared_api.allocation(first(shared_api, "api")["ID"])
    assert alloc["ClientStatus"] == "running"
    migrate = alloc["TaskStates"]["migrate"]
    assert migrate["State"] == "dead" and migrate["Failed"] is False
    assert migrate["FinishedAt"] != "0001-01-01T00:00:00Z"
    assert alloc["TaskStates"]["app"]["State"] == "running"


def test_batch_job_completes(shared_api):
    alloc_id = first(shared_api, "report")["ID"]
    alloc = wait_until(lambda: (a := shared_api.allocation(alloc_id))["ClientStatus"] == "complete" and a,
                       what="report to complete")
    assert alloc["TaskStates"]["generate"]["State"] == "dead"
    assert alloc["TaskStates"]["generate"]["Failed"] is False
    assert alloc["TaskStates"]["generate"]["Events"][-1]["Type"] == "Terminated"


def test_deployment_status_becomes_healthy_for_service_jobs(shared_api):
    alloc_id = first(shared_api, "web")["ID"]
    status = wait_until(lambda: shared_api.allocation(alloc_id)["DeploymentStatus"], what="healthy")
    assert status["Healthy"] is True and status["Canary"] is False
    assert isinstance(status["ModifyIndex"], int)
    assert shared_api.allocation(first(shared_api, "report")["ID"])["DeploymentStatus"] is None


def test_services(shared_api):
    alloc = first(shared_api, "web")
    response = shared_api.get(f"/v1/allocation/{alloc['ID']}/services")
    assert response.status_code == 200
    services = response.json()
    assert [s["ServiceName"] for s in services] == ["web"]
    service = services[0]
    assert service["AllocID"] == alloc["ID"] and service["JobID"] == "web" and service["Namespace"] == "default"
    assert service["Port"] == 8080 and service["Tags"] == ["http", "frontend"]
    assert int(response.headers["X-Nomad-Index"]) >= 1
    report = first(shared_api, "report")["ID"]
    assert shared_api.get(f"/v1/allocation/{report}/services").json() == []


def test_services_namespace_must_match(shared_api):
    cache = first(shared_api, "cache")["ID"]
    wrong = shared_api.get(f"/v1/allocation/{cache}/services")
    assert wrong.status_code == 404
    assert wrong.text == "allocation not found"
    assert wrong.headers["X-Nomad-Index"] == "0"
    right = shared_api.get(f"/v1/allocation/{cache}/services", params={"namespace": "prod"})
    assert right.status_code == 200 and right.json()[0]["ServiceName"] == "cache"
    assert shared_api.get(f"/v1/allocation/{uuid.uuid4()}/services").status_code == 404
    short = shared_api.get("/v1/allocation/ab/services")
    assert short.status_code == 500 and short.text.endswith("UUID must be 36 characters")
    assert shared_api.post(f"/v1/allocation/{cache}/services").status_code == 405
