# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The group/task `restart` block for real processes, as Nomad 1.10's restart tracker
(client/allocrunner/taskrunner/restarts/restarts.go GetState/jitter) and task runner (taskrunner/task_runner.go
shouldRestart: `Restarting` sets the task pending, `Not Restarting` fails it) decide; event texts from
nomad/structs/structs.go PopulateEventDisplayMessage; defaults from nomad-jobs-behaviour.md "restart defaults";
health after a restart from nomad-deployments-nodes-behaviour.md §3.5. Waits are blocking queries."""
from __future__ import annotations

import re
from datetime import datetime
from types import SimpleNamespace

from conftest import Api
from jobfiles import allocations_until, parse, register

from tests import hcl_jobs
from tests.emulator import restarts
from tests.emulator.nomadtime import rfc3339

RUNNING = hcl_jobs.RUNNING
# Fails the first N runs (a counter in the shared alloc dir), then runs until stopped.
FLAKY = ("n=$(cat $NOMAD_ALLOC_DIR/runs 2>/dev/null || echo 0); echo $((n+1)) > $NOMAD_ALLOC_DIR/runs; "
         "[ $n -ge {fails} ] || exit 7; " + RUNNING)
NO_RESCHEDULE = "attempts = 0\n      unlimited = false"
MS = 1_000_000


def job_hcl(job_id: str, *, command: str, restart: str, task_restart: str = "", job_type: str = "service",
            update: str = "") -> str:
    task = hcl_jobs.task_hcl(command, kill_timeout="1s", restart=task_restart)
    return hcl_jobs.job_hcl(job_id, hcl_jobs.group_hcl(task, update=update, restart=restart, reschedule=NO_RESCHEDULE),
                            job_type=job_type)


def alloc_until(api: Api, job_id: str, predicate, timeout: float = 60.0) -> dict:
    """Blocking queries on /v1/job/:id/allocations until predicate(the job's one allocation, read in full)."""
    read = []

    def matches(stubs: list) -> bool:
        if not stubs:
            return False
        assert len(stubs) == 1, stubs
        read.append(api.allocation(stubs[0]["ID"]))
        return predicate(read[-1])

    allocations_until(api, job_id, matches, timeout)
    return read[-1]


def run(api: Api, job_id: str, *, command: str, restart: str, **options) -> None:
    register(api, parse(api, job_hcl(job_id, command=command, restart=restart, **options)))


def server_state(alloc: dict) -> dict:
    return alloc["TaskStates"]["server"]


def events_of(alloc: dict, *types: str) -> list:
    return [event for event in server_state(alloc)["Events"] if event["Type"] in types]


def terminal(alloc: dict) -> bool:
    return alloc["ClientStatus"] in ("complete", "failed")


def test_failing_service_task_restarts_within_policy_then_fails(process_api):
    """restarts.go GetState: attempts 2 within the interval give two `Restarting` events (delay + up to 25 %
    jitter, `Task restarting in <d>`), the third exit is `Not Restarting` with `Exceeded allowed attempts 2 in
    interval 1h0m0s and mode is "fail"` (FailsTask): the task fails, then the allocation."""
    run(process_api, "restarty", command="exit 3",
        restart='attempts = 2\n      interval = "1h"\n      delay = "100ms"\n      mode = "fail"')
    alloc = alloc_until(process_api, "restarty", terminal)
    state = server_state(alloc)
    assert (alloc["ClientStatus"], state["State"], state["Failed"], state["Restarts"]) == ("failed", "dead", True, 2)
    types = [event["Type"] for event in state["Events"]]
    assert types[-4:] == ["Task Setup", "Started", "Terminated", "Not Restarting"]
    assert types.count("Restarting") == 2 and types.count("Terminated") == 3
    last = state["Events"][-1]
    assert last["DisplayMessage"] == last["RestartReason"] == \
        'Exceeded allowed attempts 2 in interval 1h0m0s and mode is "fail"'
    assert last["FailsTask"] is True
    for attempt, event in enumerate(events_of(alloc, "Restarting"), start=1):
        assert 100 * MS <= event["StartDelay"] < 125 * MS
        assert event["StartDelay"] == restarts.jitter_delay(100 * MS, f"{alloc['ID']}/server/{attempt}")
        assert event["DisplayMessage"] == f"Task restarting in {restarts.go_duration(event['StartDelay'])}"
        assert event["RestartReason"] == "Restart within policy"
    assert state["LastRestart"] == rfc3339(events_of(alloc, "Restarting")[-1]["Time"])
    assert all(event["ExitCode"] == 3 for event in events_of(alloc, "Terminated"))


def test_task_restart_block_overrides_the_group_and_exit_0_restarts_a_service(process_api):
    """api/tasks.go: the task's RestartPolicy is the group's with the task's values merged over it; restarts.go
    NewRestartTracker: service tasks restart on success too, so `exit 0` counts as an attempt."""
    run(process_api, "override", command="exit 0", restart='attempts = 5\n      delay = "100ms"',
        task_restart="attempts = 1")
    alloc = alloc_until(process_api, "override", terminal)
    state = server_state(alloc)
    assert (alloc["ClientStatus"], state["Failed"], state["Restarts"]) == ("failed", True, 1)
    assert state["Events"][-1]["DisplayMessage"] == 'Exceeded allowed attempts 1 in interval 30m0s and mode is "fail"'
    job = process_api.get("/v1/job/override").json()
    assert job["TaskGroups"][0]["Tasks"][0]["RestartPolicy"]["Attempts"] == 1


def test_no_attempts_fails_at_once(process_api):
    """restarts.go: `attempts = 0` is `Not Restarting` with `Policy allows no restarts` on the first exit."""
    run(process_api, "noattempts", command="exit 2", restart="attempts = 0")
    alloc = alloc_until(process_api, "noattempts", terminal)
    state = server_state(alloc)
    assert (alloc["ClientStatus"], state["Failed"], state["Restarts"]) == ("failed", True, 0)
    assert [event["Type"] for event in state["Events"]][-2:] == ["Terminated", "Not Restarting"]
    assert state["Events"][-1]["DisplayMessage"] == "Policy allows no restarts"


def test_batch_task_that_exits_0_is_complete_and_a_failing_one_restarts(process_api):
    """restarts.go: batch tasks do not restart on success (`Restart unnecessary as task terminated successfully`,
    no event, not failed); a non-zero exit restarts within the policy."""
    run(process_api, "batchok", command="exit 0", restart='attempts = 3\n      delay = "100ms"', job_type="batch")
    done = alloc_until(process_api, "batchok", terminal)
    state = server_state(done)
    assert (done["ClientStatus"], state["Failed"], state["Restarts"]) == ("complete", False, 0)
    assert not events_of(done, "Restarting", "Not Restarting")
    run(process_api, "batchbad", command="exit 9", restart='attempts = 1\n      delay = "100ms"', job_type="batch")
    failed = alloc_until(process_api, "batchbad", terminal)
    assert (failed["ClientStatus"], server_state(failed)["Restarts"]) == ("failed", 1)
    assert server_state(failed)["Events"][-1]["DisplayMessage"] == \
        'Exceeded allowed attempts 1 in interval 24h0m0s and mode is "fail"'


def test_mode_delay_waits_out_the_interval_and_tries_again(process_api):
    """restarts.go: over the attempts with `mode = "delay"` the task restarts when the interval ends
    (`Exceeded allowed attempts, applying a delay - Task restarting in <d>`); the next exit opens a new interval.
    The task here fails three times, then runs: never failed, three restarts, allocation running."""
    run(process_api, "delayed", command=FLAKY.format(fails=3),
        restart='attempts = 1\n      interval = "600ms"\n      delay = "100ms"\n      mode = "delay"')
    alloc = alloc_until(process_api, "delayed", lambda alloc: server_state(alloc)["Restarts"] == 3
                        and server_state(alloc)["State"] == "running")
    state = server_state(alloc)
    assert (alloc["ClientStatus"], state["Failed"]) == ("running", False)
    reasons = [event["RestartReason"] for event in events_of(alloc, "Restarting")]  # Nomad keeps 10 events
    assert reasons[-2:] == ["Exceeded allowed attempts, applying a delay", "Restart within policy"]
    delayed = events_of(alloc, "Restarting")[-2]
    assert 0 < delayed["StartDelay"] <= 600 * MS
    assert delayed["DisplayMessage"] == ("Exceeded allowed attempts, applying a delay - Task restarting in "
                                         + restarts.go_duration(delayed["StartDelay"]))
    process_api.request("DELETE", "/v1/job/delayed")


def test_stop_during_a_restart_delay_kills_the_waiting_task(process_api):
    """task_runner.go: a kill ends the restart wait; the task is dead (`Killed`), the allocation complete."""
    run(process_api, "waiting", command="exit 1", restart='attempts = 2\n      delay = "1h"')
    alloc_until(process_api, "waiting", lambda alloc: server_state(alloc)["State"] == "pending"
                and server_state(alloc)["Restarts"] == 1)
    waiting = alloc_until(process_api, "waiting", lambda alloc: True)
    assert (waiting["ClientStatus"], waiting["ClientDescription"]) == ("pending", "No tasks have started")
    assert process_api.request("DELETE", "/v1/job/waiting").status_code == 200
    alloc = alloc_until(process_api, "waiting", terminal)
    state = server_state(alloc)
    assert (alloc["ClientStatus"], state["State"], state["Failed"]) == ("complete", "dead", False)
    assert state["Events"][-1]["Type"] == "Killed"


def test_deployment_health_timer_restarts_after_a_policy_restart(process_api):
    """nomad-deployments-nodes-behaviour.md §3.5: a restarting task is pending (not yet healthy, not unhealthy);
    the min_healthy_time timer runs from the latest (re)start, so health comes min_healthy_time after it."""
    update = 'min_healthy_time = "500ms"\n      healthy_deadline = "30s"\n      progress_deadline = "40s"'
    run(process_api, "healthy", command=FLAKY.format(fails=1), restart='attempts = 2\n      delay = "200ms"', update=update)
    alloc = alloc_until(process_api, "healthy", lambda alloc: (alloc.get("DeploymentStatus") or {}).get("Healthy")
                        is not None)
    state = server_state(alloc)
    assert alloc["DeploymentStatus"]["Healthy"] is True and state["Restarts"] == 1
    last_start = events_of(alloc, "Started")[-1]["Time"]
    assert parse_time(alloc["DeploymentStatus"]["Timestamp"]) >= (last_start + 500 * MS) // 1000
    process_api.request("DELETE", "/v1/job/healthy")


def parse_time(text: str) -> int:
    """RFC 3339 with up to nine fraction digits -> microseconds since the epoch."""
    match = re.fullmatch(r"(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    whole = datetime.fromisoformat(match.group(1) + match.group(3).replace("Z", "+00:00"))
    return int(whole.timestamp()) * 1_000_000 + int((match.group(2) or "0")[:6].ljust(6, "0"))


# --- the tracker's arithmetic, without an emulator ----------------------------------------------------------------
def test_decide_counts_attempts_per_interval():
    """restarts.go GetState: a new interval resets the count; the default service policy's texts."""
    task = SimpleNamespace(restart_count=0, restart_window_start=1000)
    policy = {"Attempts": 2, "Interval": 1_800_000_000_000, "Delay": 15_000_000_000, "Mode": "fail"}
    decisions = [restarts.decide(task, policy, True, False, 2000 + number, "a/t") for number in range(3)]
    assert [decision.restart for decision in decisions] == [True, True, False]
    assert decisions[2].reason == 'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"'
    assert all(15_000_000_000 <= decision.delay_ns < 18_750_000_000 for decision in decisions[:2])
    later = restarts.decide(task, policy, True, False, 1000 + 1_800_000_000_001, "a/t")
    assert (later.restart, task.restart_count) == (True, 1)


def test_restarts_on_success_by_type_and_lifecycle():
    """restarts.go NewRestartTracker: batch/sysbatch and non-sidecar lifecycle tasks stop after exit 0."""
    assert restarts.restarts_on_success("service", None) is True
    assert restarts.restarts_on_success("batch", None) is False
    assert restarts.restarts_on_success("service", {"hook": "prestart"}) is False
    assert restarts.restarts_on_success("batch", {"hook": "prestart", "sidecar": True}) is True
    assert restarts.restarts_on_success("service", {"hook": "poststop"}) is False
