# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Rescheduling of failed allocations by their group's `reschedule` policy, as Nomad 1.10's generic scheduler
does it (facts from nomad/structs/structs.go `Allocation.NextDelay`, `NextRescheduleTime`, `RescheduleEligible`,
scheduler/reconcile_util.go `updateByReschedulable`, scheduler/generic_sched.go `updateRescheduleTracker`;
the deployment side is nomad-deployments-nodes-behaviour.md §3.3/§3.6).

A failed allocation (client status `failed`, desired `run`, not yet replaced) is rescheduled *now* (its reschedule
time is within 1 s), *later* (a follow-up evaluation waits until then) or *never* (no attempts left: it keeps
its place in the group and is not replaced). An allocation of an active deployment is only rescheduled once the
deployment watcher marked it `DesiredTransition.Reschedule`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .jobspec import RESCHEDULE_DEFAULTS, ZERO_RESCHEDULE
from .nomadtime import now_ns

RESCHEDULE_WINDOW_NS = 1_000_000_000      # reconcile_util.go rescheduleWindowSize
MAX_PAST_RESCHEDULE_EVENTS = 5            # generic_sched.go maxPastRescheduleEvents
RESCHEDULED_DESCRIPTION = "alloc was rescheduled because it failed"
FOLLOWUP_DESCRIPTION = "created for delayed rescheduling"


@dataclass
class RescheduleDecision:
    now: list = field(default_factory=list)      # failed allocations replaced in this evaluation
    later: list = field(default_factory=list)    # (allocation, reschedule time in ns) needing a follow-up eval
    kept: list = field(default_factory=list)     # failed allocations that stay (not eligible, or waiting)


def policy_of(alloc) -> dict:
    """The group's policy; a job registered without one gets the server's default for its type."""
    policy = alloc.group.get("ReschedulePolicy")
    if policy is None:
        return dict(RESCHEDULE_DEFAULTS.get(alloc.job["Type"], ZERO_RESCHEDULE))
    return policy


def events_of(alloc) -> list:
    return list((alloc.reschedule_tracker or {}).get("Events") or [])


def fail_time(alloc) -> int:
    """`LastEventTime`: the latest task FinishedAt, else the allocation's ModifyTime."""
    finished = [task.finished_at for task in alloc.tasks.values() if task.finished_at]
    return max(finished) if finished else alloc.modify_time


def attempts_in_interval(policy: dict, alloc, when_ns: int) -> int:
    if not policy.get("Attempts"):
        return 0
    interval = int(policy.get("Interval") or 0)
    return len([event for event in events_of(alloc) if when_ns - event["RescheduleTime"] < interval])


def eligible(policy: dict, alloc, when_ns: int) -> bool:
    """`RescheduleEligible` (used by the deployment watcher's fail-early check with the current time)."""
    attempts = int(policy.get("Attempts") or 0)
    if policy.get("Unlimited"):
        return True
    if attempts <= 0:
        return False
    return not events_of(alloc) or attempts_in_interval(policy, alloc, when_ns) < attempts


def next_delay(policy: dict, alloc) -> int:
    """`NextDelay`: the policy's delay, doubled (exponential) or summed (fibonacci) from the last events, capped
    at max_delay, and reset to the base delay once the last reschedule is older than the cap."""
    delay = int(policy.get("Delay") or 0)
    events = events_of(alloc)
    if not events:
        return delay
    function = policy.get("DelayFunction")
    if function == "exponential":
        delay = events[-1]["Delay"] * 2
    elif function == "fibonacci":
        if len(events) >= 2:
            last, before = events[-1]["Delay"], events[-2]["Delay"]
            delay = last if (before == policy.get("MaxDelay") and last == policy.get("Delay")) else last + before
    else:
        return delay
    max_delay = int(policy.get("MaxDelay") or 0)
    if max_delay > 0 and delay > max_delay:
        delay = max_delay
        if fail_time(alloc) - events[-1]["RescheduleTime"] > delay:
            delay = int(policy.get("Delay") or 0)
    return delay


def next_reschedule(policy: dict, alloc) -> tuple:
    """`NextRescheduleTime`: (time in ns, eligible)."""
    failed_at = fail_time(alloc)
    delay = next_delay(policy, alloc)
    attempts = int(policy.get("Attempts") or 0)
    allowed = bool(policy.get("Unlimited")) or (attempts > 0 and alloc.reschedule_tracker is None)
    if attempts > 0 and events_of(alloc):
        allowed = attempts_in_interval(policy, alloc, failed_at) < attempts and \
            delay < int(policy.get("Interval") or 0)
    return failed_at + delay, allowed


def awaiting(alloc) -> bool:
    """Failed on the client, still desired, not replaced yet."""
    return alloc.client_status == "failed" and alloc.desired_status == "run" and not alloc.next_allocation


def decide(failed: list, deployment, eval_id: str) -> RescheduleDecision:
    """`updateByReschedulable` for each failed allocation of one job."""
    decision = RescheduleDecision()
    now = now_ns()
    for alloc in failed:
        in_active_deployment = deployment is not None and alloc.deployment_id == deployment["ID"] and \
            deployment["Status"] in ("running", "paused", "pending", "blocked", "unblocking", "initializing")
        if alloc.job["Type"] not in ("service", "batch") or \
                (in_active_deployment and not alloc.desired_transition.get("Reschedule")):
            decision.kept.append(alloc)
            continue
        when, allowed = next_reschedule(policy_of(alloc), alloc)
        if allowed and (alloc.followup_eval_id == eval_id or when - now <= RESCHEDULE_WINDOW_NS):
            decision.now.append(alloc)
            continue
        if allowed and not alloc.followup_eval_id:
            decision.later.append((alloc, when))
        decision.kept.append(alloc)
    return decision


def tracker_for_replacement(previous, now: int) -> dict:
    """`updateRescheduleTracker`: the previous events still inside the interval (attempts) or the last five
    (unlimited), plus this reschedule with the delay that was applied."""
    policy = policy_of(previous)
    events = events_of(previous)
    if int(policy.get("Attempts") or 0) > 0:
        interval = int(policy.get("Interval") or 0)
        kept = [dict(event) for event in events if interval > 0 and now - event["RescheduleTime"] <= interval]
    else:
        kept = [dict(event) for event in events[-MAX_PAST_RESCHEDULE_EVENTS:]]
    kept.append({"RescheduleTime": now, "PrevAllocID": previous.id, "PrevNodeID": previous.node["ID"],
                 "Delay": next_delay(policy, previous)})
    return {"Events": kept, "LastReschedule": "ok"}
