# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""_alloc_facts: what an allocation is (label, namespace, terminal, tasks and their lifecycle); its one full read is
tested with the other reads in test_allocations.py."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import facts

ALLOC_ID = "5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10"


def allocation_with_job(tasks, group="frontend", **extra):
    """An allocation of group `group` whose embedded job holds `tasks` ({name: lifecycle or None}) and a
    second group with other tasks, so the walker has to pick the right group."""
    return dict({
        "ID": ALLOC_ID, "Name": f"web.{group}[0]", "TaskGroup": group, "Namespace": "prod",
        "Job": {"TaskGroups": [
            {"Name": "other", "Tasks": [{"Name": "not-mine"}]},
            {"Name": group, "Tasks": [{"Name": name, "Lifecycle": lifecycle} for name, lifecycle in tasks.items()]},
        ]},
    }, **extra)


@pytest.mark.parametrize("allocation, label", [
    ({"ID": ALLOC_ID, "Name": "web.frontend[1]"}, "5a222182 (web.frontend[1])"),
    ({"ID": ALLOC_ID}, "5a222182"),
    ({"ID": None, "Name": ""}, ""),
])
def test_allocation_label(allocation, label):
    assert facts.allocation_label(allocation) == label


def test_namespace_of_prefers_the_allocations_own():
    assert facts.namespace_of({"Namespace": "prod"}, "default") == "prod"
    assert facts.namespace_of({}, "default") == "default"
    assert facts.namespace_of({"Namespace": ""}) is None
    assert facts.namespace_params(None) == {} and facts.namespace_params("prod") == {"namespace": "prod"}


@pytest.mark.parametrize("status, terminal", [("complete", True), ("failed", True), ("lost", True),
                                              ("running", False), ("pending", False), (None, False)])
def test_terminal_statuses(status, terminal):
    assert facts.is_terminal({"ClientStatus": status}) is terminal


def test_task_names_follow_the_job_order_of_the_allocations_group():
    allocation = allocation_with_job({"web": None, "init": {"Hook": "prestart"}},
                                     TaskStates={"init": {}, "web": {}, "gone": {}})
    assert facts.task_names(allocation) == ["web", "init"]


def test_task_names_without_the_job_are_the_sorted_task_states():
    assert facts.task_names({"TaskGroup": "g", "TaskStates": {"b": {}, "a": {}}}) == ["a", "b"]
    assert facts.task_names({}) == []


def test_task_state_of_an_unknown_task_is_empty():
    assert facts.task_state({"TaskStates": {"web": {"State": "running"}}}, "web") == {"State": "running"}
    assert facts.task_state({"TaskStates": None}, "web") == {}


def test_lifecycles_come_from_the_resources_first_then_the_job():
    from_resources = {"AllocatedResources": {"TaskLifecycles": {"web": None}}}
    assert facts.task_lifecycles(dict(allocation_with_job({"init": {"Hook": "prestart"}}), **from_resources)) == {"web": None}
    assert facts.task_lifecycles(allocation_with_job({"init": {"Hook": "prestart"}})) == {"init": {"Hook": "prestart"}}
    assert facts.task_lifecycles({"TaskGroup": "g"}) is None


@pytest.mark.parametrize("lifecycle, once", [
    (None, False),
    ({"Hook": "prestart", "Sidecar": False}, True),
    ({"Hook": "prestart", "Sidecar": True}, False),
    ({"Hook": "poststop"}, True),
    ({}, False),
])
def test_runs_once_and_runs_for_good_are_each_others_opposite(lifecycle, once):
    allocation = allocation_with_job({"hooked": lifecycle})
    assert facts.runs_once(allocation, "hooked") is once
    assert facts.runs_for_good(lifecycle) is not once


def test_a_task_not_in_the_job_does_not_run_once():
    assert facts.runs_once(allocation_with_job({"web": None}), "not-mine") is False
    assert facts.runs_once({"TaskGroup": "frontend"}, "web") is False
