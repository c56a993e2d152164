# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Revert and scale of registered jobs (reference nomad-jobs-behaviour.md §6.1, §6.2, §4.7), on top of jobs.py."""
from __future__ import annotations

import copy

from . import acl as acl_mod
from .deployments import ACTIVE
from .httpjson import HttpError, json_response
from .nomadtime import now_ns

MAX_SCALING_EVENTS = 20  # structs.JobTrackedScalingEvents


# --- POST /v1/job/:id/revert (§6.1) ------------------------------------------------------------------
async def revert(jobs, request, job_id: str):
    from .jobs import decode_body, field_of
    if request.method not in ("PUT", "POST"):
        raise HttpError(405, "Invalid method")
    body = decode_body(await request.text())
    body_id = field_of(body, "JobID") or ""
    if not body_id:
        raise HttpError(400, "JobID must be specified")
    if body_id != job_id:
        raise HttpError(400, "Job ID does not match")
    token = jobs._token(request)
    namespace = request.query.get("namespace") or field_of(body, "Namespace") or "default"
    jobs.api.require(token, namespace, "submit-job")
    current = jobs.store.current(namespace, job_id)
    if current is None:
        raise HttpError(500, f'job "{job_id}" not found', rpc=True)
    version = _uint(field_of(body, "JobVersion") or 0, "JobVersion")
    if version == current["Version"]:
        raise HttpError(500, "can't revert to current version", rpc=True)
    prior = field_of(body, "EnforcePriorVersion")
    if prior is not None and _uint(prior, "EnforcePriorVersion") != current["Version"]:
        raise HttpError(500, f"Current job has version {current['Version']}; enforcing version {prior}", rpc=True)
    old = next((job for job in jobs.store.versions.get((namespace, job_id), []) if job["Version"] == version), None)
    if old is None:
        raise HttpError(500, f'job "{job_id}" in namespace "{namespace}" at version {version} not found', rpc=True)
    reverted = dict(copy.deepcopy(old), VersionTag=None, Stable=False, NomadTokenID=jobs.token_accessor(token))
    jobs.validate(reverted)
    submission = jobs.store.submissions.get((namespace, job_id, version))
    result = jobs.write_job(reverted, current, submission, "job-register")
    headers = {"X-Nomad-Index": str(result["Index"]), "X-Nomad-LastContact": "0", "X-Nomad-KnownLeader": "false"}
    return json_response(request, result, headers=headers)


def _uint(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HttpError(400, f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                             f"JobRevertRequest.{name} of type uint64")
    return value


# --- /v1/job/:id/scale (§6.2, §4.7) ---------------------------------------------------------------------
async def scale(jobs, request, job_id: str):
    if request.method == "GET":
        return scale_status(jobs, request, job_id)
    if request.method not in ("PUT", "POST"):
        raise HttpError(405, "Invalid method")
    from .jobs import decode_body, field_of
    body = decode_body(await request.text())
    target = field_of(body, "Target") or {}
    if field_of(target, "Job") and field_of(target, "Job") != job_id:
        raise HttpError(400, "job ID in payload did not match URL")
    token = jobs._token(request)
    namespace = request.query.get("namespace") or field_of(body, "Namespace") or "default"
    if token is not None and not (token.allows(namespace, "scale-job") or token.allows(namespace, "submit-job")):
        raise HttpError(403, acl_mod.PERMISSION_DENIED)
    count, group_name = check_scale_request(body, target, namespace)
    job = jobs.store.current(namespace, job_id)
    if job is None:
        raise HttpError(404, f'job "{job_id}" not found')
    if job["Type"] == "system" and count is not None and count > 1:
        raise HttpError(400, 'jobs of type "system" can only be scaled between 0 and 1')
    group = next((group for group in job["TaskGroups"] if group["Name"] == group_name), None)
    if group is None:
        raise HttpError(400, f'task group "{group_name}" specified for scaling does not exist in job')
    check_scaling_policy(group, count)
    previous = group["Count"]
    result = {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": job["ModifyIndex"], "Warnings": ""}
    if count is not None:
        refuse_during_deployment(jobs, job)
        result = write_scaled_job(jobs, job, group_name, count)
    index = jobs.emulator.bump()
    record_scaling_event(jobs, job, group_name, {
        "Time": now_ns(), "Count": count, "PreviousCount": previous, "Message": field_of(body, "Message") or "",
        "Error": bool(field_of(body, "Error")), "Meta": field_of(body, "Meta"), "EvalID": result["EvalID"] or None,
        "CreateIndex": index})
    result.update({"Index": index, "LastContact": 0, "KnownLeader": True, "NextToken": ""})
    return json_response(request, result, headers={"X-Nomad-Index": str(index)})


def check_scale_request(body: dict, target: dict, namespace: str):
    """The request checks of structs.ScalingRequest.Validate, coded 400s (§6.2 table)."""
    from .jobs import field_of
    target_namespace = field_of(target, "Namespace")
    if target_namespace and target_namespace != namespace:
        raise HttpError(400, "namespace in payload did not match header")
    group_name = field_of(target, "Group") or ""
    if not group_name:
        raise HttpError(400, "missing task group name for scaling action")
    count = field_of(body, "Count")
    if count is not None:
        if count < 0:
            raise HttpError(400, "scaling action count can't be negative")
        if field_of(body, "Error"):
            raise HttpError(400, "scaling action should not contain count if error is true")
        if count >= 2 ** 63:
            raise HttpError(400, f"new scaling count is too large for TaskGroup.Count (int): {count}")
    return count, group_name


def check_scaling_policy(group: dict, count) -> None:
    """A group's `scaling` block bounds the count (§6.2 table)."""
    policy = group.get("Scaling") or {}
    if count is None or not policy:
        return
    if policy.get("Min") is not None and count < policy["Min"]:
        raise HttpError(400, f"group count was less than scaling policy minimum: {count} < {policy['Min']}")
    if policy.get("Max") is not None and count > policy["Max"]:
        raise HttpError(400, f"group count was greater than scaling policy maximum: {count} > {policy['Max']}")


def refuse_during_deployment(jobs, job: dict) -> None:
    """§6.2: a count change while the latest deployment of this job instance (same JobCreateIndex) is active."""
    deployment = jobs.deployments.latest(job["Namespace"], job["ID"])
    if deployment is not None and deployment["Status"] in ACTIVE and deployment["JobCreateIndex"] == job["CreateIndex"]:
        raise HttpError(400, "job scaling blocked due to active deployment")


def write_scaled_job(jobs, job: dict, group_name: str, count: int) -> dict:
    """The job copy with the new count is written unconditionally (a new version), then a `job-scaling` eval."""
    scaled = copy.deepcopy(job)
    for group in scaled["TaskGroups"]:
        if group["Name"] == group_name:
            group["Count"] = count
    job_index = jobs.emulator.bump()
    scaled.update({"SubmitTime": now_ns(), "Version": job["Version"] + 1, "ModifyIndex": job_index,
                   "JobModifyIndex": job_index, "Stable": False})
    jobs.store.store_version(scaled, None)
    eval_index = jobs.emulator.bump()
    evaluation = jobs.store.new_eval(scaled, "job-scaling", eval_index)
    jobs.process_eval(evaluation, scaled)
    return {"EvalID": evaluation["ID"], "EvalCreateIndex": eval_index, "JobModifyIndex": job_index, "Warnings": ""}


def record_scaling_event(jobs, job: dict, group_name: str, event: dict) -> None:
    events = jobs.store.scaling_events.setdefault((job["Namespace"], job["ID"], group_name), [])
    events.insert(0, event)
    del events[MAX_SCALING_EVENTS:]


def scale_status(jobs, request, job_id: str):
    """§4.7: ACL read-job or read-job-scaling; per-group desired/placed/running/healthy counts and events."""
    token = jobs._token(request)
    namespace = request.query.get("namespace", "") or "default"
    if token is not None and not (token.allows(namespace, "read-job") or token.allows(namespace, "read-job-scaling")):
        raise HttpError(403, acl_mod.PERMISSION_DENIED)
    job = jobs.store.current(namespace, job_id)
    if job is None:
        raise HttpError(404, "job not found", jobs.api.read_meta(jobs.emulator.index))
    groups = {}
    index = job["ModifyIndex"]
    for group in job["TaskGroups"]:
        allocs = [alloc for alloc in jobs.scheduler.live_allocs(namespace, job_id) if alloc.task_group == group["Name"]]
        healthy = [alloc for alloc in allocs if (alloc.deployment_status or {}).get("Healthy") is True]
        unhealthy = [alloc for alloc in allocs if (alloc.deployment_status or {}).get("Healthy") is False]
        events = jobs.store.scaling_events.get((namespace, job_id, group["Name"])) or None
        groups[group["Name"]] = {"Desired": group["Count"], "Placed": len(allocs),
                                 "Running": len([alloc for alloc in allocs if alloc.client_status == "running"]),
                                 "Healthy": len(healthy), "Unhealthy": len(unhealthy), "Events": events}
        index = max([index] + [alloc.modify_index for alloc in allocs] + [event["CreateIndex"] for event in events or ()])
    body = {"JobID": job_id, "Namespace": namespace, "JobCreateIndex": job["CreateIndex"],
            "JobModifyIndex": job["ModifyIndex"], "JobStopped": bool(job.get("Stop")), "TaskGroups": groups}
    return json_response(request, body, headers=jobs.api.read_meta(index))
