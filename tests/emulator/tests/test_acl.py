# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ACL enforcement with the acl.yml tokens (reference §3, §8)."""
from __future__ import annotations

import uuid

import pytest

from conftest import LIFECYCLE_ONLY, MANAGEMENT, OPERATOR, PROD_READER, READ_ONLY, Api


@pytest.fixture(scope="module")
def admin(acl_emulator) -> Api:
    return Api(acl_emulator, token=MANAGEMENT)


@pytest.fixture(scope="module")
def anon(acl_emulator) -> Api:
    return Api(acl_emulator)


def alloc_of(admin: Api, job: str) -> dict:
    return sorted(admin.by_job(job), key=lambda a: a["Name"])[0]


def test_management_sees_everything(admin):
    assert {a["JobID"] for a in admin.allocations()} == {"web", "cache"}


@pytest.mark.parametrize("headers", [
    {},
    {"X-Nomad-Token": str(uuid.uuid4())},
    {"X-Nomad-Token": "not-a-uuid"},
    {"X-Nomad-Token": LIFECYCLE_ONLY},
    {"Authorization": f"Basic {READ_ONLY}"},
])
def test_list_denied(anon, headers):
    response = anon.get("/v1/allocations", headers=headers)
    assert response.status_code == 403
    assert response.text == "Permission denied"


@pytest.mark.parametrize("headers", [
    {"X-Nomad-Token": READ_ONLY},
    {"X-Nomad-Token": f"{READ_ONLY}  "},
    {"Authorization": f"Bearer {READ_ONLY}"},
    {"Authorization": f"bearer {READ_ONLY} trailing words"},
    {"X-Nomad-Token": READ_ONLY, "Authorization": f"Bearer {LIFECYCLE_ONLY}"},
])
def test_list_allowed(anon, headers):
    response = anon.get("/v1/allocations", headers=headers)
    assert response.status_code == 200, headers
    assert {a["Namespace"] for a in response.json()} == {"default"}


def test_star_namespace_is_filtered_to_readable_namespaces(anon):
    prod_only = anon.get("/v1/allocations", params={"namespace": "*"}, token=PROD_READER)
    assert prod_only.status_code == 200
    assert {a["Namespace"] for a in prod_only.json()} == {"prod"}
    both = anon.get("/v1/allocations", params={"namespace": "*"}, token=OPERATOR)
    assert {a["Namespace"] for a in both.json()} == {"default", "prod"}
    assert anon.get("/v1/allocations", params={"namespace": "*"}, token=LIFECYCLE_ONLY).status_code == 403
    assert anon.get("/v1/allocations", params={"namespace": "prod"}, token=READ_ONLY).status_code == 403


def test_get_allocation_without_read_job_is_500_unknown(admin, anon):
    cache = alloc_of(admin, "cache")["ID"]
    denied = anon.get(f"/v1/allocation/{cache}", token=READ_ONLY)
    assert (denied.status_code, denied.text) == (500, f'Unknown allocation "{cache}"')
    assert anon.get(f"/v1/allocation/{cache}", token=PROD_READER).status_code == 200
    missing = anon.get(f"/v1/allocation/{uuid.uuid4()}", token=READ_ONLY)
    assert missing.status_code == 404
    bad_token = anon.get(f"/v1/allocation/{cache}", token=str(uuid.uuid4()))
    assert (bad_token.status_code, bad_token.text) == (403, "Permission denied")


def test_lifecycle_needs_alloc_lifecycle(admin, anon):
    web = alloc_of(admin, "web")["ID"]
    for path, body in ((f"/v1/client/allocation/{web}/signal", {"Signal": "SIGHUP"}),
                       (f"/v1/client/allocation/{web}/restart", {"TaskName": "nope"}),
                       (f"/v1/allocation/{web}/stop", None)):
        response = anon.post(path, json=body, token=READ_ONLY)
        assert (response.status_code, response.text) == (403, "Permission denied"), path
    signal = anon.post(f"/v1/client/allocation/{web}/signal", json={"Signal": "SIGHUP"}, token=LIFECYCLE_ONLY)
    assert signal.status_code == 200
    restart = anon.post(f"/v1/client/allocation/{web}/restart", json={"TaskName": "nope"}, token=LIFECYCLE_ONLY)
    assert restart.status_code == 500  # got past the ACL check to the client's task lookup
    cache = alloc_of(admin, "cache")["ID"]
    other_ns = anon.post(f"/v1/client/allocation/{cache}/signal", json={"Signal": "SIGHUP"}, token=LIFECYCLE_ONLY)
    assert other_ns.status_code == 403
    unknown = str(uuid.uuid4())
    assert anon.post(f"/v1/allocation/{unknown}/stop", token=LIFECYCLE_ONLY).status_code == 404


def test_services_needs_read_job_in_the_request_namespace(admin, anon):
    cache = alloc_of(admin, "cache")["ID"]
    denied = anon.get(f"/v1/allocation/{cache}/services", params={"namespace": "prod"}, token=READ_ONLY)
    assert (denied.status_code, denied.text) == (403, "Permission denied")
    allowed = anon.get(f"/v1/allocation/{cache}/services", params={"namespace": "prod"}, token=PROD_READER)
    assert allowed.status_code == 200


def test_control_api_ignores_acl(acl_emulator, admin):
    web = alloc_of(admin, "web")["ID"]
    assert "server" in acl_emulator.control.tasks(web)
    assert isinstance(acl_emulator.control.requests(), dict)


def test_stop_with_lifecycle_only_token(emulator_factory):
    emulator = emulator_factory("acl.yml")
    admin = Api(emulator, token=MANAGEMENT)
    web = alloc_of(admin, "web")["ID"]
    response = Api(emulator, token=LIFECYCLE_ONLY).post(f"/v1/allocation/{web}/stop")
    assert response.status_code == 200
    assert admin.allocation(web)["DesiredStatus"] == "stop"
    assert emulator.allocations()  # the harness uses the scenario's management token


def test_acl_disabled_ignores_tokens(shared_api):
    response = shared_api.get("/v1/allocations", headers={"X-Nomad-Token": "garbage"})
    assert response.status_code == 200
