# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Wait conditions of nomad_alloc_info: the pure predicates, and the loop driven by blocking queries."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils._waits import (
    condition_met,
    describe_progress,
    is_healthy,
    wait_for_condition,
)


def alloc(client="running", desired="run", healthy=None, tasks=None, alloc_id="aaaaaaaa-1"):
    allocation = {"ID": alloc_id, "ClientStatus": client, "DesiredStatus": desired}
    if healthy is not None:
        allocation["DeploymentStatus"] = {"Healthy": healthy}
    if tasks is not None:
        allocation["TaskStates"] = tasks
    return allocation


@pytest.mark.parametrize("allocations, running, healthy, terminal, absent", [
    ([], False, False, True, True),
    ([alloc("running", healthy=True)], True, True, False, False),
    ([alloc("running", healthy=False)], True, False, False, False),
    ([alloc("pending")], False, False, False, False),
    ([alloc("running", healthy=True), alloc("complete", desired="stop")], True, True, False, False),
    ([alloc("complete", desired="stop"), alloc("failed")], False, False, True, False),
    ([alloc("running", desired="stop")], False, False, False, False),
])
def test_conditions(allocations, running, healthy, terminal, absent):
    assert condition_met("running", allocations) is running
    assert condition_met("healthy", allocations) is healthy
    assert condition_met("terminal", allocations) is terminal
    assert condition_met("absent", allocations) is absent


def test_health_without_deployment_status_uses_task_states():
    assert is_healthy(alloc(tasks={"app": {"State": "running"}, "migrate": {"State": "dead", "Failed": False}}))
    assert not is_healthy(alloc(tasks={"app": {"State": "running"}, "migrate": {"State": "dead", "Failed": True}}))
    assert not is_healthy(alloc(tasks={"app": {"State": "pending"}}))
    assert not is_healthy(alloc(tasks={}))


def test_progress_names_the_allocations_that_are_not_there_yet():
    text = describe_progress("running", [alloc("pending", alloc_id="12345678-x"), alloc("running")])
    assert text == "1 allocation(s) not running yet: 12345678 (pending)"
    assert describe_progress("running", []) == "no allocation that should run is selected"
    assert describe_progress("absent", [alloc()]) == "1 allocation(s) still selected"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_wait_loop_blocks_on_the_last_index_until_met():
    clock = FakeClock()
    states = [([alloc("pending")], 10), ([alloc("pending")], 11), ([alloc("running")], 12)]
    blocked = []

    def list_allocations():
        return states.pop(0)

    def wait_for_change(index, seconds):
        blocked.append((index, seconds))
        clock.now += 1

    outcome = wait_for_condition("running", list_allocations, wait_for_change, 60, clock=clock)
    assert outcome.met and outcome.index == 12 and outcome.waited == 2
    assert blocked == [(10, 60), (11, 59)]


def test_wait_loop_times_out_with_what_it_saw():
    clock = FakeClock()

    def wait_for_change(index, seconds):
        clock.now += seconds

    outcome = wait_for_condition("terminal", lambda: ([alloc("running")], 5), wait_for_change, 30, clock=clock)
    assert not outcome.met and outcome.allocations == [alloc("running")]


def test_blocking_waits_are_capped_at_nomads_maximum():
    clock = FakeClock()
    waits = []

    def wait_for_change(index, seconds):
        waits.append(seconds)
        clock.now += seconds

    wait_for_condition("absent", lambda: ([alloc()], 1), wait_for_change, 700, clock=clock)
    assert waits == [300, 300, 100]


def test_allocations_chosen_by_id_that_all_failed_are_given_up_at_once():
    failed = [alloc("failed", alloc_id="bbbbbbbb-1"), alloc("complete", desired="stop", alloc_id="cccccccc-1")]

    def wait_for_change(index, seconds):
        raise AssertionError("must not block: these allocations can never run again")

    outcome = wait_for_condition("running", lambda: (failed, 7), wait_for_change, 300, clock=FakeClock(),
                                 fixed_selection=True)
    assert not outcome.met and outcome.hopeless and outcome.index == 7
    assert describe_progress("running", failed) == (
        "none of the selected allocations should run any more: bbbbbbbb (failed), cccccccc (complete)"
    )


def test_a_job_selection_keeps_waiting_for_replacements_when_all_failed():
    clock = FakeClock()
    states = [([alloc("failed")], 3), ([alloc("failed"), alloc("running", alloc_id="dddddddd-1")], 4)]

    def wait_for_change(index, seconds):
        clock.now += 1

    outcome = wait_for_condition("running", lambda: states.pop(0), wait_for_change, 60, clock=clock)
    assert outcome.met and not outcome.hopeless
