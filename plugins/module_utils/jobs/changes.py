# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What nomad_job_revert and nomad_job_scale do: check the request against the stored job (Nomad's refusals,
in Nomad's words, before anything is sent), decide whether it changes anything, send it, and watch the rollout
with ``rollout.watch_registration`` (reference nomad-jobs-behaviour.md §6.1, §6.2).

Whether a revert changes anything is Nomad's answer: the plan of the target version's spec (``Diff.Type``
``None`` = unchanged), never a comparison of job JSON here."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NotFoundError, OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec import (
    job_facts,
    job_path,
    nomad_warnings,
    plan_changes,
    plan_job,
    read_job,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.plan_render import render_plan
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.rollout import Progress, RolloutFailed, watch_registration
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import summarize
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line, short_id

WAIT_ARGUMENT_SPEC = dict(
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    diagnose_lines=dict(type="int", default=20),
)
REVERT_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    version=dict(type="int", required=True),
    enforce_prior_version=dict(type="int"),
    **WAIT_ARGUMENT_SPEC,
)
SCALE_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    group=dict(type="str", required=True),
    count=dict(type="int", required=True),
    message=dict(type="str"),
    check_index=dict(type="int"),
    **WAIT_ARGUMENT_SPEC,
)
ACTIVE_DEPLOYMENT_STATUSES = frozenset(("running", "paused", "pending", "blocked", "unblocking", "initializing"))
# What the plan of a stored version carries that a registration sets anew (not part of the spec).
VERSION_METADATA = ("Version", "Stable", "VersionTag", "SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex",
                    "Status", "StatusDescription")


class JobChangeRefused(OperationFailed):
    """Nomad would refuse the revert or scale (one line in Nomad's words); nothing was sent."""


def existing_job(client, name, namespace):
    job = read_job(client, name, namespace)
    if job is None:
        raise NotFoundError(f'job "{name}" not found at {client.options.address} (namespace {namespace})')
    return job


def watched(client, result, name, namespace, eval_id, params, report):
    """Add the stored job and, with `wait`, the rollout's deployment and summary to `result`."""
    stored = read_job(client, name, namespace) or {}
    result.update(job=job_facts(stored), eval_id=eval_id or None)
    if not params["wait"]:
        return result
    try:
        deployment, allocations = watch_registration(client, stored, eval_id, params["wait_timeout"],
                                                     params["diagnose_lines"], Progress(report))
    except RolloutFailed as failure:
        failure.details.update(job=result["job"], eval_id=result["eval_id"])
        raise
    result.update(deployment=deployment, summary=summarize(allocations))
    return result


# --------------------------------------------------------------------------------------------- revert
def job_version(client, job, version, namespace):
    versions = client.read(job_path(job["ID"]) + "/versions", {"namespace": namespace}).data or {}
    for stored in versions.get("Versions") or []:
        if stored.get("Version") == version:
            return stored
    raise NotFoundError(f'job "{job["ID"]}" in namespace "{namespace}" at version {version} not found')


def revert_job(client, params, namespace, check_mode=False, report=None):
    """The result keys of nomad_job_revert: changed, job, plan diff text, eval_id, deployment, summary."""
    name, version = params["name"], params["version"]
    current = existing_job(client, name, namespace)
    prior = params["enforce_prior_version"]
    if prior is not None and prior != current.get("Version"):
        raise JobChangeRefused(f"job {name!r} not reverted: Current job has version {current.get('Version')}; "
                               f"enforcing version {prior}")
    target = job_version(client, current, version, namespace)
    result = dict(changed=False, job=job_facts(current), eval_id=None, deployment=None, summary=[], diff_text=None,
                  warnings_nomad=[])
    if version == current.get("Version"):  # Nomad refuses: "can't revert to current version"
        return result
    spec = {key: value for key, value in target.items() if key not in VERSION_METADATA}
    plan = plan_job(client, spec, namespace)
    result.update(changed=plan_changes(plan), diff_text=render_plan(plan, name, current.get("Type")),
                  warnings_nomad=nomad_warnings(plan))
    if not result["changed"] or check_mode:
        return result
    body = {"JobID": name, "JobVersion": version}
    if prior is not None:
        body["EnforcePriorVersion"] = prior
    answer = client.write("POST", job_path(name) + "/revert", params={"namespace": namespace}, body=body).data or {}
    result["warnings_nomad"] = nomad_warnings(plan, answer)
    return watched(client, result, name, namespace, answer.get("EvalID"), params, report)


# --------------------------------------------------------------------------------------------- scale
def refuse_active_deployment(client, job, namespace):
    """Nomad refuses scaling while the latest deployment of this job instance is active (§6.2); say so before
    sending, so that check mode predicts it."""
    deployment = client.read(job_path(job["ID"]) + "/deployment", {"namespace": namespace}).data or {}
    if deployment.get("Status") in ACTIVE_DEPLOYMENT_STATUSES and deployment.get("JobCreateIndex") == job.get("CreateIndex"):
        raise JobChangeRefused(f"job {job['ID']!r} not scaled: job scaling blocked due to active deployment "
                               f"{short_id(deployment.get('ID'))} (status {deployment.get('Status')}); promote, fail or "
                               "wait for it first (nomadops.nomad.nomad_deployment)")


def refuse_outside_scaling_policy(name, group, count):
    """Nomad refuses a count outside the group's `scaling` block bounds (§6.2); said before sending, in its words."""
    policy = group.get("Scaling") or {}
    minimum, maximum = policy.get("Min"), policy.get("Max")
    if minimum is not None and count < minimum:
        raise JobChangeRefused(f"job {name!r} not scaled: group count was less than scaling policy minimum: "
                               f"{count} < {minimum}")
    if maximum is not None and count > maximum:
        raise JobChangeRefused(f"job {name!r} not scaled: group count was greater than scaling policy maximum: "
                               f"{count} > {maximum}")


def scale_job(client, params, namespace, check_mode=False, report=None):
    """The result keys of nomad_job_scale: changed, job, previous_count, count, eval_id, deployment, summary."""
    name, group, count = params["name"], params["group"], params["count"]
    if count < 0:
        raise JobChangeRefused(f"job {name!r} not scaled: scaling action count can't be negative ({count})")
    current = existing_job(client, name, namespace)
    groups = {tg.get("Name"): tg for tg in current.get("TaskGroups") or []}
    counts = {group_name: tg.get("Count") for group_name, tg in groups.items()}
    if group not in counts:
        raise JobChangeRefused(f'job {name!r} not scaled: task group "{group}" specified for scaling does not exist in job '
                               f"(groups: {', '.join(sorted(counts)) or 'none'})")
    refuse_outside_scaling_policy(name, groups[group], count)
    refuse_active_deployment(client, current, namespace)
    index = current.get("JobModifyIndex") or 0
    if params["check_index"] is not None and params["check_index"] != index:
        raise JobChangeRefused(f"job {name!r} not scaled: Enforcing job modify index {params['check_index']}: "
                               f"job exists with conflicting job modify index: {index}")
    result = dict(changed=counts[group] != count, job=job_facts(current), previous_count=counts[group], count=count,
                  eval_id=None, deployment=None, summary=[])
    if not result["changed"] or check_mode:
        return result
    body = {"Count": count, "Target": {"Group": group}, "Message": params["message"] or "", "PolicyOverride": False}
    if params["check_index"] is not None:
        body["JobModifyIndex"] = params["check_index"]
    try:
        answer = client.write("POST", job_path(name) + "/scale", params={"namespace": namespace}, body=body).data or {}
    except NomadError as error:
        if error.status in (400, 500) and error.nomad_message:
            raise JobChangeRefused(f"job {name!r} not scaled: {one_line(error.nomad_message)}") from None
        raise
    return watched(client, result, name, namespace, answer.get("EvalID"), params, report)
