# -*- coding: utf-8 -*-
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait conditions for allocation sets: small pure predicates, and a loop driven by Nomad's blocking
queries (it re-reads only when the allocations table changed, or when the wait runs out)."""

from __future__ import annotations

import time

WAIT_CONDITIONS = ("running", "healthy", "terminal", "absent")
TERMINAL_CLIENT_STATUSES = frozenset(("complete", "failed", "lost"))
MAX_BLOCKING_WAIT = 300  # Nomad clamps blocking queries to 5 minutes
MAX_LISTED = 5


def is_terminal(allocation):
    return allocation.get("ClientStatus") in TERMINAL_CLIENT_STATUSES


def should_run(allocation):
    return (allocation.get("DesiredStatus") or "run") == "run"


def is_active(allocation):
    """Meant to run and not finished: the allocations that `running` and `healthy` wait for."""
    return should_run(allocation) and not is_terminal(allocation)


def is_running(allocation):
    return allocation.get("ClientStatus") == "running"


def is_healthy(allocation):
    """Running and healthy: the deployment health Nomad reports, else every task running or finished cleanly."""
    if not is_running(allocation):
        return False
    deployment = allocation.get("DeploymentStatus") or {}
    if deployment.get("Healthy") is not None:
        return deployment["Healthy"] is True
    states = list((allocation.get("TaskStates") or {}).values())
    if not states:
        return False
    finished_cleanly = [state for state in states if state.get("State") == "dead" and not state.get("Failed")]
    running = [state for state in states if state.get("State") == "running"]
    return bool(running) and len(running) + len(finished_cleanly) == len(states)


_PER_ALLOCATION = {"running": is_running, "healthy": is_healthy}


def pending_allocations(condition, allocations):
    """The allocations that keep `condition` from being met (empty list: met, except as below)."""
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
    """For a fixed set of allocations (selected by ID): once none of them should run or all have finished,
    running/healthy cannot happen any more (terminal is final; replacements have other IDs)."""
    return condition in _PER_ALLOCATION and not any(is_active(allocation) for allocation in allocations)


def _list_some(allocations):
    names = ", ".join(
        "%s (%s)" % (allocation.get("ID", "")[:8], allocation.get("ClientStatus")) for allocation in allocations[:MAX_LISTED]
    )
    more = "" if len(allocations) <= MAX_LISTED else " and %d more" % (len(allocations) - MAX_LISTED)
    return names + more


def describe_progress(condition, allocations):
    """One line: how far the allocations are from the condition."""
    pending = pending_allocations(condition, allocations)
    if condition in _PER_ALLOCATION and not any(is_active(allocation) for allocation in allocations):
        if not allocations:
            return "no allocation that should run is selected"
        return "none of the selected allocations should run any more: %s" % _list_some(allocations)
    if condition == "absent":
        return "%d allocation(s) still selected" % len(pending)
    return "%d allocation(s) not %s yet: %s" % (len(pending), condition, _list_some(pending))


class WaitOutcome(object):
    __slots__ = ("allocations", "index", "met", "waited", "hopeless")

    def __init__(self, allocations, index, met, waited, hopeless=False):
        self.allocations = allocations
        self.index = index
        self.met = met
        self.waited = waited
        self.hopeless = hopeless  # given up before the timeout: the condition can never be met


def wait_for_condition(condition, list_allocations, wait_for_change, timeout, clock=time.monotonic,
                       fixed_selection=False):
    """Re-list until `condition` holds or `timeout` seconds pass.

    list_allocations() -> (allocations, index); wait_for_change(index, seconds) blocks until Nomad's index
    moves past `index` or `seconds` pass (a blocking query).  Returns a WaitOutcome; never sleeps itself.
    With `fixed_selection` (allocations chosen by ID) it gives up as soon as the condition can never be met.
    """
    started = clock()
    deadline = started + timeout
    while True:
        allocations, index = list_allocations()
        if condition_met(condition, allocations):
            return WaitOutcome(allocations, index, True, clock() - started)
        if fixed_selection and allocations and can_never_be_met(condition, allocations):
            return WaitOutcome(allocations, index, False, clock() - started, hopeless=True)
        remaining = deadline - clock()
        if remaining <= 0:
            return WaitOutcome(allocations, index, False, clock() - started)
        wait_for_change(index or 0, max(1, min(int(remaining + 0.999), MAX_BLOCKING_WAIT)))
