# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""_selection.select(), the one entry point: explicit IDs and prefixes, the filter sent, empty selections (acting
fails, reading explains) and the node resolved once."""

from __future__ import annotations

import re

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import ConnectionOptions
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import (
    ListOptions,
    Selection,
    SelectionNotFoundError,
    missing_selector_message,
    select,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import AllocationNotFoundError
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    FakeNomad,
    Reply,
    json_reply,
)

NODE = {"ID": "aa11c0de-0000-4000-8000-000000000001", "Name": "node-1"}
ALLOCS = [
    {"ID": "5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10", "JobID": "web", "NodeID": NODE["ID"], "ClientStatus": "running"},
    {"ID": "5a2f0000-0000-4000-8000-000000000001", "JobID": "web", "NodeID": NODE["ID"], "ClientStatus": "pending"},
    {"ID": "9f1c0000-0000-4000-8000-000000000002", "JobID": "api", "NodeID": NODE["ID"], "ClientStatus": "running"},
]
WEB = [ALLOCS[0], ALLOCS[1]]


def cluster(request):
    """Allocation listings by prefix (a filter is answered with the web allocations, narrowed by its ID clauses,
    or nothing for job "wbe"), the one node, and 404 for the job "wbe"."""
    if request.path == "/v1/allocations":
        expression = request.query.get("filter", "")
        if "wbe" in expression:
            return json_reply([], index=41)
        listed = [alloc for alloc in ALLOCS if alloc["ID"].startswith(request.query.get("prefix", ""))]
        if expression:
            ids = re.findall(r'\bID == "([^"]+)"', expression)
            listed = [alloc for alloc in listed if alloc in WEB and (not ids or alloc["ID"] in ids)]
        return json_reply(listed, index=40)
    if request.path == "/v1/nodes":
        return json_reply([NODE] if NODE["ID"].startswith(request.query.get("prefix", "")) else [])
    if request.path == "/v1/job/wbe":
        return Reply(status=404, body="job not found")
    if request.path == "/v1/jobs":
        return json_reply([])
    return json_reply({})


@pytest.fixture
def nomad():
    with FakeNomad(cluster) as server:
        yield server


def client_for(nomad):
    return NomadClient(ConnectionOptions(address=nomad.address, namespace="default", retries=0))


def paths(nomad):
    return [request.path for request in nomad.requests]


def test_explicit_ids_and_prefixes_are_the_allocations_they_resolve_to(nomad):
    selection = select(client_for(nomad), {"id": ["9f", ALLOCS[0]["ID"], "9f1c"]})
    assert isinstance(selection, Selection)
    assert [alloc["ID"] for alloc in selection.allocations] == [ALLOCS[2]["ID"], ALLOCS[0]["ID"]]
    assert selection.explicit_ids == {ALLOCS[2]["ID"], ALLOCS[0]["ID"]}
    assert selection.filter is None and selection.index == 40 and selection.why_empty is None


def test_an_unknown_id_fails_before_anything_is_selected(nomad):
    with pytest.raises(AllocationNotFoundError, match='No allocation\\(s\\) with prefix or id "ee" found'):
        select(client_for(nomad), {"id": ["9f", "ee"]}, acting=True)


def test_a_selector_without_id_names_no_allocation_explicitly(nomad):
    selection = select(client_for(nomad), {"job": "web"})
    assert selection.allocations == WEB and selection.explicit_ids == frozenset()
    assert selection.filter == 'JobID == "web"'
    assert nomad.requests[-1].query["filter"] == 'JobID == "web"'


def test_ids_with_other_options_are_narrowed_by_one_server_side_filter(nomad):
    selection = select(client_for(nomad), {"id": ["5a22"], "job": "web"}, ListOptions(per_page=5))
    assert selection.allocations == [ALLOCS[0]] and selection.explicit_ids == {ALLOCS[0]["ID"]}
    listing = nomad.requests[-1]
    assert listing.query["filter"] == f'(ID == "{ALLOCS[0]["ID"]}") and JobID == "web"'
    assert listing.query["per_page"] == "5"
    assert selection.filter == 'JobID == "web"'  # the `filter` result key is the selector's, without the IDs


def test_the_list_options_namespace_is_sent_and_kept_in_the_filter(nomad):
    selection = select(client_for(nomad), {"prefix": "5A2", "job": "web"}, ListOptions(namespace="*"))
    assert nomad.requests[-1].query == {"namespace": "*", "prefix": "5a", "filter": 'ID matches "^5a2" and JobID == "web"'}
    assert selection.filter == 'ID matches "^5a2" and JobID == "web"'


def test_an_empty_selection_of_a_missing_job_fails_an_acting_caller(nomad):
    with pytest.raises(SelectionNotFoundError, match=f'^job "wbe" not found in namespace "default" at {nomad.address}$'):
        select(client_for(nomad), {"job": "wbe"}, acting=True)


def test_an_empty_selection_of_a_missing_job_is_explained_to_a_reader(nomad):
    selection = select(client_for(nomad), {"job": "wbe"})
    assert selection.allocations == [] and selection.index == 41
    assert selection.why_empty == f'job "wbe" not found in namespace "default" at {nomad.address}'


def test_a_selection_that_matched_costs_no_existence_request(nomad):
    select(client_for(nomad), {"job": "web"}, acting=True)
    assert paths(nomad) == ["/v1/allocations"]


def test_the_node_is_resolved_once_per_selection_even_when_it_comes_back_empty(nomad):
    selection = select(client_for(nomad), {"node": "aa11c", "job": "wbe"})
    assert paths(nomad).count("/v1/nodes") == 1  # the prefix lookup; the explanation trusts the resolved ID
    assert selection.selector["node_id"] == NODE["ID"]
    assert selection.filter == f'JobID == "wbe" and (NodeID == "{NODE["ID"]}" or NodeName == "aa11c")'
    assert selection.why_empty.startswith('job "wbe" not found')


def test_a_resolved_selector_is_not_resolved_again(nomad):
    first = select(client_for(nomad), {"node": "aa11c"})
    count = len(nomad.requests)
    again = select(client_for(nomad), first.selector)
    assert paths(nomad)[count:] == ["/v1/allocations"]
    assert again.filter == first.filter


@pytest.mark.parametrize("params", [
    {},
    {"id": [], "job": None, "filter": "", "client_status": None},
    {"id": [""], "filter": "   ", "prefix": None},
])
def test_no_selector_option_is_refused_in_one_line(params):
    assert missing_selector_message(params) == (
        "set at least one selector option (id, job, task_group, node, client_status, filter, prefix)")


@pytest.mark.parametrize("params", [{"job": "web"}, {"id": ["8d1c"]}, {"client_status": ["running"]}])
def test_any_selector_option_is_enough(params):
    assert missing_selector_message(params) is None
