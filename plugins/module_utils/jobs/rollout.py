# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Watching a rollout after a job registration or stop, and the failure report that says why it failed.

One entry point per situation, all on ``common/waiting.wait_until`` (blocking queries, a monotonic deadline, no sleeps):
``watch_registration`` (the evaluation, then the deployment it created or, without one, the new version's
allocations), ``watch_deployment`` (reference nomad-deployments-nodes-behaviour.md) and ``watch_stopped``.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import is_terminal, read_allocation
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.plan_render import metric_lines
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import allocation_summary_entry, iso_time
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line, short_id
from ansible_collections.nomadops.nomad.plugins.module_utils.common.waiting import Verdict, wait_until
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.health import CHECK_PASSING, main_tasks_running

TERMINAL_EVAL_STATUSES = frozenset(("complete", "failed", "canceled"))
DEPLOYMENT_SUCCESS = "successful"
DEPLOYMENT_FAILURES = frozenset(("failed", "cancelled", "canceled"))
DEPLOYMENT_PAUSED = "paused"
BATCH_TYPES = frozenset(("batch", "sysbatch"))
REPORTED_ALLOCATIONS = 5  # the failure report stays small: at most this many allocations ...
EVENTS_PER_TASK = 3  # ... their last task events ...
LOG_BYTES = 8192  # ... and this much of each log


class RolloutFailed(OperationFailed):
    """The registration or stop went through, but the rollout failed or timed out; `details` are result keys
    (failed_allocations, deployment, summary) that say why."""

    def __init__(self, message, **details):
        super().__init__(message, details=details)


class Progress:
    """Reports a line (through `report`, e.g. Ansible's display at -v) only when it differs from the last one."""

    def __init__(self, report=None):
        self._report = report
        self._last = None

    def __call__(self, line):
        if self._report is not None and line != self._last:
            self._report(line)
        self._last = line


# --------------------------------------------------------------------------------------------- reads
def _namespace(job):
    return {"namespace": job.get("Namespace") or "default"}


def blocking_reader(client, path, namespace, empty):
    """read(index, seconds) for wait_until: `path` read at once, then as a blocking query once index is known;
    `empty()` stands in for a body Nomad left empty."""

    def read(index, seconds):
        if index is None:
            response = client.read(path, namespace)
        else:
            response = client.blocking_read(path, namespace, index, seconds)
        return response.data or empty(), response.index

    return read


def job_allocations_reader(client, job):
    """The job's allocation stubs."""
    return blocking_reader(client, "/v1/job/" + quote(job["ID"], safe="") + "/allocations", _namespace(job), list)


def evaluation_reader(client, eval_id, namespace):
    return blocking_reader(client, f"/v1/evaluation/{eval_id}", namespace, dict)


def deployment_reader(client, deployment_id, namespace):
    return blocking_reader(client, f"/v1/deployment/{deployment_id}", namespace, dict)


# --------------------------------------------------------------------------------------------- placement
def placement_failure(group, metric, desired, queued):
    """`group "cache": 0 of 3 placed: resources exhausted on 3 nodes (memory)`."""
    reasons = []
    metric = metric or {}
    if metric.get("NodesExhausted"):
        dimensions = ", ".join(sorted(metric.get("DimensionExhausted") or {}))
        reasons.append(f"resources exhausted on {metric['NodesExhausted']} nodes" + (f" ({dimensions})" if dimensions else ""))
    skip = ("Resources exhausted", "Dimension ")
    reasons += [line[0].lower() + line[1:] for line in metric_lines(metric) if not line.startswith(skip)]
    placed = max(0, (desired or 0) - (queued or 0)) if desired is not None else None
    counted = f"{placed} of {desired} placed" if placed is not None else "not all placed"
    return f'group "{group}": {counted}: {"; ".join(reasons) or "no reason given by Nomad"}'


def group_counts(job):
    return {group.get("Name"): group.get("Count") for group in job.get("TaskGroups") or []}


def placement_failures(evaluation, job):
    counts = group_counts(job)
    queued = evaluation.get("QueuedAllocations") or {}
    return [placement_failure(group, metric, counts.get(group), queued.get(group))
            for group, metric in sorted((evaluation.get("FailedTGAllocs") or {}).items())]


def wait_for_evaluation(client, eval_id, job, timeout):
    """The evaluation once it is terminal (it is `pending` until a scheduler worker took it)."""
    def judge(evaluation):
        return Verdict(met=evaluation.get("Status") in TERMINAL_EVAL_STATUSES or bool(evaluation.get("FailedTGAllocs")))

    outcome = wait_until(evaluation_reader(client, eval_id, _namespace(job)), judge, timeout)
    if not outcome.met:
        raise RolloutFailed(f"job {job['ID']!r} version {job.get('Version')}: evaluation {short_id(eval_id)} was not "
                            f"processed within wait_timeout ({timeout} s); its status is {outcome.value.get('Status')!r}")
    return outcome.value


# --------------------------------------------------------------------------------------------- no deployment
def of_version(allocations, version):
    return [alloc for alloc in allocations if alloc.get("JobVersion") == version and (alloc.get("DesiredStatus") or "run") == "run"]


def version_progress(allocations, job):
    """One line: how many of the new version's allocations are placed, running (batch: complete), failed."""
    return f"job {job['ID']!r} version {job.get('Version')}: {version_counts(allocations, job)}"


def version_counts(allocations, job):
    current = of_version(allocations, job.get("Version"))
    desired = sum(count or 0 for count in group_counts(job).values())
    counts = {"running": 0, "complete": 0, "failed": 0}
    for alloc in current:
        if alloc.get("ClientStatus") in counts:
            counts[alloc["ClientStatus"]] += 1
    done = "complete" if job.get("Type") in BATCH_TYPES else "running"
    return f"{len(current)} of {desired} placed, {counts[done]} {done}, {counts['failed']} failed"


def version_judge(job, progress):
    """Every allocation of the new version runs (batch: has completed); a failed one ends the wait."""
    desired = sum(count or 0 for count in group_counts(job).values())
    batch = job.get("Type") in BATCH_TYPES

    def judge(allocations):
        progress(version_progress(allocations, job))
        current = of_version(allocations, job.get("Version"))
        if any(alloc.get("ClientStatus") in ("failed", "lost") for alloc in current):
            return Verdict(hopeless=True)
        if len(current) < desired:
            return Verdict()
        if batch:
            return Verdict(met=all(alloc.get("ClientStatus") == "complete" for alloc in current))
        return Verdict(met=all(alloc.get("ClientStatus") == "running" and main_tasks_running(alloc) for alloc in current))

    return judge


def watch_allocations(client, job, timeout, diagnose_lines, progress):
    outcome = wait_until(job_allocations_reader(client, job), version_judge(job, progress), timeout)
    current = of_version(outcome.value, job.get("Version"))
    if outcome.met:
        return current
    failed = [alloc for alloc in current if alloc.get("ClientStatus") in ("failed", "lost")]
    done = "complete" if job.get("Type") in BATCH_TYPES else "running"
    unfinished = failed or [alloc for alloc in current if alloc.get("ClientStatus") != done]
    why = (f"{len(failed)} allocation(s) failed" if failed
           else f"not done within wait_timeout ({timeout} s): {version_counts(outcome.value, job)}")
    report = failure_report(client, unfinished, diagnose_lines)
    raise RolloutFailed(f"job {job['ID']!r} version {job.get('Version')}: {why}{first_reason(report)}",
                        failed_allocations=report)


REASON_CHARS = 300  # the reason quoted in the one-line message; the whole story is in failed_allocations
# Events that only restate the one before them: "Unhealthy because of failed task", and the restart policy's
# "Policy allows no restarts"/"Exceeded allowed attempts ..." after the `Terminated` event that says why.
RESTATING_EVENTS = ("Alloc Unhealthy", "Not Restarting")


def first_reason(report):
    """` (why: alloc <id> <name> ...)`: what went wrong in the first reported allocation, in the words an operator
    reads in `nomad alloc status`: a failing check with its output, else a task's telling event with its last
    stderr line. Empty when the report holds nothing that says why."""
    for entry in report:
        reason = check_reason(entry) or task_reason(entry)
        if reason:
            name = (entry.get("summary") or {}).get("name")
            where = f"alloc {entry['id']}" + (f" {name}" if name else "")
            return f" (why: {where} {one_line(reason, REASON_CHARS)})"
    return ""


def check_reason(entry):
    for check in entry.get("checks") or []:
        if check.get("name") is None:  # the checks could not be read: no reason to quote
            continue
        output = check.get("output")
        return f'check "{check.get("name")}" {check.get("status")}' + (f": {output}" if output else "")
    return None


def telling_event(task):
    """The last event that says something: for a dead task the one before the health verdict that restates it."""
    events = task.get("events") or []
    if task.get("failed") or task.get("state") == "dead":
        events = [event for event in events if event.get("type") not in RESTATING_EVENTS] or events
    return events[-1]["message"] if events else None


def task_reason(entry):
    for task in entry.get("tasks") or []:
        if not (task.get("failed") or task.get("state") != "running"):
            continue
        event = telling_event(task)
        stderr = [line for line in task.get("stderr_lines") or [] if line.strip()]
        parts = [part for part in (event, f"stderr: {stderr[-1]}" if stderr else None) if part]
        if parts:
            return f'task "{task["task"]}": ' + ", ".join(parts)
    return None


# --------------------------------------------------------------------------------------------- deployments
def deployment_facts(deployment):
    """The `deployment` key: ID, Status, StatusDescription, requires_promotion and per group counts."""
    groups = {}
    for name, state in sorted((deployment.get("TaskGroups") or {}).items()):
        groups[name] = dict(desired=state.get("DesiredTotal"), placed=state.get("PlacedAllocs"),
                            healthy=state.get("HealthyAllocs"), unhealthy=state.get("UnhealthyAllocs"),
                            canaries=state.get("DesiredCanaries"), promoted=state.get("Promoted"))
    return dict(ID=deployment.get("ID"), Status=deployment.get("Status"),
                StatusDescription=deployment.get("StatusDescription"), requires_promotion=requires_promotion(deployment),
                groups=groups)


def requires_promotion(deployment):
    """Canaries that wait for a manual promotion: every canary group placed all and has them healthy."""
    waiting = [state for state in (deployment.get("TaskGroups") or {}).values()
               if state.get("DesiredCanaries") and not state.get("Promoted") and not state.get("AutoPromote")]
    return bool(waiting) and all(len(state.get("PlacedCanaries") or []) >= state["DesiredCanaries"]
                                 and (state.get("HealthyAllocs") or 0) >= state["DesiredCanaries"] for state in waiting)


def deployment_counts(facts):
    """`2 of 2 placed, 1 healthy, 1 unhealthy`; while canaries wait: `1 of 1 canaries placed, 1 healthy`."""
    groups = facts["groups"].values()
    canary_phase = any(group["canaries"] and not group["promoted"] for group in groups)
    placed, healthy, unhealthy = (sum(group[key] or 0 for group in groups) for key in ("placed", "healthy", "unhealthy"))
    if canary_phase:
        wanted = f"{sum(group['canaries'] or 0 for group in groups)} canaries"
    else:
        wanted = str(sum(group["desired"] or 0 for group in groups))
    text = f"{placed} of {wanted} placed, {healthy} healthy" + (f", {unhealthy} unhealthy" if unhealthy else "")
    return text + ("; the canaries wait for a promotion" if facts["requires_promotion"] else "")


def deployment_judge(progress, job):
    def judge(deployment):
        facts = deployment_facts(deployment)
        progress(f"job {job['ID']!r} version {job.get('Version')}: deployment {short_id(facts['ID'])} {facts['Status']}: "
                 f"{deployment_counts(facts)}")
        if facts["Status"] == DEPLOYMENT_SUCCESS or facts["requires_promotion"]:
            return Verdict(met=True)
        return Verdict(hopeless=facts["Status"] in DEPLOYMENT_FAILURES or facts["Status"] == DEPLOYMENT_PAUSED)

    return judge


def deployment_allocations(client, deployment_id, job):
    return client.read(f"/v1/deployment/allocations/{deployment_id}", _namespace(job)).data or []


def unhealthy_deployment_allocations(client, deployment, job, timed_out=False):
    """The deployment's failed or unhealthy allocations; after a timeout also those still without a verdict
    (what held the deployment up)."""
    allocations = deployment_allocations(client, deployment["ID"], job)
    unhealthy = [alloc for alloc in allocations if alloc.get("ClientStatus") in ("failed", "lost")
                 or ((alloc.get("DeploymentStatus") or {}).get("Healthy") is False)]
    if timed_out:
        unhealthy += [alloc for alloc in allocations if alloc not in unhealthy and not is_terminal(alloc)
                      and (alloc.get("DeploymentStatus") or {}).get("Healthy") is None]
    return unhealthy


def watch_deployment(client, deployment_id, job, timeout, diagnose_lines, progress):
    """The deployment's facts once successful, or waiting for a manual promotion of healthy canaries.
    A failed or cancelled deployment (auto-revert included) raises RolloutFailed naming job, version, deployment
    and Nomad's StatusDescription, with the failure report of its unhealthy allocations."""
    outcome = wait_until(deployment_reader(client, deployment_id, _namespace(job)), deployment_judge(progress, job), timeout)
    facts = deployment_facts(outcome.value)
    if outcome.met:
        return facts
    if facts["Status"] == DEPLOYMENT_PAUSED:
        raise paused_deployment(outcome.value)
    what = (f"deployment {short_id(deployment_id)} {facts['Status']}: {facts['StatusDescription']}" if outcome.hopeless
            else f"deployment {short_id(deployment_id)} still {facts['Status']} after wait_timeout ({timeout} s)")
    report = failure_report(client, unhealthy_deployment_allocations(client, outcome.value, job, not outcome.hopeless),
                            diagnose_lines)
    raise RolloutFailed(f"job {job['ID']!r} version {job.get('Version')}: {what}{first_reason(report)}",
                        deployment=facts, failed_allocations=report)


def paused_deployment(deployment):
    """A wait that meets a paused deployment ends at once: only someone's decision resumes or fails it."""
    return RolloutFailed(
        f"deployment {short_id(deployment.get('ID'))} of job {deployment.get('JobID')!r} version "
        f"{deployment.get('JobVersion')} is paused ({deployment.get('StatusDescription')}) and ends only when resumed "
        "or failed: resume it with nomadops.nomad.nomad_deployment state=running (and wait), or fail it with state=failed",
        deployment=deployment_facts(deployment))


# --------------------------------------------------------------------------------------------- entry points
def watch_registration(client, job, eval_id, timeout, diagnose_lines, progress):
    """(deployment facts or None, allocations of the new version) once the rollout succeeded; RolloutFailed
    when a placement failed (at once, with Nomad's reasons per group), the deployment failed, an allocation
    of the new version failed, or the timeout passed."""
    if not eval_id:  # periodic and parameterized jobs: nothing is placed at registration
        return None, []
    evaluation = wait_for_evaluation(client, eval_id, job, timeout)
    failures = placement_failures(evaluation, job)
    if failures:
        raise RolloutFailed(f"job {job['ID']!r} version {job.get('Version')}: placement failed: {'; '.join(failures)}")
    if evaluation.get("Status") != "complete":
        raise RolloutFailed(f"job {job['ID']!r} version {job.get('Version')}: evaluation {short_id(eval_id)} "
                            f"{evaluation.get('Status')}: {evaluation.get('StatusDescription') or 'no reason given'}")
    if evaluation.get("DeploymentID"):
        facts = watch_deployment(client, evaluation["DeploymentID"], job, timeout, diagnose_lines, progress)
        return facts, deployment_allocations(client, evaluation["DeploymentID"], job)
    return None, watch_allocations(client, job, timeout, diagnose_lines, progress)


def watch_stopped(client, job, timeout, progress):
    """Until every allocation of the job is terminal (stop) or gone (purge)."""
    def judge(allocations):
        running = [alloc for alloc in allocations if not is_terminal(alloc)]
        progress(f"job {job['ID']!r} stopping: {len(allocations) - len(running)} of {len(allocations)} allocation(s) terminal"
                 if allocations else f"job {job['ID']!r}: no allocation left")
        return Verdict(met=not running)

    outcome = wait_until(job_allocations_reader(client, job), judge, timeout)
    if not outcome.met:
        left = ", ".join(short_id(alloc.get("ID")) for alloc in outcome.value if not is_terminal(alloc))
        raise RolloutFailed(f"job {job['ID']!r}: allocations still not terminal after wait_timeout ({timeout} s): {left}")


# --------------------------------------------------------------------------------------------- failure report
# allocations/reads (with the selection and filters) and allocations/logs are imported only when a report is made: ansible-core compiles a
# collection's modules from source in every ansible-playbook run, and a rollout that succeeds needs neither
# (about 20 ms of the controller's time per run, benchmarks/analysis.md, section 9).
def _events(state):
    return [dict(type=event.get("Type"), message=event.get("DisplayMessage") or event.get("Message") or "",
                 time=iso_time(event.get("Time"))) for event in (state.get("Events") or [])[-EVENTS_PER_TASK:]]


def _failing_checks(client, allocation):
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.reads import read_checks

    try:
        checks = read_checks(client, allocation)
    except NomadError as error:
        return [dict(name=None, status="unknown", output=f"checks unavailable: {one_line(error)}")]
    return [dict(name=check.get("Check"), service=check.get("Service"), status=check.get("Status"),
                 output=one_line(check.get("Output") or "", 500))
            for check in checks.values() if check.get("Status") != CHECK_PASSING]


def _log_lines(client, allocation, task, log_type, lines):
    if lines <= 0:
        return []
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs import tail_log

    try:
        data, _truncated = tail_log(client, allocation["ID"], task, log_type, tail_lines=lines, max_bytes=LOG_BYTES)
    except NomadError as error:
        return [f"({log_type} unavailable: {one_line(error)})"]
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def _task_report(client, allocation, name, state, diagnose_lines, checks_failing):
    entry = dict(task=name, state=state.get("State"), failed=bool(state.get("Failed")), events=_events(state))
    if state.get("Failed") or state.get("State") != "running" or checks_failing:
        entry["stderr_lines"] = _log_lines(client, allocation, name, "stderr", diagnose_lines)
        entry["stdout_lines"] = _log_lines(client, allocation, name, "stdout", diagnose_lines)
    return entry


def allocation_report(client, stub, diagnose_lines):
    allocation = read_allocation(client, stub)
    checks = _failing_checks(client, allocation)
    states = allocation.get("TaskStates") or {}
    entry = dict(summary=allocation_summary_entry(allocation), id=short_id(allocation.get("ID")), checks=checks)
    entry["tasks"] = [_task_report(client, allocation, name, states[name] or {}, diagnose_lines, bool(checks))
                      for name in sorted(states)]
    return entry


def failure_report(client, allocations, diagnose_lines):
    """`failed_allocations`: per allocation (at most REPORTED_ALLOCATIONS) its summary, the last task events, the
    failing checks with their output and the last `diagnose_lines` lines of stderr and stdout of its failing tasks."""
    return [allocation_report(client, alloc, diagnose_lines) for alloc in allocations[:REPORTED_ALLOCATIONS]]
