# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one wait engine (_waits): the pure predicates behind running/healthy/terminal/absent, and the loop
driven by blocking queries with a monotonic deadline."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.common.waiting import ROUND_SECONDS, Deadline, wait_until
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.health import (
    CHECK_ROUND_SECONDS,
    allocation_judge,
    condition_met,
    deployment_verdict,
    describe_progress,
    failing_checks,
    has_restarted,
    health_problem,
    is_healthy,
    restart_judge,
    rfc3339_seconds,
)

T0 = "2026-12-02T10:00:00Z"
T1 = "2026-12-02T10:00:05.5Z"
T0_SECONDS = rfc3339_seconds(T0)


def alloc(client="running", desired="run", healthy=None, tasks=None, alloc_id="aaaaaaaa-1", name=None, checks=None,
          healthy_at=T0, next_allocation=None):
    allocation = {"ID": alloc_id, "ClientStatus": client, "DesiredStatus": desired}
    if name:
        allocation["Name"] = name
    if healthy is not None:
        allocation["DeploymentStatus"] = {"Healthy": healthy, "Timestamp": healthy_at}
    allocation["TaskStates"] = tasks if tasks is not None else {"app": {"State": "running", "StartedAt": T0}}
    if checks is not None:
        allocation["Checks"] = {str(number): check for number, check in enumerate(checks)}
    if next_allocation:
        allocation["NextAllocation"] = next_allocation
    return allocation


def check(name="ready", status="success", output="ok", timestamp=None):
    return {"Check": name, "Status": status, "Output": output, "Mode": "healthiness",
            "Timestamp": int(T0_SECONDS + 10) if timestamp is None else timestamp}


# --------------------------------------------------------------------------------------------- predicates
@pytest.mark.parametrize("allocations, running, healthy, terminal, absent", [
    ([], False, False, True, True),
    ([alloc("running", healthy=True)], True, True, False, False),
    ([alloc("running", healthy=False)], True, False, False, False),
    ([alloc("pending")], False, False, False, False),
    ([alloc("running", healthy=True), alloc("complete", desired="stop")], True, True, False, False),
    ([alloc("complete", desired="stop"), alloc("failed", desired="stop")], False, False, True, False),
    ([alloc("running", desired="stop")], False, False, False, False),
    # a failed allocation Nomad has not replaced keeps running/healthy from being met ...
    ([alloc("running", healthy=True), alloc("failed")], False, False, False, False),
    # ... until a replacement is placed
    ([alloc("running", healthy=True), alloc("failed", next_allocation="bbbbbbbb-1")], True, True, False, False),
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


def test_health_with_the_job_spec_knows_which_tasks_must_run():
    allocation = alloc(tasks={"app": {"State": "running"}, "sidecar": {"State": "dead", "Failed": False}})
    allocation["TaskGroup"] = "g"
    allocation["Job"] = {"TaskGroups": [{"Name": "g", "Tasks": [
        {"Name": "app", "Lifecycle": None}, {"Name": "sidecar", "Lifecycle": {"Hook": "prestart", "Sidecar": True}}]}]}
    assert health_problem(allocation) == "tasks not running: sidecar"


def test_a_failing_or_pending_check_makes_an_allocation_unhealthy_and_is_named():
    failing = alloc(healthy=True, checks=[check(), check("db", "failure", "dial tcp 127.0.0.1:5432: refused")])
    assert health_problem(failing) == 'check "db" failure: dial tcp 127.0.0.1:5432: refused'
    assert not is_healthy(alloc(checks=[check(status="pending", output="nomad: waiting to run")]))
    assert is_healthy(alloc(healthy=True, checks=[check()]))


def test_deployment_health_from_before_an_in_place_restart_is_not_trusted():
    restarted = {"app": {"State": "running", "StartedAt": T1, "LastRestart": T1, "Restarts": 1}}
    assert deployment_verdict(alloc(healthy=True, tasks=restarted)) is None
    assert deployment_verdict(alloc(healthy=False, tasks=restarted)) is None
    assert deployment_verdict(alloc(healthy=False)) is False
    assert deployment_verdict(alloc(healthy=True, healthy_at=T1)) is True
    # a stale "unhealthy" no longer blocks; a check result from before the restart does
    old_result = check(timestamp=int(T0_SECONDS))
    assert failing_checks(alloc(tasks=restarted, checks=[old_result])) == [old_result]
    assert "not run since the last task restart" in health_problem(alloc(tasks=restarted, checks=[old_result]))
    assert is_healthy(alloc(healthy=False, tasks=restarted, checks=[check(timestamp=int(T0_SECONDS) + 6)]))


def test_rfc3339_parsing():
    assert rfc3339_seconds("1970-01-01T00:01:00Z") == 60
    assert rfc3339_seconds("1970-01-01T01:00:00.25+01:00") == 0.25
    assert rfc3339_seconds("0001-01-01T00:00:00Z") is None
    assert rfc3339_seconds("") is None and rfc3339_seconds(None) is None


def test_progress_names_the_allocations_and_why():
    text = describe_progress("running", [alloc("pending", alloc_id="12345678-x"), alloc("running")])
    assert text == "1 allocation(s) not running yet: 12345678: client status pending"
    assert describe_progress("running", []) == "no allocation that should run is selected"
    assert describe_progress("absent", [alloc()]) == "1 allocation(s) still selected"
    text = describe_progress("healthy", [alloc("failed", alloc_id="99999999-x", name="flaky.worker[0]"),
                                         alloc(checks=[check(status="failure", output="no file")], name="w[1]")])
    assert text == ('2 allocation(s) not healthy yet: 99999999 (flaky.worker[0]): client status failed, '
                    'aaaaaaaa (w[1]): check "ready" failure: no file')


# --------------------------------------------------------------------------------------------- the engine
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def scripted_reader(states, clock, blocked, advance=1):
    """read(index, seconds) answering from `states`; a blocking read advances the clock."""

    def read(index, seconds):
        if index is not None:
            blocked.append((index, seconds))
            clock.now += advance if advance is not None else seconds
        return states.pop(0) if len(states) > 1 else states[0]

    return read


def test_wait_blocks_on_the_last_index_until_met():
    clock, blocked = FakeClock(), []
    states = [([alloc("pending")], 10), ([alloc("pending")], 11), ([alloc("running")], 12)]
    outcome = wait_until(scripted_reader(states, clock, blocked), allocation_judge("running"), 60, clock=clock)
    assert outcome.met and outcome.index == 12 and outcome.waited == 2
    assert blocked == [(10, 60), (11, 59)]  # 60 s rounds, then what is left


def test_wait_times_out_with_what_it_saw():
    clock, blocked = FakeClock(), []
    read = scripted_reader([([alloc("running")], 5)], clock, blocked, advance=None)
    outcome = wait_until(read, allocation_judge("terminal"), 30, clock=clock)
    assert not outcome.met and not outcome.hopeless and outcome.value == [alloc("running")]


def test_blocking_rounds_are_short_enough_to_keep_the_deadline():
    clock, blocked = FakeClock(), []
    wait_until(scripted_reader([([alloc()], 1)], clock, blocked, advance=None), allocation_judge("absent"), 150,
               clock=clock)
    assert [seconds for _index, seconds in blocked] == [ROUND_SECONDS, ROUND_SECONDS, 30]
    assert Deadline(900, clock).round_seconds(cap=1000) == 300  # never above Nomad's maximum


def test_a_failing_check_shortens_the_blocking_rounds():
    clock, blocked = FakeClock(), []
    failing = ([alloc(checks=[check(status="failure")])], 3)
    passing = ([alloc(checks=[check()])], 3)
    outcome = wait_until(scripted_reader([failing, failing, passing], clock, blocked, advance=None),
                         allocation_judge("healthy"), 120, clock=clock)
    assert outcome.met
    assert blocked == [(3, CHECK_ROUND_SECONDS), (3, CHECK_ROUND_SECONDS)]


def test_allocations_chosen_by_id_that_all_finished_are_given_up_at_once():
    finished = [alloc("complete", desired="stop", alloc_id="bbbbbbbb-1"), alloc("complete", alloc_id="cccccccc-1")]
    outcome = wait_until(scripted_reader([(finished, 7)], FakeClock(), []), allocation_judge("running", True), 300)
    assert not outcome.met and outcome.hopeless and outcome.index == 7
    assert describe_progress("running", finished) == (
        "none of the selected allocations should run any more: bbbbbbbb: client status complete, "
        "cccccccc: client status complete")


def test_an_allocation_chosen_by_id_that_failed_is_given_up_at_once():
    mixed = [alloc("running", alloc_id="bbbbbbbb-1"), alloc("failed", alloc_id="cccccccc-1")]
    blocked = []
    outcome = wait_until(scripted_reader([(mixed, 7)], FakeClock(), blocked), allocation_judge("healthy", True), 300)
    assert outcome.hopeless and blocked == []


def test_a_job_selection_keeps_waiting_for_replacements_when_all_failed():
    clock, blocked = FakeClock(), []
    states = [([alloc("failed")], 3), ([alloc("failed", next_allocation="d"), alloc("running", alloc_id="d")], 4)]
    outcome = wait_until(scripted_reader(states, clock, blocked), allocation_judge("running"), 60, clock=clock)
    assert outcome.met and not outcome.hopeless and len(blocked) == 1


def test_deadline_is_monotonic_and_rounds_up():
    clock = FakeClock()
    deadline = Deadline(2.5, clock)
    assert deadline.round_seconds() == 3 and not deadline.expired()
    clock.now = 2.4
    assert deadline.round_seconds() == 1
    clock.now = 2.5
    assert deadline.expired() and deadline.elapsed() == 2.5


# --------------------------------------------------------------------------------------------- restart
def test_restart_judge_waits_for_the_restart_then_for_health():
    before = alloc(tasks={"app": {"State": "running", "Restarts": 0, "StartedAt": T0}})
    restarted = {"app": {"State": "running", "Restarts": 1, "StartedAt": T1, "LastRestart": T1}}
    judge = restart_judge(before, ["app"], "healthy")
    assert not judge(before).met
    assert not judge(alloc(tasks=restarted, checks=[check(timestamp=int(T0_SECONDS))])).met  # stale result
    verdict = judge(alloc(tasks=restarted, checks=[check(status="failure")]))
    assert not verdict.met and verdict.round_cap == CHECK_ROUND_SECONDS
    assert judge(alloc(tasks=restarted, checks=[check(timestamp=int(T0_SECONDS) + 6)])).met
    assert restart_judge(before, ["app"], "running")(alloc(tasks=restarted, checks=[check(status="failure")])).met
    assert judge(alloc("failed", tasks=restarted)).hopeless


@pytest.mark.parametrize("old, new, expected", [
    ({"State": "running", "Restarts": 0}, {"State": "running", "Restarts": 1}, True),
    ({"State": "running", "Restarts": 2}, {"State": "running", "Restarts": 2}, False),
    ({"State": "running", "Restarts": 0}, {"State": "pending", "Restarts": 1}, False),
    ({"State": "running", "LastRestart": "a"}, {"State": "running", "LastRestart": "b"}, True),
    ({"State": "dead"}, {"State": "running", "Restarts": 0, "LastRestart": "b"}, True),
])
def test_has_restarted(old, new, expected):
    assert has_restarted({"TaskStates": {"t": old}}, {"TaskStates": {"t": new}}, "t") is expected
