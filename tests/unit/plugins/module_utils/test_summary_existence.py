# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""_summary (summary, fields, job-free failures), _selection (why a selection is empty) and node prefixes."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import (
    SelectionNotFoundError,
    explain_empty_selection,
    require_selection_exists,
    sent_filter,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import ConnectionOptions
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import (
    AmbiguousNodePrefixError,
    resolve_node_selector,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import (
    iso_time,
    keep_fields,
    summarize,
    without_job,
)
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    FakeNomad,
    Reply,
    json_reply,
)

NODES = [{"ID": "aa11c0de-0000-4000-8000-000000000001", "Name": "node-1"},
         {"ID": "aa22c0de-0000-4000-8000-000000000002", "Name": "node-2"}]


def client_for(nomad):
    return NomadClient(ConnectionOptions(address=nomad.address, namespace="default", retries=0))


def test_iso_time_from_nanoseconds():
    assert iso_time(1700000000123456789) == "2023-11-14T22:13:20Z"
    assert iso_time(0) is None


def test_summary_entry():
    alloc = {"ID": "5a222182-ff6d", "Name": "web.frontend[0]", "NodeName": "node-1", "ClientStatus": "running",
             "DesiredStatus": "run", "DeploymentStatus": {"Healthy": True}, "Job": {"huge": True},
             "TaskStates": {"server": {"State": "running", "Restarts": 2, "Events": [
                 {"Type": "Restarting", "DisplayMessage": "Task restarting in 1s", "Time": 1700000000000000000}]}}}
    entry = summarize([alloc])[0]
    assert entry["id"] == "5a222182" and entry["health"] == "healthy" and entry["node"] == "node-1"
    assert entry["tasks"] == [{"task": "server", "state": "running", "failed": False, "restarts": 2,
                               "last_event": "Restarting: Task restarting in 1s",
                               "last_event_time": "2023-11-14T22:13:20Z"}]
    assert "Job" not in without_job([alloc])[0] and "Job" in alloc


def test_keep_fields_reports_unknown_names():
    kept, unknown = keep_fields([{"ID": "a", "Name": "x"}, {"ID": "b", "Job": {}}], ["ID", "Job", "Nope"])
    assert kept == [{"ID": "a"}, {"ID": "b", "Job": {}}] and unknown == ["Nope"]


def _answers(missing):
    def answer(request):
        for prefix, text in missing.items():
            if request.path.startswith(prefix):
                return Reply(status=404, body=text)
        if request.path == "/v1/nodes":
            return json_reply([])
        return json_reply({})
    return answer


@pytest.mark.parametrize("selector, missing, expected", [
    ({"job": "wbe"}, {"/v1/job/": "job not found"}, 'job "wbe" not found in namespace "default"'),
    ({"job": "web"}, {"/v1/namespace/": "Namespace not found"}, 'namespace "default" not found'),
    ({"node": "node-9"}, {}, 'node "node-9" not found'),
])
def test_explain_empty_selection(selector, missing, expected):
    with FakeNomad(_answers(missing)) as nomad:
        assert explain_empty_selection(client_for(nomad), selector) == f"{expected} at {nomad.address}"
        with pytest.raises(SelectionNotFoundError):
            require_selection_exists(client_for(nomad), selector)


def _job_only_in(namespaces, jobs_status=200):
    def answer(request):
        if request.path.startswith("/v1/job/"):
            return Reply(status=404, body="job not found")
        if request.path == "/v1/jobs":
            if jobs_status != 200:
                return Reply(status=jobs_status, body="Permission denied")
            return json_reply([{"ID": "worker", "Namespace": name} for name in namespaces]
                              + [{"ID": "worker-2", "Namespace": "default"}])
        return json_reply({})
    return answer


@pytest.mark.parametrize("namespaces, jobs_status, hint", [
    (["prod"], 200, '; it exists in namespace "prod" (set namespace, or use namespace "*" to search all)'),
    (["prod", "qa"], 200, '; it exists in namespaces "prod", "qa" (set namespace, or use namespace "*" to search all)'),
    ([], 403, ' (use namespace "*" to search all)'),
    ([], 200, ""),
])
def test_a_job_missing_here_names_the_namespaces_that_have_it(namespaces, jobs_status, hint):
    with FakeNomad(_job_only_in(namespaces, jobs_status)) as nomad:
        message = explain_empty_selection(client_for(nomad), {"job": "worker"})
        assert message == f'job "worker" not found in namespace "default" at {nomad.address}{hint}'
        assert nomad.requests[-1].path == "/v1/jobs" and nomad.requests[-1].query["namespace"] == "*"


def test_everything_exists_means_no_explanation():
    with FakeNomad(lambda request: json_reply(NODES[:1] if request.path == "/v1/nodes" else {})) as nomad:
        assert explain_empty_selection(client_for(nomad), {"job": "web", "node": "node-1"}) is None


def test_forbidden_existence_check_says_nothing():
    with FakeNomad(lambda request: Reply(status=403, body="Permission denied")) as nomad:
        assert explain_empty_selection(client_for(nomad), {"job": "web", "node": "node-1"}) is None


def test_node_prefix_resolution():
    with FakeNomad(lambda request: json_reply(NODES)) as nomad:
        client = client_for(nomad)
        resolved = resolve_node_selector(client, {"node": "aa11c"})
        assert resolved["node_id"] == NODES[0]["ID"]
        assert nomad.requests[-1].query["prefix"] == "aa11"  # odd length: the CLI drops the last digit
        assert sent_filter(resolved) == f'(NodeID == "{NODES[0]["ID"]}" or NodeName == "aa11c")'
        with pytest.raises(AmbiguousNodePrefixError, match="aa11c0de \\(node-1\\), aa22c0de \\(node-2\\)"):
            resolve_node_selector(client, {"node": "aa"})
        count = len(nomad.requests)
        assert resolve_node_selector(client, {"node": "node-1"}) == {"node": "node-1"}
        assert len(nomad.requests) == count  # a name costs no request


def test_allocation_diff_names_node_and_statuses():
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.results import allocation_diff

    alloc = {"ID": "5a222182-ff6d", "Name": "web.frontend[0]", "NodeName": "node-1", "ClientStatus": "running",
             "DesiredStatus": "run", "TaskStates": {"server": {"State": "running", "Restarts": 1}}}
    stop = allocation_diff("stop", alloc, {"changed": True})
    assert stop["before_header"] == "5a222182 web.frontend[0] on node-1 (client status running, desired status run)"
    assert (stop["before"], stop["after"]) == ("desired_status: run\n", "desired_status: stop\n")
    # the after header agrees with its body (it said "desired status run" before issue 22)
    assert stop["after_header"] == "5a222182 web.frontend[0] on node-1 (client status running, desired status stop)"
    waited = allocation_diff("stop", alloc, {"changed": True}, observed=dict(alloc, ClientStatus="complete"))
    assert waited["after_header"] == "5a222182 web.frontend[0] on node-1 (client status complete, desired status stop)"
    restarted = dict(alloc, TaskStates={"server": {"State": "running", "Restarts": 2}})
    restart = allocation_diff("restart", alloc, {"changed": True, "tasks": ["server"]}, observed=restarted)
    assert (restart["before"], restart["after"]) == ("task server: running, restarts 1\n",
                                                     "task server: running, restarts 2, restarted\n")
    signal = allocation_diff("signal", alloc, {"changed": True, "tasks": ["server"]}, signal="SIGHUP")
    assert signal["after"] == "task server: running, restarts 1, SIGHUP sent\n"


def test_explicit_ids_fail_where_selected_ones_are_skipped():
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.lifecycle import (
        LifecycleError,
        refuse_explicit_skip,
    )

    skipped = {"changed": False, "skipped_reason": "allocation is terminal (ClientStatus complete)"}
    assert refuse_explicit_skip(skipped, {"ID": "a"}, set(), "restart") is skipped
    with pytest.raises(LifecycleError, match="cannot restart an allocation given by id: allocation is terminal"):
        refuse_explicit_skip(skipped, {"ID": "a"}, {"a"}, "restart")
