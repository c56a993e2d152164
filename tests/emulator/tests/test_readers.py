# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The job, namespace and node readers answer like Nomad 1.6 (status codes, texts, ACL)."""
from __future__ import annotations

import pytest

from conftest import Api

MANAGEMENT = "00000000-0000-4000-8000-000000000001"
READER = "00000000-0000-4000-8000-000000000002"
NO_NODE = "00000000-0000-4000-8000-000000000003"


@pytest.fixture(scope="module")
def management(intent_emulator) -> Api:
    return Api(intent_emulator, token=MANAGEMENT)


def test_job_found_and_not_found(management):
    found = management.get("/v1/job/web")
    assert found.status_code == 200
    assert found.json()["ID"] == "web" and found.headers["X-Nomad-Index"]
    missing = management.get("/v1/job/wbe")
    assert (missing.status_code, missing.text) == (404, "job not found")
    other_namespace = management.get("/v1/job/web", params={"namespace": "prod"})
    assert (other_namespace.status_code, other_namespace.text) == (404, "job not found")


def test_jobs_by_prefix_in_every_namespace(management, intent_emulator):
    listed = management.get("/v1/jobs", params={"prefix": "we", "namespace": "*"}).json()
    assert [(j["Namespace"], j["ID"]) for j in listed] == [("default", "web")]
    assert management.get("/v1/jobs", params={"prefix": "wbe", "namespace": "*"}).json() == []
    assert Api(intent_emulator).get("/v1/jobs").status_code == 403


def test_job_needs_read_job(intent_emulator):
    anonymous = Api(intent_emulator).get("/v1/job/web")
    assert (anonymous.status_code, anonymous.text) == (403, "Permission denied")
    assert Api(intent_emulator, token=READER).get("/v1/job/web").status_code == 200


def test_namespace_found_not_found_and_acl(management, intent_emulator):
    assert management.get("/v1/namespace/prod").json()["Name"] == "prod"
    missing = management.get("/v1/namespace/prd")
    assert (missing.status_code, missing.text) == (404, "Namespace not found")
    denied = Api(intent_emulator, token=READER).get("/v1/namespace/prod")
    assert (denied.status_code, denied.text) == (403, "Permission denied")


def test_nodes_prefix_filter_and_acl(management, intent_emulator):
    assert [n["Name"] for n in management.get("/v1/nodes", params={"prefix": "aa"}).json()] == ["node-1", "node-2"]
    assert [n["Name"] for n in management.get("/v1/nodes", params={"prefix": "aa11c0de"}).json()] == ["node-1"]
    named = management.get("/v1/nodes", params={"filter": 'Name == "node-3"'}).json()
    assert [n["ID"] for n in named] == ["bb33c0de-0000-4000-8000-000000000003"]
    assert management.get("/v1/nodes", params={"filter": 'Name == "node-9"'}).json() == []
    bad = management.get("/v1/nodes", params={"prefix": "abc"})
    assert bad.status_code == 500 and "even length" in bad.text
    assert Api(intent_emulator, token=READER).get("/v1/nodes").status_code == 200
    denied = Api(intent_emulator, token=NO_NODE).get("/v1/nodes")
    assert (denied.status_code, denied.text) == (403, "Permission denied")


def test_node_by_id(management, intent_emulator):
    node = management.get("/v1/node/bb33c0de-0000-4000-8000-000000000003")
    assert node.status_code == 200 and node.json()["Name"] == "node-3"
    missing = management.get("/v1/node/bb33c0de-0000-4000-8000-000000000009")
    assert (missing.status_code, missing.text) == (404, "node not found")
    denied = Api(intent_emulator, token=NO_NODE).get("/v1/node/bb33c0de-0000-4000-8000-000000000003")
    assert denied.status_code == 403
    assert management.post("/v1/node/bb33c0de-0000-4000-8000-000000000003").status_code == 405


def test_readers_are_counted(management, intent_emulator):
    intent_emulator.control.reset_requests()
    management.get("/v1/job/wbe")
    management.get("/v1/nodes", params={"prefix": "aa"})
    counts = intent_emulator.control.requests()
    assert counts["GET /v1/job/wbe"] == 1 and counts["GET /v1/nodes"] == 1
