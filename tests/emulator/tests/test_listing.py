# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GET /v1/allocations: namespaces, ordering, prefix rules, field selection, headers, errors (reference §0, §1)."""
from __future__ import annotations

import json

import pytest
from conftest import Api


def test_default_namespace_only_by_default(shared_api):
    response = shared_api.get("/v1/allocations")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    namespaces = {alloc["Namespace"] for alloc in response.json()}
    assert namespaces == {"default"}


def test_star_namespace_lists_every_namespace(shared_api):
    namespaces = {alloc["Namespace"] for alloc in shared_api.allocations(namespace="*")}
    assert namespaces == {"default", "prod"}


def test_other_namespace(shared_api):
    allocs = shared_api.allocations(namespace="prod")
    assert {alloc["JobID"] for alloc in allocs} == {"cache"}
    assert sorted(alloc["Name"] for alloc in allocs) == ["cache.cache[0]", "cache.cache[1]"]


def test_unknown_namespace_is_an_empty_array(shared_api):
    response = shared_api.get("/v1/allocations", params={"namespace": "nope"})
    assert response.status_code == 200
    assert response.text == "[]"


def test_order_is_create_index_then_id(shared_api):
    allocs = shared_api.allocations()
    keys = [(alloc["CreateIndex"], alloc["ID"]) for alloc in allocs]
    assert keys == sorted(keys)
    assert len({alloc["CreateIndex"] for alloc in allocs}) < len(allocs), "a job's allocations share a create index"


def test_reverse_only_with_exact_true(shared_api):
    forward = [alloc["ID"] for alloc in shared_api.allocations()]
    assert [alloc["ID"] for alloc in shared_api.allocations(reverse="true")] == forward[::-1]
    assert [alloc["ID"] for alloc in shared_api.allocations(reverse="True")] == forward
    assert [alloc["ID"] for alloc in shared_api.allocations(reverse="1")] == forward


def test_prefix_orders_by_id_and_matches_case_insensitively(shared_api):
    allocs = shared_api.allocations()
    target = allocs[0]["ID"]
    by_prefix = shared_api.allocations(prefix=target[:2].upper())
    assert target in [alloc["ID"] for alloc in by_prefix]
    assert all(alloc["ID"].startswith(target[:2]) for alloc in by_prefix)
    every = shared_api.allocations(prefix="")
    ids = [alloc["ID"] for alloc in shared_api.allocations(prefix=target[:8] + "-" + target[9:11])]
    assert ids == [target]
    assert len(every) == len(allocs)


def test_prefix_sorted_by_id_across_namespaces(shared_api):
    allocs = shared_api.allocations()
    # every UUID starts with a hex digit: sixteen one-byte prefixes cover all allocations
    seen = []
    for digit in "0123456789abcdef":
        for second in "0123456789abcdef":
            page = shared_api.allocations(prefix=digit + second)
            assert [a["ID"] for a in page] == sorted(a["ID"] for a in page)
            seen += [a["ID"] for a in page]
    assert sorted(seen) == sorted(a["ID"] for a in allocs)


def test_prefix_respects_namespace(shared_api):
    prod = shared_api.allocations(namespace="prod")[0]["ID"]
    assert shared_api.allocations(namespace="default", prefix=prod[:4]) == [] or all(
        a["Namespace"] == "default" for a in shared_api.allocations(namespace="default", prefix=prod[:4]))
    assert [a["ID"] for a in shared_api.allocations(namespace="prod", prefix=prod[:4])] == [prod]


def test_prefix_error_texts(shared_api):
    cases = {
        "abc": "alloc lookup failed: index error: Input (without hyphens) must be even length",
        "gg": "alloc lookup failed: index error: Invalid UUID: encoding/hex: invalid byte: U+0067 'g'",
        "a" * 38: "alloc lookup failed: index error: Invalid UUID length. UUID have 36 characters; got 38",
        "ab-cd-ef-01-23-45": 'alloc lookup failed: index error: UUID should have maximum of 4 "-"; got 5',
    }
    for prefix, text in cases.items():
        response = shared_api.get("/v1/allocations", params={"prefix": prefix})
        assert response.status_code == 500, prefix
        assert response.text == text
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_stub_fields(shared_api):
    alloc = shared_api.allocations(namespace="default")[0]
    for key in ("ID", "EvalID", "Name", "Namespace", "NodeID", "NodeName", "JobID", "JobType", "JobVersion",
                "TaskGroup", "DesiredStatus", "DesiredDescription", "ClientStatus", "ClientDescription",
                "DesiredTransition", "TaskStates", "DeploymentStatus", "FollowupEvalID", "NextAllocation",
                "RescheduleTracker", "PreemptedAllocations", "PreemptedByAllocation", "CreateIndex",
                "ModifyIndex", "CreateTime", "ModifyTime"):
        assert key in alloc, key
    for key in ("Job", "PreviousAllocation", "AllocModifyIndex", "AllocatedResources"):
        assert key not in alloc, key
    assert alloc["DesiredTransition"] == {"Migrate": None, "Reschedule": None, "ForceReschedule": None,
                                          "NoShutdownDelay": None}
    assert isinstance(alloc["CreateTime"], int) and alloc["CreateTime"] > 10 ** 18


def test_names_follow_job_group_index(shared_api):
    names = sorted(alloc["Name"] for alloc in shared_api.by_job("web"))
    assert names == ["web.frontend[0]", "web.frontend[1]", "web.frontend[2]"]


def test_resources_and_task_states_switches(shared_api):
    with_resources = shared_api.allocations(resources="true")[0]
    assert "AllocatedResources" in with_resources
    assert with_resources["TaskStates"] is not None
    without_states = shared_api.allocations(task_states="false")[0]
    assert without_states["TaskStates"] is None
    assert "AllocatedResources" not in without_states


def test_bad_bool_parameters_are_500(shared_api):
    response = shared_api.get("/v1/allocations", params={"resources": "yes"})
    assert response.status_code == 500
    assert response.text == ('Failed to parse value of "resources" (yes) as a bool: '
                             'strconv.ParseBool: parsing "yes": invalid syntax')
    response = shared_api.get("/v1/allocations", params={"task_states": "nah"})
    assert response.status_code == 500
    assert response.text.startswith('Failed to parse value of "task_states" (nah) as a bool')


def test_read_headers(shared_api):
    response = shared_api.get("/v1/allocations")
    assert int(response.headers["X-Nomad-Index"]) >= max(a["ModifyIndex"] for a in shared_api.allocations())
    assert response.headers["X-Nomad-KnownLeader"] == "true"
    assert response.headers["X-Nomad-LastContact"] == "0"
    assert "X-Nomad-NextToken" not in response.headers


def test_pretty_output(shared_api):
    pretty = shared_api.get("/v1/allocations", params={"pretty": ""})
    assert pretty.text.endswith("\n")
    assert '\n    {\n        "ID": ' in pretty.text
    compact = shared_api.get("/v1/allocations", params={"pretty": "0"})
    assert "\n" not in compact.text
    assert json.loads(pretty.text) == json.loads(compact.text) or len(json.loads(pretty.text)) == len(compact.json())


def test_methods_other_than_get_are_405(shared_api):
    response = shared_api.post("/v1/allocations")
    assert response.status_code == 405
    assert response.text == "Invalid method"


def test_unknown_paths(shared_api):
    bare = shared_api.get("/v1/allocations/")
    assert bare.status_code == 404 and bare.text == ""
    assert shared_api.get("/v1/evaluations").status_code == 404
    alloc_id = shared_api.allocations()[0]["ID"]
    for path in (f"/v1/allocation/{alloc_id}/bogus", f"/v1/allocation/{alloc_id}/", f"/v1/allocation/{alloc_id}/a/b",
                 f"/v1/client/allocation/{alloc_id}", f"/v1/client/allocation/{alloc_id}/bogus"):
        response = shared_api.get(path)
        assert response.status_code == 404, path
        assert response.text == "resource not found", path


def test_unknown_region_is_500(shared_api):
    response = shared_api.get("/v1/allocations", params={"region": "mars"})
    assert response.status_code == 500
    assert response.text == "No path to region"
    assert shared_api.get("/v1/allocations", params={"region": "global"}).status_code == 200


@pytest.fixture(scope="module")
def api_1_6(emulator_1_6_5):
    return Api(emulator_1_6_5)


def test_stale_quirk_keeps_the_body(api_1_6):
    """Nomad 1.6.5; 1.8+ in test_versions.py (row 5 of the changes reference)."""
    assert api_1_6.get("/v1/allocations", params={"stale": ""}).status_code == 200
    response = api_1_6.get("/v1/allocations", params={"stale": "maybe"})
    assert response.status_code == 400
    assert response.text.startswith("Expect `true` or `false` for `stale` query string parameter, got maybe[")


def test_per_page_parsing(api_1_6):
    """Nomad 1.6.5; 1.8+ in test_versions.py (row 4 of the changes reference)."""
    everything = api_1_6.allocations()
    for junk in ("abc", "1.5", "99999999999"):
        assert len(api_1_6.allocations(per_page=junk)) == len(everything), junk
    response = api_1_6.get("/v1/allocations", params={"namespace": "*", "per_page": "-1"})
    assert response.json() == []
    assert response.headers["X-Nomad-NextToken"] == f"{everything[0]['CreateIndex']}.{everything[0]['ID']}"


def test_garbage_next_token_is_not_rejected(shared_api):
    response = shared_api.get("/v1/allocations", params={"namespace": "*", "next_token": "zzz"})
    assert response.status_code == 200
    assert response.json() == []
    assert "X-Nomad-NextToken" not in response.headers


def test_malformed_query_strings_do_not_break_the_server(shared_api):
    for query in ("?%zz", "?namespace=%ff%fe", "?per_page=%00", "?index=-1", "?prefix=%e2%82%ac%e2"):
        response = shared_api.get("/v1/allocations" + query)
        assert response.status_code in (200, 400, 500), query
    assert shared_api.get("/v1/allocations").status_code == 200


def test_a_filter_longer_than_8_kib_is_served_like_nomad(shared_api):
    """Go's net/http takes request lines up to 1 MiB; aiohttp's default (8 KiB) would refuse this one."""
    alloc_id = shared_api.allocations()[0]["ID"]
    clauses = [f'ID == "{alloc_id}"'] + [f'ID == "{n:08x}-0000-4000-8000-000000000000"' for n in range(400)]
    response = shared_api.get("/v1/allocations", params={"filter": " or ".join(clauses)})
    assert len(response.request.url) > 16384
    assert response.status_code == 200 and [a["ID"] for a in response.json()] == [alloc_id]
