# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A task's `restart` policy after its process exits, as Nomad 1.10's restart tracker decides
(client/allocrunner/taskrunner/restarts/restarts.go; events from taskrunner/task_runner.go shouldRestart).

Nomad adds a random jitter of up to 25 % of `delay` (restarts.go jitter()). The emulator draws it from a random
generator seeded with the allocation ID, the task name and the attempt, so the same allocation restarts after the
same delays in every run, and a delay always lies in [delay, 1.25 * delay).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

JITTER = 0.25
REASON_NO_RESTARTS = "Policy allows no restarts"
REASON_WITHIN_POLICY = "Restart within policy"
REASON_DELAY = "Exceeded allowed attempts, applying a delay"
REASON_SUCCESS = "Restart unnecessary as task terminated successfully"


@dataclass(frozen=True)
class RestartDecision:
    """restart: start again after delay_ns; otherwise the task is dead, failed when fails_task."""
    restart: bool
    fails_task: bool
    reason: str
    delay_ns: int = 0


def task_policy(alloc, task_name: str) -> dict | None:
    """The task's canonical RestartPolicy (group policy merged by the job's canonicalisation); None for
    scenario (YAML) jobs, whose documents carry none: their exits stay final as before."""
    for task in (alloc.group or {}).get("Tasks") or ():
        if task.get("Name") == task_name:
            return task.get("RestartPolicy") or (alloc.group or {}).get("RestartPolicy")
    return None


def restarts_on_success(job_type: str, lifecycle: dict | None) -> bool:
    """restarts.go NewRestartTracker: batch/sysbatch and ephemeral lifecycle tasks are done after exit 0."""
    if lifecycle:
        hook = lifecycle.get("hook", "prestart")
        return hook in ("prestart", "poststart") and bool(lifecycle.get("sidecar"))
    return job_type not in ("batch", "sysbatch")


def jitter_delay(delay_ns: int, seed: str) -> int:
    base = delay_ns or 1
    return base + int(random.Random(seed).randrange(base) * JITTER)


def decide(task, policy: dict, on_success: bool, exit_ok: bool, now: int, seed: str) -> RestartDecision:
    """GetState() for an exit (not a kill, not a user restart); updates the task's attempt window."""
    attempts = int(policy.get("Attempts") or 0)
    if attempts == 0:
        if exit_ok and not on_success:
            return RestartDecision(False, False, REASON_NO_RESTARTS)
        return RestartDecision(False, True, REASON_NO_RESTARTS)
    interval = int(policy.get("Interval") or 0)
    if now > task.restart_window_start + interval:
        task.restart_count, task.restart_window_start = 0, now
    task.restart_count += 1
    if exit_ok and not on_success:
        return RestartDecision(False, False, REASON_SUCCESS)
    if task.restart_count > attempts:
        if policy.get("Mode", "fail") == "fail":
            reason = (f'Exceeded allowed attempts {attempts} in interval {go_duration(interval)} '
                      f'and mode is "fail"')
            return RestartDecision(False, True, reason)
        return RestartDecision(True, False, REASON_DELAY, max(0, task.restart_window_start + interval - now))
    return RestartDecision(True, False, REASON_WITHIN_POLICY,
                           jitter_delay(int(policy.get("Delay") or 0), f"{seed}/{task.restart_count}"))


def restarting_message(decision: RestartDecision) -> str:
    """TaskEvent.PopulateEventDisplayMessage for `Restarting` (nomad/structs/structs.go)."""
    text = f"Task restarting in {go_duration(decision.delay_ns)}"
    if decision.reason and decision.reason != REASON_WITHIN_POLICY:
        return f"{decision.reason} - {text}"
    return text


def go_duration(ns: int) -> str:
    from .deployments import go_duration as format_duration  # deployments imports the scheduler; load lazily
    return format_duration(ns)
