# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Stop, signal and restart many allocations in one task.

The bulk runner acts on allocations with bounded concurrency over the one pooled NomadClient, keeps the
results in input order and collects every failure. The per-allocation actions validate before they send
anything, and the waits are driven by Nomad's blocking queries. What the modules return (entries, failure
message, --diff, summary) is shaped in allocations/results.py.
"""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadError,
    NomadNotFoundError,
    NomadPermissionDeniedError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.results import (
    OBSERVED,
    describe_error,
    nomad_message,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import (
    TERMINAL_CLIENT_STATUSES,
    blocking_read_allocation,
    is_terminal,
    namespace_of,
    namespace_params,
    read_allocation,
    runs_once,
    task_names,
    task_state,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.reads import attach_checks, wait_for_terminal
from ansible_collections.nomadops.nomad.plugins.module_utils.common.concurrency import concurrent_map
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import missing_selector_message
from ansible_collections.nomadops.nomad.plugins.module_utils.common.waiting import wait_until
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.health import has_restarted, health_problem, restart_judge

STOPPED_DESIRED_STATUSES = ("stop", "evict")
RESTART_WAIT_CONDITIONS = ("running", "healthy")

RESTART_FINISHED_TASK_HINT = (
    "; it is a lifecycle task that has finished and only runs again when the whole allocation restarts: "
    "use all_tasks=true instead of task"
)


class LifecycleError(OperationFailed):
    """A problem with one allocation, found before or while acting on it.

    `partial` holds result fields that are already true when the error happened (for example the
    tasks that were signalled before a later task failed), so the report never hides an action.
    """

    def __init__(self, message: str, partial: dict | None = None):
        super().__init__(message)
        self.partial = dict(partial or {})


class BulkOutcome:
    """What the bulk runner got for one item: the action's return value or the error it raised."""

    __slots__ = ("item", "value", "error")

    def __init__(self, item, value=None, error=None):
        self.item = item
        self.value = value
        self.error = error

    @property
    def failed(self) -> bool:
        return self.error is not None


# Errors one allocation can run into; anything else is a bug and propagates.
ALLOCATION_ERRORS = (NomadError, LifecycleError)


def run_bulk(items, action, parallelism: int, expected_errors=ALLOCATION_ERRORS) -> list:
    """Call `action(item)` for every item, at most `parallelism` at a time.

    Returns one BulkOutcome per item, in the order of `items`. An error of a type in `expected_errors`
    is recorded on its item and the other items still run. Any other exception is a bug: it propagates,
    but only after every submitted item has run, so no action is left half-reported.
    """
    items = list(items)
    if not items:
        return []
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")

    def attempt(item) -> BulkOutcome:
        try:
            return BulkOutcome(item, value=action(item))
        except expected_errors as error:
            return BulkOutcome(item, error=error)

    return concurrent_map(attempt, items, parallelism)


# ---------------------------------------------------------------------------------------------------
# Input checks done before any request


def empty_selector_message(params: dict):
    """A one-line refusal when no selector option is set, else None."""
    message = missing_selector_message(params)
    return None if message is None else f"refusing to act on every allocation in the namespace: {message}"


def parallelism_message(parallelism):
    """A one-line refusal for a parallelism below 1, else None."""
    if parallelism is None or parallelism >= 1:
        return None
    return f"parallelism must be at least 1, got {parallelism}"


def wait_timeout_message(wait_timeout):
    if wait_timeout is None or wait_timeout >= 0:
        return None
    return f"wait_timeout must be 0 or more seconds, got {wait_timeout}"


def input_problem(params: dict):
    """The first problem with the lifecycle options that must stop the task before any request, or None."""
    for message in (
        empty_selector_message(params),
        parallelism_message(params.get("parallelism")),
        wait_timeout_message(params.get("wait_timeout")),
    ):
        if message:
            return message
    return None


# ---------------------------------------------------------------------------------------------------
# What the actions decide from an allocation


def stop_skip_reason(alloc: dict):
    """Why stopping `alloc` would change nothing, or None when it would."""
    desired = alloc.get("DesiredStatus")
    if desired in STOPPED_DESIRED_STATUSES:
        return f"already stopping or stopped (DesiredStatus {desired})"
    client_status = alloc.get("ClientStatus")
    if client_status in TERMINAL_CLIENT_STATUSES:
        return f"already terminal (ClientStatus {client_status})"
    return None


def terminal_skip_reason(alloc: dict):
    """Why signal/restart leave `alloc` alone (its tasks no longer run), or None."""
    if is_terminal(alloc):
        return f"allocation is terminal (ClientStatus {alloc.get('ClientStatus')}); its tasks no longer run"
    return None


def running_tasks(alloc: dict) -> list:
    return [task for task in task_names(alloc) if task_state(alloc, task).get("State") == "running"]


def require_task(alloc: dict, task: str, finished_hint: str = "") -> None:
    """Raise LifecycleError unless `task` exists in the allocation and runs.

    `finished_hint` is added when `task` is a run-once lifecycle task that has finished (see facts.runs_once)."""
    names = task_names(alloc)
    if task not in names:
        raise LifecycleError(
            f"task {task!r} is not in this allocation; its tasks are: {', '.join(names) or 'none'}"
        )
    state = task_state(alloc, task).get("State") or "pending"
    if state != "running":
        hint = finished_hint if finished_hint and state == "dead" and runs_once(alloc, task) else ""
        raise LifecycleError(f"task {task!r} is not running (state {state}){hint}")


def require_running_tasks(alloc: dict, verb: str) -> list:
    tasks = running_tasks(alloc)
    if not tasks:
        raise LifecycleError(f"no running task to {verb}; its tasks are: {_task_state_list(alloc)}")
    return tasks


def _task_state_list(alloc: dict) -> str:
    names = task_names(alloc)
    if not names:
        return "none"
    return ", ".join(f"{name} ({task_state(alloc, name).get('State') or 'pending'})" for name in names)


# ---------------------------------------------------------------------------------------------------
# Reading and writing through the client


def plan_action(client, alloc: dict, choose, need_job: bool = False) -> tuple:
    """(allocation, choose(allocation), skip reason or None) for one signal or restart.

    The selection's list stub already carries ClientStatus and TaskStates, so most allocations are decided
    without another request (the full allocation is the largest answer of the API). The full allocation is
    read only when the stub cannot decide: no TaskStates yet, the job spec is needed (lifecycle hooks for
    `wait`), or `choose` refuses the stub, so that refusals are always judged on fresh data.
    """
    reason = terminal_skip_reason(alloc)
    if reason:
        return alloc, None, reason
    if alloc.get("TaskStates") and (alloc.get("Job") or not need_job):
        try:
            return alloc, choose(alloc), None
        except LifecycleError:
            pass
    full = read_allocation(client, alloc)
    reason = terminal_skip_reason(full)
    if reason:
        return full, None, reason
    return full, choose(full), None


# ---------------------------------------------------------------------------------------------------
# Per-allocation actions: each returns the result fields beyond allocation_summary()


def stop_allocation(client, alloc: dict, no_shutdown_delay: bool = False, check_mode: bool = False) -> dict:
    reason = stop_skip_reason(alloc)
    if reason:
        return {"changed": False, "skipped_reason": reason}
    if check_mode:
        return {"changed": True, "EvalID": None}
    params = namespace_params(namespace_of(alloc))
    if no_shutdown_delay:
        params["no_shutdown_delay"] = "true"
    if alloc.get("JobType") == "batch":
        # Nomad 1.11 reschedules a stopped batch allocation only when asked (as `nomad alloc stop` asks);
        # older servers ignore the parameter.
        params["reschedule"] = "true"
    response = client.write("POST", f"/v1/allocation/{alloc['ID']}/stop", params=params)
    return {"changed": True, "EvalID": (response.data or {}).get("EvalID")}


def signal_allocation(client, alloc: dict, signal: str, task=None, check_mode: bool = False) -> dict:
    """Signal `task`, or every running task one by one (Nomad fails a task-less signal when any task is dead)."""
    def choose(current):
        if task:
            require_task(current, task)
            return [task]
        return require_running_tasks(current, "signal")

    _current, tasks, reason = plan_action(client, alloc, choose)
    if reason:
        return {"changed": False, "skipped_reason": reason, "tasks": []}
    if check_mode:
        return {"changed": True, "tasks": tasks}
    signalled = []
    for name in tasks:
        try:
            client.write(
                "POST",
                f"/v1/client/allocation/{alloc['ID']}/signal",
                params=namespace_params(namespace_of(alloc)),
                body={"Task": name, "Signal": signal},
            )
        except NomadError as error:
            raise LifecycleError(
                _signal_failure(error, alloc, name, len(tasks) > 1),
                partial={"changed": bool(signalled), "tasks": signalled},
            )
        signalled.append(name)
    return {"changed": True, "tasks": signalled}


def _signal_failure(error: NomadError, alloc: dict, task: str, several_tasks: bool) -> str:
    message = describe_error(error, alloc)
    # Permission and lookup errors concern the whole allocation, not the task that happened to be first.
    if several_tasks and not isinstance(error, (NomadPermissionDeniedError, NomadNotFoundError)):
        return f"task {task!r}: {message}"
    return message


def restart_allocation(client, alloc: dict, task=None, all_tasks: bool = False, check_mode: bool = False,
                       wait=None, wait_timeout: float = 120) -> dict:
    """Restart `task`, every task (`all_tasks`), or the running tasks; optionally wait until they run again
    (`wait` is `running` or `healthy`, see wait_after_restart; true means `running`)."""
    def choose(current):
        if task:
            require_task(current, task, finished_hint=RESTART_FINISHED_TASK_HINT)
            return [task], {"TaskName": task}
        if all_tasks:
            return task_names(current), {"AllTasks": True}
        return require_running_tasks(current, "restart"), {}

    full, chosen, reason = plan_action(client, alloc, choose, need_job=wait or all_tasks)
    if reason:
        return {"changed": False, "skipped_reason": reason, "tasks": []}
    tasks, body = chosen
    if check_mode:
        return {"changed": True, "tasks": tasks}
    client.write("POST", f"/v1/client/allocation/{alloc['ID']}/restart", params=namespace_params(namespace_of(alloc)),
                 body=body)
    if wait:
        restarted = [name for name in tasks if not runs_once(full, name)]
        condition = wait if wait in RESTART_WAIT_CONDITIONS else "running"
        observed = wait_after_restart(client, full, restarted, condition, wait_timeout)
        return {"changed": True, "tasks": tasks, OBSERVED: observed}
    return {"changed": True, "tasks": tasks}


# ---------------------------------------------------------------------------------------------------
# Waits: the one engine (common/waiting.py) with the judges of allocations/health.py and the readers of allocations/reads.py


def wait_after_restart(client, before: dict, tasks: list, condition: str, timeout: float) -> dict:
    """Block on GET /v1/allocation/:id until every task in `tasks` runs again (and, for `healthy`, the
    allocation is healthy, its Nomad service checks included); LifecycleError when it cannot or times out."""

    def read(index, seconds):
        if index is None:
            current, current_index = read_allocation(client, before), None
        else:
            current, current_index = blocking_read_allocation(client, before, index, seconds)
        if condition == "healthy" and current.get("ClientStatus") == "running":
            attach_checks(client, [current])
        return current, current_index

    outcome = wait_until(read, restart_judge(before, tasks, condition), timeout)
    if outcome.met:
        return outcome.value
    raise LifecycleError(_restart_wait_failure(outcome, before, tasks, condition, timeout),
                         partial={"changed": True, "tasks": tasks})


def _restart_wait_failure(outcome, before: dict, tasks: list, condition: str, timeout: float) -> str:
    current = outcome.value
    if outcome.hopeless:
        state = current.get("ClientStatus") if is_terminal(current) else "stopped"
        return f"allocation became {state} while waiting for its tasks to run again"
    pending = [task for task in tasks if not has_restarted(before, current, task)]
    if pending:
        return f"restarted, but tasks {', '.join(pending)} did not run again within {timeout}s"
    return f"restarted, but not healthy within {timeout}s: {health_problem(current)}"


def wait_for_stopped(client, results: list, timeout: float) -> dict:
    """Wait until the allocations stopped in `results` are terminal; mark the ones that are not with `error`.

    Returns what the wait observed: {ID: {"ClientStatus": ..., "TaskStates": ...}} (finish_action's `observed`).
    """
    stopped = [entry for entry in results if entry.get("changed") and not entry.get("error")]
    seen = []
    try:
        not_stopped = set(wait_for_terminal(client, stopped, timeout, observed=seen))
        reason = f"stopped, but still not terminal after {timeout}s"
    except NomadError as error:
        not_stopped = {entry["ID"] for entry in stopped}
        reason = f"stopped, but waiting for it to finish failed: {nomad_message(error)}"
    for entry in stopped:
        if entry["ID"] in not_stopped:
            entry["error"] = reason
    statuses = ("ClientStatus", "ClientDescription", "DesiredStatus", "DesiredDescription", "ModifyTime", "TaskStates")
    return {stub["ID"]: {key: stub[key] for key in statuses if key in stub} for stub in seen if stub.get("ID")}


# ---------------------------------------------------------------------------------------------------
# What the user meant: an allocation given by id


def refuse_explicit_skip(value: dict, alloc: dict, explicit_ids, verb: str) -> dict:
    """`value` unchanged, unless the allocation was given by `id` and was skipped: then it fails, as
    `nomad alloc <verb> <id>` does for an allocation whose tasks no longer run."""
    reason = value.get("skipped_reason")
    if reason and alloc.get("ID") in explicit_ids:
        raise LifecycleError(f"cannot {verb} an allocation given by id: {reason}")
    return value
