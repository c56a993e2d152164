# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What stop, signal and restart return: one entry per allocation (summary fields, the action's fields or its
one-line error), the failure message naming every failed allocation, `--diff`, and the readable keys
(`summary`, `filter`, the empty-selection `msg`) that finish_action() adds before exit_json/fail_json."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import allocation_label, task_state
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadError,
    NomadNotFoundError,
    NomadPermissionDeniedError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import empty_selection_message
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import summarize
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id

# The key under which an action hands the allocation its wait observed to finish_action() (never in a result).
OBSERVED = "_observed"


def allocation_summary(alloc: dict) -> dict:
    """The identifying fields every per-allocation result starts with."""
    return {
        "ID": alloc.get("ID"),
        "Name": alloc.get("Name"),
        "JobID": alloc.get("JobID"),
        "Namespace": alloc.get("Namespace"),
        "TaskGroup": alloc.get("TaskGroup"),
    }


def describe_error(error: Exception, alloc: dict) -> str:
    """One line for a per-allocation failure, with the fix where the error has an obvious one."""
    if isinstance(error, NomadPermissionDeniedError):
        namespace = alloc.get("Namespace") or "default"
        return f"Permission denied: the token needs the alloc-lifecycle capability in namespace {namespace!r}"
    if isinstance(error, NomadNotFoundError):
        return f"allocation not found (garbage-collected or unknown to the server): {nomad_message(error)}"
    if isinstance(error, NomadError):
        return nomad_message(error)
    return str(error)


def nomad_message(error: NomadError) -> str:
    message = getattr(error, "nomad_message", None) or str(error)
    return " ".join(str(message).split())


# ---------------------------------------------------------------------------------------------------
# Shaping the module result


def shape_results(outcomes: list) -> list:
    """One dict per allocation, in input order: summary + action fields, or summary + `error`."""
    shaped = []
    for outcome in outcomes:
        entry = allocation_summary(outcome.item)
        if outcome.failed:
            entry.update(changed=False)
            entry.update(getattr(outcome.error, "partial", {}))
            entry["error"] = describe_error(outcome.error, outcome.item)
        else:
            entry.update({key: value for key, value in outcome.value.items() if key != OBSERVED})
        shaped.append(entry)
    return shaped


def failure_message(results: list):
    """`2 of 10 allocations failed: 8d1c3f2a (web.frontend[1]): Task not running; ...`, or None.

    Allocations that failed with the same message are named together, so every failure is listed
    without repeating a long message a thousand times.
    """
    failed = [entry for entry in results if entry.get("error")]
    if not failed:
        return None
    groups = {}
    for entry in failed:
        groups.setdefault(entry["error"], []).append(allocation_label(entry))
    details = "; ".join(f"{', '.join(labels)}: {message}" for message, labels in groups.items())
    noun = "allocation" if len(results) == 1 else "allocations"
    return f"{len(failed)} of {len(results)} {noun} failed: {details}"


def any_changed(results: list) -> bool:
    return any(entry.get("changed") for entry in results)


def finish(module, results: list, **facts) -> None:
    """exit_json with the per-allocation results, or fail_json listing every failure (results included)."""
    facts = dict(facts, changed=any_changed(results), allocations=results)
    message = failure_message(results)
    if message:
        module.fail_json(msg=message, **facts)
    module.exit_json(**facts)


# ---------------------------------------------------------------------------------------------------
# --diff and the readable keys


def _diff_header(alloc: dict) -> str:
    node = alloc.get("NodeName") or short_id(alloc.get("NodeID"))
    return (f"{short_id(alloc.get('ID'))} {alloc.get('Name')} on {node} "
            f"(client status {alloc.get('ClientStatus')}, desired status {alloc.get('DesiredStatus')})")


def _task_lines(alloc: dict, tasks: list, suffix: str = "") -> str:
    lines = []
    for name in tasks:
        state = task_state(alloc, name)
        lines.append(f"task {name}: {state.get('State') or 'pending'}, restarts {state.get('Restarts') or 0}{suffix}\n")
    return "".join(lines)


def allocation_diff(verb: str, alloc: dict, entry: dict, signal=None, observed=None) -> dict:
    """One Ansible diff for an allocation that stop/signal/restart changed (or would change).

    The before header and body are the allocation as selected; the after header and body are what a wait
    observed (`observed`), else the selected state with the change applied, so a header never contradicts its
    body (a stop's after header says desired status stop).
    """
    after_alloc = observed or alloc
    if verb == "stop":
        after_alloc = dict(after_alloc, DesiredStatus="stop")
        before, after = f"desired_status: {alloc.get('DesiredStatus')}\n", "desired_status: stop\n"
    elif verb == "signal":
        tasks = entry.get("tasks") or []
        before, after = _task_lines(alloc, tasks), _task_lines(after_alloc, tasks, f", {signal} sent")
    else:
        tasks = entry.get("tasks") or []
        before, after = _task_lines(alloc, tasks), _task_lines(after_alloc, tasks, ", restarted")
    return {"before_header": _diff_header(alloc), "after_header": _diff_header(after_alloc), "before": before,
            "after": after}


def action_diffs(verb: str, allocations: list, results: list, signal=None, observed=None) -> list:
    observed = observed or {}
    return [allocation_diff(verb, alloc, entry, signal, observed.get(alloc.get("ID")))
            for alloc, entry in zip(allocations, results) if entry.get("changed")]


def observed_allocations(allocations: list, observed: dict) -> list:
    """`allocations` with what a wait observed in place of the state they were selected in."""
    return [observed.get(alloc.get("ID"), alloc) for alloc in allocations]


def finish_action(module, verb: str, allocations: list, results: list, selection_filter, observed=None,
                  **facts) -> None:
    """finish() with the readable keys: `summary`, `filter`, a `msg` for an empty selection, and `diff`.

    `observed` ({ID: allocation}) is what a wait saw after the change: `summary` and the after side of the diff
    show it, so a result after a wait describes the allocation as it is, not as it was before the change.
    """
    observed = observed or {}
    facts = dict(facts, summary=summarize(observed_allocations(allocations, observed)), filter=selection_filter)
    if not allocations:
        facts["msg"] = empty_selection_message(selection_filter)
    if getattr(module, "_diff", False):
        facts["diff"] = action_diffs(verb, allocations, results, facts.get("signal"), observed)
    finish(module, results, **facts)
