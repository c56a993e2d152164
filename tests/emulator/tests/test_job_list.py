# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GET /v1/jobs as Nomad 1.10 serves it: reference nomad-jobs-behaviour.md §4.2 (and §0.5 for blocking queries).
One emulator of scenarios/jobs.yml (virtual allocations) and one of jobs-acl.yml for the module."""
from __future__ import annotations

import threading

import pytest
from conftest import Api
from jobfiles import parse, register, web_hcl

MANAGEMENT = "00000000-0000-4000-8000-000000000001"
READER = "00000000-0000-4000-8000-000000000002"


@pytest.fixture(scope="module")
def jobs_api(jobs_api):
    """conftest's jobs_api with three jobs to list, in two namespaces."""
    for job_id, namespace in (("list-a", "default"), ("list-b", "default"), ("list-c", "prod")):
        job = parse(jobs_api, web_hcl(job_id))
        job["Namespace"] = namespace
        job["Meta"] = {"team": job_id}
        _register_in(jobs_api, job, namespace)
    return jobs_api


def _register_in(api, job: dict, namespace: str) -> None:
    response = api.post("/v1/jobs", json={"Job": job}, params={"namespace": namespace})
    assert response.status_code == 200, response.text


def listed(api, **params):
    response = api.get("/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return response


def test_stub_fields_and_summary(jobs_api):
    """§4.2: JobListStub fields in Nomad's order, JobSummary per group, `Meta` null without `meta=true`."""
    stubs = listed(jobs_api, prefix="list-a").json()
    assert [stub["ID"] for stub in stubs] == ["list-a"]
    stub = stubs[0]
    assert list(stub) == ["ID", "ParentID", "Name", "Namespace", "Datacenters", "NodePool", "Multiregion", "Type",
                          "Priority", "Periodic", "ParameterizedJob", "Stop", "Status", "StatusDescription",
                          "JobSummary", "CreateIndex", "ModifyIndex", "JobModifyIndex", "SubmitTime", "Meta"]
    assert (stub["Namespace"], stub["Type"], stub["Status"], stub["Meta"]) == ("default", "service", "running", None)
    assert stub["Periodic"] is False and stub["ParameterizedJob"] is False and stub["SubmitTime"] > 0
    assert stub["JobSummary"]["JobID"] == "list-a"
    assert stub["JobSummary"]["Summary"]["web"]["Running"] == 2
    with_meta = listed(jobs_api, prefix="list-a", meta="true").json()
    assert with_meta[0]["Meta"] == {"team": "list-a"}


def test_meta_flag_that_is_not_a_bool_is_a_500(jobs_api):
    """§4.2: an unparsable `meta` is a 500 with strconv's text."""
    response = jobs_api.get("/v1/jobs", params={"meta": "maybe"})
    assert response.status_code == 500
    assert response.text == 'Failed to parse value of "meta" (maybe) as a bool: strconv.ParseBool: parsing "maybe": ' \
                            "invalid syntax"


def test_namespace_star_prefix_and_order(jobs_api):
    """§4.2: `*` lists every namespace, ordered by (Namespace, ID); `reverse=true` reverses it (1.10)."""
    every = [(stub["Namespace"], stub["ID"]) for stub in listed(jobs_api, namespace="*", prefix="list-").json()]
    assert every == [("default", "list-a"), ("default", "list-b"), ("prod", "list-c")]
    reverse = listed(jobs_api, namespace="*", prefix="list-", reverse="true").json()
    assert [stub["ID"] for stub in reverse] == ["list-c", "list-b", "list-a"]
    assert [stub["ID"] for stub in listed(jobs_api, namespace="prod").json()] == ["list-c"]
    assert listed(jobs_api, prefix="nothing-").json() == []


def test_pagination_token_is_namespace_dot_id(jobs_api):
    """§4.2: the token names the first job of the next page as `<namespace>.<jobID>`; bad `per_page` is a 400."""
    first = listed(jobs_api, namespace="*", prefix="list-", per_page="2")
    assert [stub["ID"] for stub in first.json()] == ["list-a", "list-b"]
    assert first.headers["X-Nomad-NextToken"] == "prod.list-c"
    second = listed(jobs_api, namespace="*", prefix="list-", per_page="2", next_token="prod.list-c")
    assert [stub["ID"] for stub in second.json()] == ["list-c"] and "X-Nomad-NextToken" not in second.headers
    bad = jobs_api.get("/v1/jobs", params={"per_page": "x"})
    assert (bad.status_code, bad.text) == (400, "Expect a number for `per_page` query string parameter")


def test_filter_runs_on_the_full_job(jobs_api):
    """§4.2: the filter sees the full job (Meta, Version), not only the stub; a bad filter is a 400."""
    found = listed(jobs_api, namespace="*", filter='Meta.team == "list-b"').json()
    assert [stub["ID"] for stub in found] == ["list-b"]
    versions = listed(jobs_api, prefix="list-", filter="Version == 0").json()  # Version is not a stub field
    assert [stub["ID"] for stub in versions] == ["list-a", "list-b"]
    bad = jobs_api.get("/v1/jobs", params={"filter": "Meta.team =="})
    assert bad.status_code == 400
    assert bad.text.startswith("failed to create result paginator: failed to read filter expression: ")


def test_blocking_list_returns_when_a_job_is_registered(jobs_api):
    """§0.5/§4.2: a blocking query on the list index returns once a registration raises it."""
    index = int(listed(jobs_api).headers["X-Nomad-Index"])
    answers = {}

    def block():
        answers["response"] = jobs_api.get("/v1/jobs", params={"index": str(index), "wait": "60s"})

    waiter = threading.Thread(target=block)
    waiter.start()
    register(jobs_api, parse(jobs_api, web_hcl("list-late")))
    waiter.join(timeout=60)
    response = answers["response"]
    assert int(response.headers["X-Nomad-Index"]) > index
    assert "list-late" in [stub["ID"] for stub in response.json()]


def test_namespace_star_lists_only_namespaces_with_list_jobs(jobs_acl_emulator):
    """§4.2: `*` needs list-jobs in at least one namespace (else 403) and lists only those namespaces."""
    management = Api(jobs_acl_emulator, token=MANAGEMENT)
    job = parse(management, web_hcl("acl-prod"))
    job["Namespace"] = "prod"
    response = management.post("/v1/jobs", json={"Job": job}, params={"namespace": "prod"})
    assert response.status_code == 200, response.text
    register(management, parse(management, web_hcl("acl-default")))
    everyone = [stub["ID"] for stub in listed(management, namespace="*").json()]
    assert everyone == ["acl-default", "acl-prod"]
    reader = Api(jobs_acl_emulator, token=READER)
    assert [stub["ID"] for stub in listed(reader, namespace="*").json()] == ["acl-default"]
    assert reader.get("/v1/jobs", params={"namespace": "prod"}).status_code == 403
    lifecycle_only = Api(jobs_acl_emulator, token="00000000-0000-4000-8000-000000000003")
    assert lifecycle_only.get("/v1/jobs", params={"namespace": "*"}).status_code == 403
