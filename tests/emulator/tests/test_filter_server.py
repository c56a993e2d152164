# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""?filter= through the server: matching, pagination with filters, the 400 texts (reference §1, §10)."""
from __future__ import annotations

from conftest import Api


def test_filter_on_fields_of_the_full_allocation(shared_api):
    running_web = shared_api.allocations(filter='Job.Name == "web" and ClientStatus == "running"')
    assert sorted(a["Name"] for a in running_web) == ["web.frontend[0]", "web.frontend[1]", "web.frontend[2]"]
    assert {a["JobID"] for a in shared_api.allocations(filter='Namespace != "default"')} == {"cache"}
    with_sidecar = shared_api.allocations(filter='"sidecar" in TaskStates')
    assert {a["JobID"] for a in with_sidecar} == {"web"}
    assert shared_api.allocations(filter='TaskGroup == "nope"') == []


def test_filter_runs_after_the_namespace(shared_api):
    assert shared_api.allocations(namespace="default", filter='JobID == "cache"') == []


def test_filter_with_prefix(shared_api):
    alloc = shared_api.by_job("web")[0]
    found = shared_api.allocations(prefix=alloc["ID"][:6], filter='JobID == "web"')
    assert alloc["ID"] in [a["ID"] for a in found]


def test_filtered_pages_are_full(virtual_emulator):
    api = Api(virtual_emulator)
    expected = [a["ID"] for a in api.allocations(filter='JobID == "virtual-3"')]
    assert len(expected) > 100
    seen, token = [], None
    while True:
        params = {"namespace": "*", "per_page": 37, "filter": 'JobID == "virtual-3"'}
        if token:
            params["next_token"] = token
        response = api.get("/v1/allocations", params=params)
        page = response.json()
        token = response.headers.get("X-Nomad-NextToken")
        if token:
            assert len(page) == 37
        seen += [a["ID"] for a in page]
        if not token:
            break
    assert seen == expected


def test_parse_error_is_400(shared_api):
    response = shared_api.get("/v1/allocations", params={"filter": "ClientStatus =="})
    assert response.status_code == 400
    assert response.text.startswith("failed to create result paginator: failed to read filter expression: 1:")
    unquoted = shared_api.get("/v1/allocations", params={"filter": "JobID == web-1"})
    assert unquoted.status_code == 400


def test_evaluation_error_is_400(shared_api):
    response = shared_api.get("/v1/allocations", params={"filter": 'InvalidField == "x"'})
    assert response.status_code == 400
    assert response.text == ('failed to read result page: error finding value in datum: /InvalidField at part 0: '
                             'couldn\'t find key: struct field with name "InvalidField"')
    stub_only = shared_api.get("/v1/allocations", params={"filter": 'JobType == "service"'})
    assert stub_only.status_code == 400


def test_evaluation_errors_need_an_item(shared_api):
    response = shared_api.get("/v1/allocations", params={"namespace": "nope", "filter": 'InvalidField == "x"'})
    assert response.status_code == 200 and response.json() == []
