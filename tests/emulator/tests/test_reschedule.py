# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Rescheduling of failed allocations by the group `reschedule` block, in and outside deployments: reference
nomad-deployments-nodes-behaviour.md §3.3 (replacements are placed while the deployment can place), §3.6 (the
watcher marks an unhealthy allocation `DesiredTransition.Reschedule`, fails early once it has no attempts left,
else at the progress deadline), nomad-jobs-behaviour.md §8.1 (evaluations) and §1.4 (policy defaults), with
Nomad's `Allocation.NextDelay`/`RescheduleTracker` rules (see tests/emulator/reschedule.py). Real processes
(deployments-process.yml); waits are blocking queries."""
from __future__ import annotations

from types import SimpleNamespace

from conftest import Api
from jobfiles import allocations_until, deployment_until, parse, register

from tests import hcl_jobs
from tests.emulator import reschedule

RUNNING = hcl_jobs.RUNNING


def job_hcl(job_id: str, *, command: str, version: str, update: str, reschedule: str, job_type: str = "service") -> str:
    task = hcl_jobs.task_hcl(command, env={"VERSION": version}, kill_timeout="1s")
    return hcl_jobs.job_hcl(job_id, hcl_jobs.group_hcl(task, count=1, update=update, restart="attempts = 0",
                                                       reschedule=reschedule), job_type=job_type)


def full(api: Api, alloc_id: str) -> dict:
    return api.allocation(alloc_id)


UPDATE = 'max_parallel = 1\n      min_healthy_time = "100ms"\n      healthy_deadline = "30s"\n' \
         '      progress_deadline = "30s"\n      auto_revert = true'
TWO_ATTEMPTS = 'attempts = 2\n      interval = "1h"\n      delay = "100ms"\n      delay_function = "constant"\n' \
               '      unlimited = false'


def test_crashing_version_is_rescheduled_until_attempts_run_out_then_rolls_back(process_api):
    """§3.6: each crash is unhealthy; with attempts left the watcher marks `DesiredTransition.Reschedule` and the
    replacement (same name, PreviousAllocation, RescheduleTracker with one more event) joins the deployment; the
    third crash has no attempt left: `Failed due to unhealthy allocations - rolling back to job version 0`."""
    register(process_api, parse(process_api, job_hcl("crashy", command=RUNNING, version="1", update=UPDATE, reschedule=TWO_ATTEMPTS)))
    deployment_until(process_api, "crashy", lambda dep: dep["Status"] == "successful")
    register(process_api, parse(process_api, job_hcl("crashy", command="exit 3", version="2", update=UPDATE,
                                                     reschedule=TWO_ATTEMPTS)))
    deployment_until(process_api, "crashy", lambda dep: dep["JobVersion"] == 2 and dep["Status"] == "successful")
    failed = next(dep for dep in process_api.get("/v1/job/crashy/deployments").json() if dep["JobVersion"] == 1)
    assert failed["StatusDescription"] == "Failed due to unhealthy allocations - rolling back to job version 0"
    assert (failed["TaskGroups"]["web"]["PlacedAllocs"], failed["TaskGroups"]["web"]["UnhealthyAllocs"]) == (3, 3)
    chain = sorted((alloc for alloc in allocations_until(process_api, "crashy", lambda allocs: True) if alloc["JobVersion"] == 1),
                   key=lambda alloc: alloc["CreateIndex"])
    first, second, third = (full(process_api, alloc["ID"]) for alloc in chain)
    assert {alloc["Name"] for alloc in (first, second, third)} == {"crashy.web[0]"}
    assert (first["NextAllocation"], second["PreviousAllocation"]) == (second["ID"], first["ID"])
    assert (second["NextAllocation"], third["PreviousAllocation"]) == (third["ID"], second["ID"])
    assert third["NextAllocation"] == "" and third["ClientStatus"] == "failed"
    for old in (first, second):
        assert (old["DesiredStatus"], old["DesiredDescription"]) == ("stop", "alloc was rescheduled because it failed")
        assert old["DesiredTransition"]["Reschedule"] is True
    assert first["RescheduleTracker"] is None
    events = third["RescheduleTracker"]["Events"]
    expected = [(first["ID"], 100_000_000), (second["ID"], 100_000_000)]
    assert [(event["PrevAllocID"], event["Delay"]) for event in events] == expected
    assert second["RescheduleTracker"]["Events"] == events[:1]
    assert events[0]["PrevNodeID"] == first["NodeID"] and events[0]["RescheduleTime"] < events[1]["RescheduleTime"]


def test_unlimited_exponential_reschedules_until_the_progress_deadline(process_api):
    """§3.6: with reschedule attempts always left the deployment fails only at its progress deadline
    (`Failed due to progress deadline`); `NextDelay` doubles the last event's delay (exponential)."""
    update = 'max_parallel = 1\n      min_healthy_time = "100ms"\n      healthy_deadline = "30s"\n' \
             '      progress_deadline = "2s"'
    unlimited = 'delay = "200ms"\n      delay_function = "exponential"\n      max_delay = "10s"\n      unlimited = true'
    register(process_api, parse(process_api, job_hcl("flappy", command="exit 4", version="1", update=update, reschedule=unlimited)))
    failed = deployment_until(process_api, "flappy", lambda dep: dep["Status"] == "failed")
    assert failed["StatusDescription"] == "Failed due to progress deadline"
    placed = failed["TaskGroups"]["web"]["PlacedAllocs"]
    assert placed >= 2  # the first crash and at least one replacement within 2 s
    newest = max(allocations_until(process_api, "flappy", lambda allocs: True), key=lambda alloc: alloc["CreateIndex"])
    delays = [event["Delay"] for event in full(process_api, newest["ID"])["RescheduleTracker"]["Events"]]
    assert delays == [200_000_000 * 2 ** number for number in range(len(delays))]


def test_batch_failure_is_rescheduled_by_a_followup_evaluation(process_api):
    """nomad-jobs-behaviour.md §8.1: a failed batch allocation makes an `alloc-failure` evaluation; its reschedule
    time lies ahead, so a pending follow-up evaluation (`created for delayed rescheduling`, WaitUntil) places the
    replacement; with `attempts = 1` the replacement's failure is final (no third allocation)."""
    once = 'attempts = 1\n      interval = "1h"\n      delay = "1500ms"\n      delay_function = "constant"\n' \
           '      unlimited = false'
    register(process_api, parse(process_api, job_hcl("batchy", command="exit 5", version="1", update="", reschedule=once,
                                                     job_type="batch")))
    allocs = allocations_until(process_api, "batchy", lambda allocs: len(allocs) == 2 and all(
        alloc["ClientStatus"] == "failed" for alloc in allocs))
    first, second = sorted(allocs, key=lambda alloc: alloc["CreateIndex"])
    assert first["FollowupEvalID"] and second["RescheduleTracker"]["Events"][0]["Delay"] == 1_500_000_000
    followup = process_api.get(f"/v1/evaluation/{first['FollowupEvalID']}").json()
    assert (followup["TriggeredBy"], followup["StatusDescription"], followup["Status"]) == (
        "alloc-failure", "created for delayed rescheduling", "complete")
    assert followup["WaitUntil"] and followup["PreviousEval"]
    evaluations = process_api.get("/v1/job/batchy/evaluations").json()
    assert [ev["TriggeredBy"] for ev in evaluations].count("alloc-failure") >= 3  # two failures + the follow-up
    final = full(process_api, second["ID"])
    assert (final["DesiredStatus"], final["NextAllocation"], final["FollowupEvalID"]) == ("run", "", "")


# --- the policy arithmetic, without an emulator -----------------------------------------------------------------
SECOND = 1_000_000_000


def failed_alloc(delays: list, *, failed_at: int = 100 * SECOND, reschedule_times=None):
    """An allocation-like object with a RescheduleTracker of events with these delays."""
    times = reschedule_times or [failed_at - (len(delays) - number) * SECOND for number in range(len(delays))]
    events = [{"RescheduleTime": when, "PrevAllocID": f"a{number}", "PrevNodeID": "n", "Delay": delay}
              for number, (when, delay) in enumerate(zip(times, delays))]
    task = SimpleNamespace(finished_at=failed_at)
    return SimpleNamespace(reschedule_tracker={"Events": events} if events else None, tasks={"t": task},
                           modify_time=failed_at, group={}, job={"Type": "service"}, id="x", node={"ID": "n"})


def test_next_delay_functions():
    """`NextDelay`: constant keeps the delay, exponential doubles the last one, fibonacci adds the last two; the
    cap applies and resets to `delay` once the last reschedule is older than the cap."""
    constant = {"Delay": 5 * SECOND, "DelayFunction": "constant", "MaxDelay": 0}
    assert reschedule.next_delay(constant, failed_alloc([5 * SECOND, 5 * SECOND])) == 5 * SECOND
    exponential = {"Delay": 1 * SECOND, "DelayFunction": "exponential", "MaxDelay": 10 * SECOND}
    assert reschedule.next_delay(exponential, failed_alloc([])) == 1 * SECOND
    assert reschedule.next_delay(exponential, failed_alloc([1 * SECOND, 2 * SECOND, 4 * SECOND])) == 8 * SECOND
    capped = failed_alloc([8 * SECOND], reschedule_times=[99 * SECOND])
    assert reschedule.next_delay(exponential, capped) == 10 * SECOND
    reset = failed_alloc([8 * SECOND], reschedule_times=[50 * SECOND])  # 50 s before the failure > the 10 s cap
    assert reschedule.next_delay(exponential, reset) == 1 * SECOND
    fibonacci = {"Delay": 1 * SECOND, "DelayFunction": "fibonacci", "MaxDelay": 100 * SECOND}
    assert reschedule.next_delay(fibonacci, failed_alloc([2 * SECOND, 3 * SECOND])) == 5 * SECOND
    restarted = {"Delay": 1 * SECOND, "DelayFunction": "fibonacci", "MaxDelay": 8 * SECOND}
    assert reschedule.next_delay(restarted, failed_alloc([8 * SECOND, 1 * SECOND])) == 1 * SECOND


def test_eligibility_counts_attempts_inside_the_interval():
    """`RescheduleEligible`/`NextRescheduleTime`: attempts count only events inside the interval; unlimited is
    always eligible; a policy without attempts never is."""
    policy = {"Attempts": 2, "Interval": 10 * SECOND, "Delay": 1 * SECOND, "DelayFunction": "constant",
              "Unlimited": False}
    recent = failed_alloc([SECOND, SECOND], reschedule_times=[95 * SECOND, 97 * SECOND])
    old = failed_alloc([SECOND, SECOND], reschedule_times=[50 * SECOND, 97 * SECOND])
    assert reschedule.eligible(policy, failed_alloc([]), 100 * SECOND)
    assert not reschedule.eligible(policy, recent, 100 * SECOND)
    assert reschedule.eligible(policy, old, 100 * SECOND)
    assert reschedule.next_reschedule(policy, old) == (101 * SECOND, True)
    assert reschedule.next_reschedule(policy, recent) == (101 * SECOND, False)
    assert reschedule.eligible({"Attempts": 0, "Unlimited": True}, recent, 100 * SECOND)
    assert not reschedule.eligible({"Attempts": 0, "Unlimited": False}, failed_alloc([]), 100 * SECOND)
