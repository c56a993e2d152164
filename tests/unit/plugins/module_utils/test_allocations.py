# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one allocation-reading API (_allocations): every read sends the allocation's namespace, check
results are read in one place, and the healthy wait reads checks only for allocations that run."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import facts as alloc_facts
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import reads as allocations
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import ListOptions
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SelectorError

ALLOC = {"ID": "5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10", "Namespace": "prod", "ClientStatus": "running",
         "DesiredStatus": "run", "TaskStates": {"app": {"State": "running"}}}


class Response:
    def __init__(self, data, index=7):
        self.data = data
        self.index = index


class RecordingClient:
    def __init__(self, answers):
        self.answers = answers  # path -> data or exception
        self.calls = []

    def read(self, path, params=None, timeout=None):
        self.calls.append(("read", path, dict(params or {})))
        return self._answer(path)

    def blocking_read(self, path, params, index, wait):
        self.calls.append(("block", path, dict(params or {}), index, wait))
        return self._answer(path)

    def paginate(self, path, params=None, per_page=None, limit=None, on_response=None):
        response = self.read(path, params)
        if on_response is not None:
            on_response(response)
        return iter(response.data)

    def _answer(self, path):
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return Response(answer)


def test_every_read_of_one_allocation_sends_its_namespace():
    path = f"/v1/allocation/{ALLOC['ID']}"
    client = RecordingClient({path: ALLOC, path + "/checks": None})
    assert alloc_facts.read_allocation(client, ALLOC) == ALLOC
    assert alloc_facts.blocking_read_allocation(client, ALLOC, 5, 30) == (ALLOC, 7)
    assert allocations.read_checks(client, ALLOC) == {}  # Nomad's null: no checks (yet)
    assert [call[2] for call in client.calls] == [{"namespace": "prod"}] * 3
    assert client.calls[1][3:] == (5, 30)


def test_an_id_without_namespace_keeps_the_connection_namespace():
    client = RecordingClient({"/v1/allocation/abc": {"ID": "abc"}})
    alloc_facts.read_allocation(client, "abc")
    assert client.calls == [("read", "/v1/allocation/abc", {})]


def test_the_full_read_of_a_stub_prefers_its_own_namespace_and_reports_the_response():
    client = RecordingClient({f"/v1/allocation/{ALLOC['ID']}": ALLOC})
    seen = []
    assert alloc_facts.read_allocation(client, ALLOC, seen.append, namespace="other") == ALLOC
    assert client.calls == [("read", f"/v1/allocation/{ALLOC['ID']}", {"namespace": "prod"})]
    assert [response.index for response in seen] == [7]


def test_checks_of_a_garbage_collected_allocation_are_empty():
    client = RecordingClient({f"/v1/allocation/{ALLOC['ID']}/checks": NomadNotFoundError("gone")})
    assert allocations.read_checks(client, ALLOC) == {}


def test_the_healthy_wait_reads_checks_only_for_running_allocations_and_returns_them_only_when_asked():
    stopped = dict(ALLOC, ID="9f000000-0000-4000-8000-000000000000", ClientStatus="complete", DesiredStatus="stop")
    result = {"c": {"Check": "ready", "Status": "success", "Output": "ok", "Timestamp": 2}}
    client = RecordingClient({"/v1/allocations": [dict(ALLOC), dict(stopped)],
                              f"/v1/allocation/{ALLOC['ID']}/checks": result,
                              f"/v1/allocation/{stopped['ID']}/checks": None})
    options = ListOptions(namespace="prod", task_states=False)
    outcome = allocations.wait_for_allocations(client, {"job": "web"}, options, "healthy", 30)
    assert outcome.met
    check_reads = [call for call in client.calls if call[1].endswith("/checks")]
    assert check_reads == [("read", f"/v1/allocation/{ALLOC['ID']}/checks", {"namespace": "prod"})]
    assert "task_states" not in client.calls[0][2]  # health is judged from the task states
    assert all("Checks" not in allocation for allocation in outcome.value)
    # checks=true attaches every allocation's results (a stopped one has none: Nomad answers null)
    outcome = allocations.wait_for_allocations(client, {"job": "web"}, options, "healthy", 30, checks=True)
    assert outcome.value[0]["Checks"] == result and outcome.value[1]["Checks"] == {}


@pytest.mark.parametrize("condition", ["running", "healthy"])
def test_a_wait_that_times_out_says_what_held_it_up(condition):
    pending = dict(ALLOC, ClientStatus="pending", Name="web.app[0]")
    client = RecordingClient({"/v1/allocations": [pending]})
    outcome = allocations.wait_for_allocations(client, {"job": "web"}, ListOptions(), condition, 0)
    assert not outcome.met
    assert outcome.progress == f"1 allocation(s) not {condition} yet: 5a222182 (web.app[0]): client status pending"


def test_per_page_up_to_nomads_32_bit_limit_is_accepted():
    assert ListOptions(per_page=2 ** 31 - 1).per_page == 2 ** 31 - 1


def test_per_page_above_nomads_32_bit_limit_is_refused():
    """Nomad 1.6 ignored a larger per_page (no paging at all), Nomad 1.8+ answers 400; refused before any request."""
    with pytest.raises(SelectorError, match=r"per_page must be at most 2147483647, Nomad's 32-bit limit"):
        ListOptions(per_page=2 ** 31)
