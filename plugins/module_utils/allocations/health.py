# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Allocation health and the judges of the allocation waits: small pure predicates over allocations
(running, healthy, terminal, absent, restarted) for the engine in common/waiting.py.

Every allocation wait (nomad_alloc_info's ``wait_for``, stop's and restart's ``wait``, the role) is
``wait_until(read, judge, timeout)`` with one of these judges.
"""

from __future__ import annotations

import calendar
import re

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import (
    FAILED_CLIENT_STATUSES,
    allocation_label,
    is_terminal,
    runs_for_good,
    task_lifecycles,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.waiting import ROUND_SECONDS, Verdict

WAIT_CONDITIONS = ("running", "healthy", "terminal", "absent")
# Check results are not part of any blocking query's index, so while a check is what the wait waits for,
# each round is at most this long (a change of the allocations still ends it early).
CHECK_ROUND_SECONDS = 2
MAX_LISTED = 5
CHECKS_KEY = "Checks"
CHECK_PASSING = "success"


# --------------------------------------------------------------------------------------------- predicates
def should_run(allocation):
    return (allocation.get("DesiredStatus") or "run") == "run"


def is_unreplaced_failure(allocation):
    """Failed or lost while Nomad still wants it to run, and no replacement placed yet."""
    return (allocation.get("ClientStatus") in FAILED_CLIENT_STATUSES and should_run(allocation)
            and not allocation.get("NextAllocation"))


def is_active(allocation):
    """The allocations `running` and `healthy` judge: meant to run and not finished, or failed and not
    replaced yet (such an allocation keeps the wait going instead of being left out)."""
    if not should_run(allocation):
        return False
    return not is_terminal(allocation) or is_unreplaced_failure(allocation)


def is_running(allocation):
    return allocation.get("ClientStatus") == "running"


def tasks_not_running(allocation):
    """Names of the tasks that should be running and are not (a finished lifecycle hook is fine)."""
    states = allocation.get("TaskStates") or {}
    lifecycles = task_lifecycles(allocation)
    missing = []
    for name, state in sorted(states.items()):
        if state.get("State") == "running":
            continue
        if lifecycles is not None and name in lifecycles and not runs_for_good(lifecycles[name]):
            if not state.get("Failed"):
                continue
        elif lifecycles is None and state.get("State") == "dead" and not state.get("Failed"):
            continue  # without the job spec, a task that finished cleanly is taken for a lifecycle hook
        missing.append(name)
    return missing


def main_tasks_running(allocation):
    states = allocation.get("TaskStates") or {}
    running = [name for name, state in states.items() if state.get("State") == "running"]
    return bool(running) and not tasks_not_running(allocation)


_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def rfc3339_seconds(text):
    """Unix seconds (float) of Nomad's RFC 3339 times; None for empty, zero (0001-01-01) or odd values."""
    match = _RFC3339.match(text or "")
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    if year <= 1:
        return None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    fraction = match.group(7)
    if fraction:
        seconds += float("0." + fraction)
    zone = match.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


def last_task_start(allocation):
    """Unix seconds of the latest start or restart of any task, or None when none is known."""
    times = []
    for state in (allocation.get("TaskStates") or {}).values():
        for key in ("StartedAt", "LastRestart"):
            value = rfc3339_seconds(state.get(key))
            if value is not None:
                times.append(value)
    return max(times) if times else None


def deployment_verdict(allocation):
    """True/False when Nomad's deployment health applies to the tasks as they run now, else None.

    Nomad sets DeploymentStatus.Healthy once, during a deployment, and an in-place restart never resets it;
    a verdict older than the latest task (re)start says nothing about the running processes.
    """
    deployment = allocation.get("DeploymentStatus") or {}
    healthy = deployment.get("Healthy")
    if healthy is None:
        return None
    decided = rfc3339_seconds(deployment.get("Timestamp"))
    started = last_task_start(allocation)
    if decided is not None and started is not None and started > decided:
        return None
    return healthy is True


def check_results(allocation):
    """The attached check results (a list of Nomad's CheckQueryResult dicts), [] when none."""
    return list((allocation.get(CHECKS_KEY) or {}).values())


def failing_checks(allocation):
    """Checks that do not pass: not `success`, or a success from before the latest task (re)start."""
    started = last_task_start(allocation)
    failing = []
    for check in check_results(allocation):
        stale = started is not None and check.get("Timestamp") and int(check["Timestamp"]) < int(started)
        if check.get("Status") != CHECK_PASSING or stale:
            failing.append(check)
    return failing


def health_problem(allocation):
    """Why an allocation is not healthy (one short phrase), or None when it is healthy."""
    if not is_running(allocation):
        return f"client status {allocation.get('ClientStatus')}"
    not_running = tasks_not_running(allocation)
    if not_running or not main_tasks_running(allocation):
        return f"tasks not running: {', '.join(not_running) or 'none started'}"
    if deployment_verdict(allocation) is False:
        return "deployment health is unhealthy"
    failing = failing_checks(allocation)
    if failing:
        return "; ".join(describe_check(check) for check in failing)
    return None


def describe_check(check):
    output = " ".join(str(check.get("Output") or "").split())
    if len(output) > 120:
        output = output[:117] + "..."
    status = check.get("Status") or "pending"
    if status == CHECK_PASSING:
        status = "not run since the last task restart"
    name = check.get("Check")
    detail = f": {output}" if output else ""
    return f'check "{name}" {status}{detail}'


def is_healthy(allocation):
    return health_problem(allocation) is None


def needs_checks(allocation):
    """Whether judging `healthy` needs this allocation's check results (it can run and is running)."""
    return is_active(allocation) and is_running(allocation)


_PER_ALLOCATION = {"running": is_running, "healthy": is_healthy}


def pending_allocations(condition, allocations):
    """The allocations that keep `condition` from being met."""
    if condition == "absent":
        return list(allocations)
    if condition == "terminal":
        return [allocation for allocation in allocations if not is_terminal(allocation)]
    predicate = _PER_ALLOCATION[condition]
    return [allocation for allocation in allocations if is_active(allocation) and not predicate(allocation)]


def condition_met(condition, allocations):
    """running/healthy: at least one active allocation, and all active ones running/healthy;
    terminal: every selected allocation has finished; absent: nothing is selected."""
    if pending_allocations(condition, allocations):
        return False
    if condition in _PER_ALLOCATION:
        return any(is_active(allocation) for allocation in allocations)
    return True


def can_never_be_met(condition, allocations):
    """For a fixed set of allocations (selected by ID): running/healthy cannot happen any more once one of
    them failed or none of them should run (replacements have other IDs; terminal is final)."""
    if condition not in _PER_ALLOCATION or not allocations:
        return False
    if any(is_unreplaced_failure(allocation) for allocation in allocations):
        return True
    return not any(is_active(allocation) for allocation in allocations)


def waits_on_checks(condition, allocations):
    return condition == "healthy" and any(
        failing_checks(allocation) for allocation in allocations if needs_checks(allocation))


# --------------------------------------------------------------------------------------------- messages
def _why(condition, allocation):
    if condition == "healthy":
        return health_problem(allocation) or "healthy"
    return f"client status {allocation.get('ClientStatus')}"


def _list_some(condition, allocations):
    shown = ", ".join(f"{allocation_label(allocation)}: {_why(condition, allocation)}"
                      for allocation in allocations[:MAX_LISTED])
    more = "" if len(allocations) <= MAX_LISTED else f" and {len(allocations) - MAX_LISTED} more"
    return shown + more


def describe_progress(condition, allocations):
    """One line: how far the allocations are from the condition, naming the ones that hold it up."""
    pending = pending_allocations(condition, allocations)
    if condition in _PER_ALLOCATION and not any(is_active(allocation) for allocation in allocations):
        if not allocations:
            return "no allocation that should run is selected"
        return f"none of the selected allocations should run any more: {_list_some('running', allocations)}"
    if condition == "absent":
        return f"{len(pending)} allocation(s) still selected"
    return f"{len(pending)} allocation(s) not {condition} yet: {_list_some(condition, pending)}"


# --------------------------------------------------------------------------------------------- judges
def allocation_judge(condition, fixed_selection=False):
    """The judge for nomad_alloc_info's conditions over a list of allocations."""

    def judge(allocations):
        if condition_met(condition, allocations):
            return Verdict(met=True)
        if fixed_selection and can_never_be_met(condition, allocations):
            return Verdict(hopeless=True)
        cap = CHECK_ROUND_SECONDS if waits_on_checks(condition, allocations) else ROUND_SECONDS
        return Verdict(round_cap=cap)

    return judge


def has_restarted(before, after, task):
    """True when `task` runs again after a restart that happened since `before` was read."""
    old = (before.get("TaskStates") or {}).get(task) or {}
    new = (after.get("TaskStates") or {}).get(task) or {}
    if new.get("State") != "running":
        return False
    if (new.get("Restarts") or 0) > (old.get("Restarts") or 0):
        return True
    return bool(new.get("LastRestart")) and new.get("LastRestart") != old.get("LastRestart")


def restart_judge(before, tasks, condition="running"):
    """The judge for restart's wait on one allocation: every restarted task runs again (and, for
    `healthy`, the allocation is healthy, its checks included)."""

    def judge(allocation):
        if is_terminal(allocation) or not should_run(allocation):
            return Verdict(hopeless=True)
        if any(not has_restarted(before, allocation, task) for task in tasks):
            return Verdict()
        if condition == "healthy" and not is_healthy(allocation):
            return Verdict(round_cap=CHECK_ROUND_SECONDS if failing_checks(allocation) else ROUND_SECONDS)
        return Verdict(met=True)

    return judge


def terminal_judge(allocation_ids):
    """The judge for stop's wait: every allocation in `allocation_ids` is terminal or gone."""

    def judge(allocations):
        return Verdict(met=not still_running(allocation_ids, allocations))

    return judge


def still_running(allocation_ids, listed):
    """IDs in `allocation_ids` that the listing still shows as not terminal (a missing one was garbage-collected)."""
    by_id = {allocation.get("ID"): allocation for allocation in listed}
    return [alloc_id for alloc_id in allocation_ids if alloc_id in by_id and not is_terminal(by_id[alloc_id])]
