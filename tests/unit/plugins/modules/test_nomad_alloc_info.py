# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_info run in-process against a fake Nomad on loopback: what it sends, returns and how it fails."""

from __future__ import annotations

import json

import pytest

from ansible_collections.nomadops.nomad.plugins.modules import nomad_alloc_info
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    FakeNomad,
    Reply,
    free_port,
    json_reply,
)

TOKEN = "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01"
FULL = {"ID": "5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10", "Namespace": "prod", "JobID": "web", "ClientStatus": "running",
        "DesiredStatus": "run", "Job": {"ID": "web"}, "TaskGroup": "frontend"}
STUB = {key: FULL[key] for key in ("ID", "Namespace", "JobID", "ClientStatus", "DesiredStatus", "TaskGroup")}
SERVICES = [{"ServiceName": "web", "Port": 8080, "AllocID": FULL["ID"]}]


def nomad_like(request):
    if request.path == "/v1/allocations":
        if "Forbidden" in request.query.get("filter", ""):
            return Reply(403, "Permission denied")
        prefix = request.query.get("prefix", "")
        return json_reply([STUB] if FULL["ID"].startswith(prefix) else [], index=77)
    if request.path == f"/v1/allocation/{FULL['ID']}":
        return json_reply(FULL, index=60)
    if request.path == f"/v1/allocation/{FULL['ID']}/services":
        if request.query.get("namespace") != "prod":
            return Reply(404, "allocation not found")
        return json_reply(SERVICES, index=3)
    return Reply(404, "resource not found")


def test_selector_returns_stubs_count_and_index(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "job": "web", "client_status": ["running"], "token": TOKEN})
    assert result["_rc"] == 0 and result["changed"] is False
    assert result["allocations"] == [STUB] and result["count"] == 1 and result["index"] == 77
    assert nomad.requests[0].query["filter"] == 'JobID == "web" and (ClientStatus == "running")'
    assert "task_states" not in nomad.requests[0].query and "resources" not in nomad.requests[0].query


def test_id_returns_full_objects_with_services_in_their_namespace(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "id": ["5a22"], "services": True})
    assert result["_rc"] == 0
    assert result["allocations"] == [dict(FULL, Services=SERVICES)]
    assert result["index"] == 77
    assert [r.path for r in nomad.requests] == ["/v1/allocations", f"/v1/allocation/{FULL['ID']}",
                                                f"/v1/allocation/{FULL['ID']}/services"]


def test_nothing_matching_is_not_a_failure(run_module):
    with FakeNomad(lambda request: json_reply([], index=5)) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "job": "nope"})
    assert result["_rc"] == 0 and result["allocations"] == [] and result["count"] == 0


def test_environment_address_is_used(run_module, monkeypatch):
    with FakeNomad(nomad_like) as nomad:
        monkeypatch.setenv("NOMAD_ADDR", nomad.address)
        monkeypatch.setenv("NOMAD_NAMESPACE", "prod")
        result = run_module(nomad_alloc_info, {"job": "web"})
    assert result["count"] == 1
    assert nomad.requests[0].query["namespace"] == "prod"


def test_nomad_error_is_a_one_line_failure_without_the_token(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "filter": "Forbidden", "token": TOKEN})
    assert result["_rc"] == 1 and result["failed"] is True
    assert result["msg"] == ('GET /v1/allocations failed: 403 Permission denied '
                             '(check that the token has read-job in namespace "default")')
    assert TOKEN not in json.dumps(result)
    assert "Traceback" not in json.dumps(result)


def test_unreachable_address(run_module):
    address = f"http://127.0.0.1:{free_port()}"
    result = run_module(nomad_alloc_info, {"address": address, "retries": 0})
    assert result["msg"] == f"cannot reach Nomad at {address}: connection refused (check address / NOMAD_ADDR)"


@pytest.mark.parametrize("args, message", [
    ({"per_page": -1}, "per_page must be 1 or more (got -1)"),
    ({"limit": 0}, "limit must be 1 or more (got 0)"),
    ({"id": ["x"]}, 'id "x" must contain at least two characters'),
    ({"prefix": "xyz"}, 'prefix "xyz" is not an allocation ID or ID prefix'),
    ({"ca_cert": "/nonexistent.pem", "address": "https://127.0.0.1:1"}, "ca_cert '/nonexistent.pem' is not a readable file"),
])
def test_bad_inputs_fail_before_any_request(run_module, args, message):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_info, dict({"address": nomad.address}, **args))
    assert result["_rc"] == 1 and message in result["msg"]
    assert nomad.requests == []


def test_wait_for_running_already_met_does_not_block(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "job": "web", "wait_for": "running", "wait_timeout": 5})
    assert result["_rc"] == 0 and result["count"] == 1 and "waited" in result
    assert all("index" not in r.query for r in nomad.requests)


def test_wait_timeout_fails_with_progress(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "job": "web", "wait_for": "terminal", "wait_timeout": 1})
    assert result["_rc"] == 1
    assert result["msg"] == ("timed out after 1 s waiting for the allocations to be terminal: "
                             "1 allocation(s) not terminal yet: 5a222182: client status running")
    assert result["allocations"] == [STUB]
    assert any(r.query.get("index") == "77" and r.query.get("wait") == "1s" for r in nomad.requests)


def test_check_mode_reads_the_same(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "job": "web", "_ansible_check_mode": True})
    assert result["_rc"] == 0 and result["count"] == 1


def test_many_ids_keep_their_order_with_services(run_module):
    ids = [f"{n * 7:02x}{n:06d}-0000-4000-8000-000000000000" for n in range(12)]
    by_id = {alloc_id: {"ID": alloc_id, "Namespace": "default", "JobID": f"j{n}"} for n, alloc_id in enumerate(ids)}

    def handler(request):
        if request.path == "/v1/allocations":
            prefix = request.query["prefix"]
            return json_reply([by_id[i] for i in sorted(by_id) if i.startswith(prefix)], index=50)
        alloc_id = request.path.split("/")[3]
        if request.path.endswith("/services"):
            return json_reply([{"AllocID": alloc_id}], index=2)
        return json_reply(dict(by_id[alloc_id], Job={}), index=40)

    wanted = list(reversed(ids))
    with FakeNomad(handler) as nomad:
        result = run_module(nomad_alloc_info, {"address": nomad.address, "id": [i[:8] for i in wanted], "services": True})
    assert [a["ID"] for a in result["allocations"]] == wanted
    assert all(a["Services"] == [{"AllocID": a["ID"]}] for a in result["allocations"])
    assert result["index"] == 50


def test_password_in_address_is_censored_in_the_result(run_module):
    with FakeNomad(nomad_like) as nomad:
        address = nomad.address.replace("http://", "http://ops:nomadops-secret-pw@")
        result = run_module(nomad_alloc_info, {"address": address, "job": "web", "token": TOKEN})
    assert result["_rc"] == 0
    assert nomad.requests[0].headers["Authorization"].startswith("Basic ")
    output = json.dumps(result)
    assert "nomadops-secret-pw" not in output and TOKEN not in output
