# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Job endpoints of a Nomad 1.10 agent: parse, register (versions, EnforceIndex, PreserveCounts, Submission),
plan (Diff, DesiredTGUpdates, FailedTGAllocs), stop/purge, versions, submission, evaluations, and the
evaluations that place allocations on the scenario's client nodes.

Texts and status codes: /work/shared/reference/nomad-jobs-behaviour.md (sections named where used).
`GET /v1/job/:id` and `GET /v1/jobs` stay with readers.py, which serves the documents stored here.
"""
from __future__ import annotations

import asyncio
import copy
import json
import uuid

from . import acl as acl_mod
from . import reschedule as reschedule_mod
from . import jobdiff, jobops, jobspec
from .deployments import DeploymentApi, Deployments
from .httpjson import HttpError, go_json_error, json_response
from .joblist import JobList
from .nomadtime import now_ns, rfc3339
from .scenario import task_from_spec
from .scheduler import Scheduler
from .state import Allocation, new_id

JOB_SUFFIXES = ("evaluate", "allocations", "evaluations", "periodic/force", "plan", "summary", "dispatch",
                "versions", "revert", "deployments", "deployment", "stable", "scale", "services", "submission")
SUPPORTED_SUFFIXES = ("allocations", "evaluations", "plan", "versions", "submission", "summary", "revert", "scale",
                      "deployments", "deployment")
NOT_SPEC = ("Status", "StatusDescription", "Stable", "Version", "CreateIndex", "ModifyIndex", "JobModifyIndex",
            "SubmitTime")
VALID_TYPES = ("service", "batch", "system", "sysbatch")
MAX_TRACKED_VERSIONS = 6
UPDATE_DESCRIPTION = "alloc is being updated due to job update"
STOP_DESCRIPTION = "alloc not needed due to job update"


def multierror(errors: list) -> str:
    head = "1 error occurred:" if len(errors) == 1 else f"{len(errors)} errors occurred:"
    return head + "\n" + "".join(f"\t* {error}\n" for error in errors) + "\n"


def decode_body(text: str) -> dict:
    """Go's decodeBody: empty -> 400 `Request body is empty`, syntax errors -> 400 with Go's text (§0.2)."""
    if text == "":
        raise HttpError(400, "Request body is empty")
    if not text.strip():
        raise HttpError(400, "EOF")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise HttpError(400, go_json_error(text, err)) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HttpError(400, "json: cannot unmarshal array into Go value of type api.JobRegisterRequest")
    return data


def field_of(body: dict, name: str, default=None):
    """Case-insensitive key lookup, like encoding/json."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return default


class JobStore:
    """Versions, submissions and evaluations; current jobs live in `emulator.jobs` (shared with readers.py)."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.versions: dict = {}      # (namespace, id) -> [job, ...] oldest first
        self.submissions: dict = {}   # (namespace, id, version) -> submission
        self.evals: dict = {}         # eval ID -> evaluation (full, zero fields included)
        self.scaling_events: dict = {}  # (namespace, id, group) -> [ScalingEvent], newest first
        self.evals_index = 1
        self.purge_index = 0          # the `jobs` table index of the last purge (job list index, §4.2)

    def current(self, namespace: str, job_id: str):
        entry = self.emulator.jobs.get((namespace, job_id))
        return entry["doc"] if entry else None

    def store_version(self, job: dict, submission) -> None:
        key = (job["Namespace"], job["ID"])
        if key not in self.versions and key in self.emulator.jobs:  # a scenario job: its document is version 0
            self.versions[key] = [self.emulator.jobs[key]["doc"]]
        self.emulator.jobs[key] = {"doc": job, "spec": None, "registered": True}
        history = self.versions.setdefault(key, [])
        history.append(job)
        del history[:-MAX_TRACKED_VERSIONS]
        if submission is None and job["Version"] > 0:
            submission = self.submissions.get((*key, 0))   # reference §2.3 n: the incoming Version is 0 via HTTP
        if submission is not None:
            stored = dict(submission, Namespace=job["Namespace"], JobID=job["ID"], Version=job["Version"],
                          JobModifyIndex=job["JobModifyIndex"])
            self.submissions[(*key, job["Version"])] = stored

    def purge(self, namespace: str, job_id: str) -> None:
        self.emulator.jobs.pop((namespace, job_id), None)
        self.purge_index = self.emulator.index
        self.versions.pop((namespace, job_id), None)
        for key in [key for key in self.submissions if key[:2] == (namespace, job_id)]:
            del self.submissions[key]

    def new_eval(self, job: dict, triggered_by: str, index: int, *, eval_type=None, priority=None) -> dict:
        now = now_ns()
        evaluation = {"ID": new_id(), "Namespace": job["Namespace"], "Priority": priority or job["Priority"] or 50,
                      "Type": eval_type or job["Type"], "TriggeredBy": triggered_by, "JobID": job["ID"],
                      "JobModifyIndex": job["JobModifyIndex"], "Status": "pending", "StatusDescription": "",
                      "FailedTGAllocs": None, "BlockedEval": "", "PreviousEval": "", "QueuedAllocations": None,
                      "SnapshotIndex": 0, "CreateIndex": index, "ModifyIndex": index, "CreateTime": now,
                      "ModifyTime": now}
        self.evals[evaluation["ID"]] = evaluation
        self.evals_index = index
        return evaluation

    def job_evals(self, namespace: str, job_id: str) -> list:
        return [ev for ev in self.evals.values() if ev["Namespace"] == namespace and ev["JobID"] == job_id]

    def evals_by_job_prefix(self, namespace: str, job_id: str) -> list:
        """1.10.x `EvalsByJob`: a case-insensitive prefix match on the job ID (regression #24974, version table)."""
        lowered = job_id.lower()
        return [ev for ev in self.evals.values()
                if ev["Namespace"] == namespace and ev["JobID"].lower().startswith(lowered)]


def eval_json(evaluation: dict) -> dict:
    """Evaluations are encoded with every zero field omitted (reference §0.4, §8.1)."""
    return {key: value for key, value in evaluation.items() if value not in (None, "", 0, {}, [], False)}


class Jobs:
    def __init__(self, api):
        self.api = api
        self.emulator = api.emulator
        self.store = JobStore(self.emulator)
        self.scheduler = Scheduler(self.emulator)
        self.deployments = Deployments(self)
        self.deployment_api = DeploymentApi(self, self.deployments)
        self.job_list = JobList(self)
        self.failure_evaluated: set = set()   # allocations whose failure made an `alloc-failure` eval
        self.emulator.on_alloc_failed = self.alloc_failed

    # --- routing (reference §0.1) ----------------------------------------------------------------
    async def dispatch(self, request):
        path = request.path
        if path == "/v1/jobs/parse":
            return await self.parse(request)
        if path == "/v1/jobs" and request.method == "GET":
            return await self.job_list.list(request)
        if path == "/v1/jobs":
            if request.method not in ("PUT", "POST"):
                raise HttpError(405, "Invalid method")
            return await self.register(request, None)
        if path.startswith("/v1/evaluation/"):
            return await self.evaluation(request, path[len("/v1/evaluation/"):])
        if path == "/v1/deployments" or path.startswith("/v1/deployment/"):
            return await self.deployment_api.dispatch(request, path)
        if not path.startswith("/v1/job/"):
            return None
        tail = path[len("/v1/job/"):]
        for suffix in JOB_SUFFIXES:
            if tail.endswith("/" + suffix):
                return await self.job_action(request, tail[:-len(suffix) - 1], suffix)
        if request.method == "GET":
            return None  # readers.py
        if request.method in ("PUT", "POST"):
            return await self.register(request, tail)
        if request.method == "DELETE":
            return await self.deregister(request, tail)
        raise HttpError(405, "Invalid method")

    async def job_action(self, request, job_id: str, suffix: str):
        if suffix not in SUPPORTED_SUFFIXES:
            raise HttpError(501, f"the emulator does not implement /v1/job/:id/{suffix}")
        if suffix == "plan":
            return await self.plan(request, job_id)
        if suffix == "revert":
            return await jobops.revert(self, request, job_id)
        if suffix == "scale":
            return await jobops.scale(self, request, job_id)
        if suffix == "submission":
            return self.submission(request, job_id)
        if suffix == "versions":
            return self.versions(request, job_id)
        if suffix == "summary":
            return self.summary(request, job_id)
        if suffix in ("deployments", "deployment"):
            return await self.deployment_api.job_deployments(request, job_id, latest_only=suffix == "deployment")
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        if suffix == "allocations":
            return await self.job_allocations(request, job_id)
        return self.job_evaluations(request, job_id)

    def _token(self, request):
        self.api.check_region(request)
        return self.api.authenticate(request)

    @staticmethod
    def _namespace(request) -> str:
        return request.query.get("namespace", "") or "default"

    # --- POST /v1/jobs/parse (§1.1) ----------------------------------------------------------------
    async def parse(self, request):
        if request.method not in ("PUT", "POST"):
            raise HttpError(405, "Invalid method")
        token = self._token(request)
        namespace = self._namespace(request)
        if token is not None and not self._allows(token, namespace, ("parse-job", "submit-job")):
            raise HttpError(403, acl_mod.PERMISSION_DENIED)
        body = decode_body(await request.text())
        job_hcl = field_of(body, "JobHCL") or ""
        if job_hcl == "":
            raise HttpError(400, "Job spec is empty")
        try:
            job = jobspec.parse_job(job_hcl, field_of(body, "Variables") or "")
        except jobspec.JobspecError as err:
            raise HttpError(400, f"Failed to parse job: {err}") from err
        if field_of(body, "Canonicalize"):
            job = jobspec.canonicalize(job)
        return json_response(request, None, raw=jobspec.dumps(jobspec.with_all_fields(job)).encode())

    def _allows(self, token, namespace: str, capabilities) -> bool:
        if namespace == "*":
            return any(token.allows_in_any(self.emulator.namespaces, cap) for cap in capabilities)
        return any(token.allows(namespace, cap) for cap in capabilities)

    # --- register (§2) ----------------------------------------------------------------------------
    async def register(self, request, url_id):
        body = decode_body(await request.text())
        job_in = field_of(body, "Job")
        if not isinstance(job_in, dict):
            raise HttpError(400, "Job must be specified")
        job_in = jobspec.normalise_keys(job_in)
        if job_in.get("ID") is None:
            raise HttpError(400, "Job ID hasn't been provided")
        if url_id is not None and job_in["ID"] != url_id:
            raise HttpError(400, "Job ID does not match name")
        priority = field_of(body, "EvalPriority") or 0
        if priority and not 1 <= priority <= 100:
            raise HttpError(400, "Eval priority must be between 1 and 100 inclusively")
        token = self._token(request)
        job = self.server_job(request, body, job_in, token)
        self.validate(job)
        self.api.require(token, job["Namespace"], "submit-job")
        existing = self.store.current(job["Namespace"], job["ID"])
        self.enforce_index(body, existing)
        self.check_transition(existing, job)
        if field_of(body, "PreserveCounts") and existing is not None:
            preserve_counts(existing, job)
        submission = canonical_submission(field_of(body, "Submission"))
        result = self.write_job(job, existing, submission, "job-register", priority)
        headers = {"X-Nomad-Index": str(result["Index"])}
        return json_response(request, result, headers=headers)

    def server_job(self, request, body: dict, job_in: dict, token) -> dict:
        """api.Job -> the stored job: SDK canonicalisation, namespace/region rules (§0.6), server defaults."""
        job = jobspec.with_all_fields(jobspec.canonicalize(job_in))
        namespace = request.query.get("namespace") or field_of(body, "Namespace") or job.get("Namespace") or "default"
        job["Namespace"] = namespace
        region = field_of(body, "Region") or request.query.get("region") or job.get("Region")
        job["Region"] = self.emulator.region if region in (None, "", "global") else region
        if job["Region"] != self.emulator.region:
            raise HttpError(500, "No path to region", rpc=True)  # the single-region emulator cannot forward
        job["Datacenters"] = job.get("Datacenters") or ["*"]
        job["NodePool"] = job.get("NodePool") or "default"
        job["Priority"] = job["Priority"] or 50  # the server's job_default_priority for 0 (hooks :241-250)
        update = job.get("Update") or {}
        job["Update"] = {**dict.fromkeys(jobspec.DEFAULT_UPDATE, 0), "HealthCheck": "", "AutoRevert": False,
                         "AutoPromote": False, "Stagger": update.get("Stagger", 0) if update.get("MaxParallel") else 0,
                         "MaxParallel": update.get("MaxParallel", 0) if update.get("MaxParallel") else 0}
        job.pop("Migrate", None)
        job.pop("Reschedule", None)
        for key in ("Affinities", "Spreads", "Multiregion", "Periodic", "ParameterizedJob", "Payload", "UI",
                    "VersionTag"):
            job.setdefault(key, None)
        job.update({"Dispatched": False, "DispatchIdempotencyToken": "", "ParentID": job.get("ParentID") or "",
                    "NomadTokenID": self.token_accessor(token), "SubmitTime": 0})
        return job

    def token_accessor(self, token) -> str:
        if token is None:
            return ""
        return str(uuid.uuid5(uuid.NAMESPACE_OID, "nomad-emulator-accessor:" + token.secret))

    def validate(self, job: dict) -> None:
        """Admission validators in Nomad's order (namespace, node pool, Job.Validate, priority) for the fields
        the emulator maps (§2.3 c, §2.4); 500 with the multierror text."""
        errors = []
        if job["Namespace"] not in self.emulator.namespaces:
            errors.append(f'job "{job["ID"]}" is in nonexistent namespace "{job["Namespace"]}"')
        if job["NodePool"] not in self.node_pools():
            errors.append(f'job "{job["ID"]}" is in nonexistent node pool "{job["NodePool"]}"')
        errors.extend(job_validation(job))
        if not 1 <= job["Priority"] <= 100:
            errors.append("job priority must be between [1, 100]")
        if errors:
            raise HttpError(500, multierror(errors), rpc=True)

    def node_pools(self) -> set:
        """Nomad's built-in pools plus every pool a scenario node names."""
        return {"default", "all"} | {node.get("NodePool", "default") for node in self.emulator.nodes}

    def enforce_index(self, body: dict, existing) -> None:
        """EnforceIndex / JobModifyIndex check-and-set (§2.3 g), 500."""
        if not field_of(body, "EnforceIndex"):
            return
        sent = int(field_of(body, "JobModifyIndex") or 0)
        if existing is not None and sent == 0:
            raise HttpError(500, "Enforcing job modify index 0: job already exists", rpc=True)
        if existing is not None and sent != existing["JobModifyIndex"]:
            raise HttpError(500, f"Enforcing job modify index {sent}: job exists with conflicting job modify "
                                 f"index: {existing['JobModifyIndex']}", rpc=True)
        if existing is None and sent != 0:
            raise HttpError(500, f"Enforcing job modify index {sent}: job does not exist", rpc=True)

    @staticmethod
    def check_transition(existing, job: dict) -> None:
        if existing is not None and existing["Type"] != job["Type"]:
            raise HttpError(500, f'cannot update job from type "{existing["Type"]}" to "{job["Type"]}"', rpc=True)

    def write_job(self, job: dict, existing, submission, triggered_by: str, eval_priority: int = 0) -> dict:
        """One raft write of job (if its spec changed) and eval, then the scheduler (§2.3 l, §2.6)."""
        changed = existing is None or spec_changed(existing, job)
        index = self.emulator.bump()
        if changed:
            job["SubmitTime"] = now_ns()
            job["Version"] = 0 if existing is None else existing["Version"] + 1
            job["CreateIndex"] = index if existing is None else existing["CreateIndex"]
            job["ModifyIndex"] = job["JobModifyIndex"] = index
            job["Status"] = "pending"
            job["StatusDescription"] = ""
            job["Stable"] = False
            self.store.store_version(job, submission)
        current = job if changed else existing
        evaluation = self.store.new_eval(current, triggered_by, index, priority=eval_priority)
        self.process_eval(evaluation, current)
        return {"EvalID": evaluation["ID"], "EvalCreateIndex": index, "JobModifyIndex": current["JobModifyIndex"],
                "Warnings": "", "Index": index, "LastContact": 0, "KnownLeader": False, "NextToken": ""}

    # --- the scheduler's side of an evaluation (§8.1) --------------------------------------------------
    def process_eval(self, evaluation: dict, job: dict, *, retry_blocked: bool = True) -> None:
        """Plan and apply; failures make a `blocked` eval, which is retried when capacity is freed."""
        self.cancel_blocked(job)
        rescheduling = self.reschedule_decision(job, evaluation)
        plans = self.scheduler.plan(job, rescheduling)
        shaped = self.deployments.shape(job, plans, evaluation, rescheduling)
        self.apply_plan(job, plans, evaluation)
        self.deployments.after_apply(job, shaped, plans, evaluation)
        self.create_followups(job, rescheduling.later, evaluation)
        failed = {name: plan.failed for name, plan in plans.items() if plan.failed}
        queued = {name: plan.queued for name, plan in plans.items()}
        index = self.emulator.bump()
        evaluation.update({"Status": "complete", "ModifyIndex": index, "ModifyTime": now_ns(),
                           "SnapshotIndex": evaluation["CreateIndex"], "QueuedAllocations": queued or None})
        if failed:
            evaluation["FailedTGAllocs"] = failed
            blocked = self.store.new_eval(job, "queued-allocs", index)
            blocked.update({"Status": "blocked", "PreviousEval": evaluation["ID"],
                            "StatusDescription": "created to place remaining allocations",
                            "QueuedAllocations": {name: count for name, count in queued.items() if count}})
            evaluation["BlockedEval"] = blocked["ID"]
        self.store.evals_index = index
        job["Status"] = self.job_status(job)
        freed = any(plan.stop or plan.destructive for plan in plans.values())
        if freed and retry_blocked:
            self.unblock(exclude=job)

    def cancel_blocked(self, job: dict) -> None:
        """A newer evaluation of a job supersedes its blocked one (blocked_evals.go `Untrack`)."""
        for evaluation in self.store.job_evals(job["Namespace"], job["ID"]):
            if evaluation["Status"] == "blocked":
                index = self.emulator.bump()
                evaluation.update({"Status": "canceled", "ModifyIndex": index, "ModifyTime": now_ns()})
                self.store.evals_index = index

    def unblock(self, exclude: dict) -> None:
        """Capacity was freed: blocked evaluations of other jobs run again (a new blocked eval if still short)."""
        blocked = [evaluation for evaluation in self.store.evals.values() if evaluation["Status"] == "blocked"
                   and (evaluation["Namespace"], evaluation["JobID"]) != (exclude["Namespace"], exclude["ID"])]
        for evaluation in sorted(blocked, key=lambda item: item["CreateIndex"]):
            job = self.store.current(evaluation["Namespace"], evaluation["JobID"])
            if job is None or evaluation["Status"] != "blocked":
                continue
            evaluation["Status"] = "pending"
            self.process_eval(evaluation, job, retry_blocked=False)

    # --- rescheduling of failed allocations (reschedule.py) ------------------------------------------------
    def reschedule_decision(self, job: dict, evaluation: dict) -> reschedule_mod.RescheduleDecision:
        failed = [alloc for alloc in self.emulator.allocs.values()
                  if alloc.namespace == job["Namespace"] and alloc.job_id == job["ID"] and reschedule_mod.awaiting(alloc)]
        if job.get("Stop") or not failed:
            return reschedule_mod.RescheduleDecision(kept=failed)
        deployment = self.deployments.latest(job["Namespace"], job["ID"])
        return reschedule_mod.decide(failed, deployment, evaluation["ID"])

    def alloc_failed(self, alloc: Allocation) -> None:
        """A client reports a failed allocation: the server creates an `alloc-failure` evaluation (jobs the
        emulator registered only; scenario jobs keep their fixed allocations)."""
        entry = self.emulator.jobs.get((alloc.namespace, alloc.job_id))
        if entry is None or not entry.get("registered") or alloc.id in self.failure_evaluated:
            return
        self.failure_evaluated.add(alloc.id)
        asyncio.get_running_loop().call_soon(self.evaluate_failure, alloc)

    def evaluate_failure(self, alloc: Allocation) -> None:
        job = self.store.current(alloc.namespace, alloc.job_id)
        if job is None or job.get("Stop") or not reschedule_mod.awaiting(alloc):
            return
        evaluation = self.store.new_eval(job, "alloc-failure", self.emulator.bump())
        self.process_eval(evaluation, job)

    def create_followups(self, job: dict, later: list, evaluation: dict) -> None:
        """Reschedule later: one pending follow-up eval per failed allocation, run at its reschedule time."""
        loop = asyncio.get_running_loop()
        for alloc, when in later:
            followup = self.store.new_eval(job, "alloc-failure", self.emulator.bump())
            followup.update({"StatusDescription": reschedule_mod.FOLLOWUP_DESCRIPTION, "WaitUntil": rfc3339(when),
                             "PreviousEval": evaluation["ID"]})
            alloc.followup_eval_id = followup["ID"]
            self.emulator.touch(alloc)
            loop.call_later(max(0.0, (when - now_ns()) / 1e9), self.run_followup, followup)

    def run_followup(self, evaluation: dict) -> None:
        job = self.store.current(evaluation["Namespace"], evaluation["JobID"])
        if evaluation["Status"] != "pending":
            return
        if job is None or job.get("Stop"):
            evaluation.update({"Status": "complete", "ModifyIndex": self.emulator.bump(), "ModifyTime": now_ns()})
            return
        self.process_eval(evaluation, job)

    def apply_plan(self, job: dict, plans: dict, evaluation: dict) -> None:
        for plan in plans.values():
            for alloc in plan.stop:
                self.stop_alloc(alloc, STOP_DESCRIPTION)
            for alloc in plan.destructive:
                self.stop_alloc(alloc, UPDATE_DESCRIPTION)
            for alloc in plan.reschedule:  # already failed on the client: only the server side changes
                alloc.desired_status = "stop"
                alloc.desired_description = reschedule_mod.RESCHEDULED_DESCRIPTION
        create_index = self.emulator.bump() if any(plan.place for plan in plans.values()) else None
        groups = {group["Name"]: group for group in job["TaskGroups"]}
        for name, plan in plans.items():
            for index_in_group, node, previous in plan.place:
                alloc = self.new_alloc(job, groups[name], index_in_group, node, create_index, evaluation["ID"])
                if previous is not None:
                    alloc.previous_allocation = previous.id
                    previous.next_allocation = alloc.id
                    if previous in plan.reschedule:
                        alloc.reschedule_tracker = reschedule_mod.tracker_for_replacement(previous, alloc.create_time)
                    self.emulator.touch(previous)
                self.emulator.add_alloc(alloc)
                self.emulator.allocs_index = create_index
                self.start_alloc(alloc)
            for alloc in plan.in_place:
                alloc.job, alloc.group = job, groups[name]  # it now runs the new version
                self.emulator.touch(alloc)

    def stop_alloc(self, alloc: Allocation, description: str) -> None:
        alloc.desired_status = "stop"
        alloc.desired_description = description
        self.emulator.touch(alloc)
        supervisor = self.emulator.supervisor
        if alloc.virtual:
            supervisor.stop_virtual(alloc)
        else:
            supervisor.spawn(supervisor.stop_allocation(alloc))

    def virtual_jobs(self) -> bool:
        return str(self.emulator.scenario.get("job_allocations", "process")) == "virtual"

    def new_alloc(self, job: dict, group: dict, index_in_group: int, node: dict, create_index: int,
                  eval_id: str) -> Allocation:
        group_spec = scenario_group(group)
        alloc = Allocation(alloc_id=new_id(), job=job, group=group, index_in_group=index_in_group,
                           namespace=job["Namespace"], node=node,
                           tasks=[task_from_spec(spec) for spec in group_spec["tasks"]], create_index=create_index,
                           virtual=self.virtual_jobs(), eval_id=eval_id, services=group_spec["services"])
        alloc.group_spec = group_spec
        return alloc

    def start_alloc(self, alloc: Allocation) -> None:
        if not alloc.virtual:
            self.emulator.supervisor.start_allocation(alloc)
            return
        now = now_ns()
        for task in alloc.tasks.values():
            task.state, task.started, task.started_at = "running", True, now
            task.add_event("Received", "Task received by client")
            task.add_event("Started", "Task started by client")
        alloc.client_status = "running"
        alloc.client_description = "Tasks are running"
        if alloc.job["Type"] == "service":
            alloc.deployment_status = {"Healthy": True, "Timestamp": None, "Canary": False,
                                       "ModifyIndex": alloc.create_index}

    def job_status(self, job: dict) -> str:
        """pending / running / dead (state_store.go job status, §4.1), from the allocations the emulator knows."""
        live = self.scheduler.live_allocs(job["Namespace"], job["ID"])
        if live and not job.get("Stop"):
            return "running"
        if job.get("Stop"):
            return "dead"
        any_alloc = any(alloc.namespace == job["Namespace"] and alloc.job_id == job["ID"]
                        for alloc in self.emulator.allocs.values())
        return "dead" if any_alloc and job["Type"] == "batch" else "pending"

    # --- plan (§3) ---------------------------------------------------------------------------------
    async def plan(self, request, url_id: str):
        if request.method not in ("PUT", "POST"):
            raise HttpError(405, "Invalid method")
        body = decode_body(await request.text())
        job_in = field_of(body, "Job")
        if not isinstance(job_in, dict):
            raise HttpError(400, "Job must be specified")
        job_in = jobspec.normalise_keys(job_in)
        if job_in.get("ID") is None:
            raise HttpError(400, "Job must have a valid ID")
        if job_in["ID"] != url_id:
            raise HttpError(400, "Job ID does not match")
        token = self._token(request)
        job = self.server_job(request, body, job_in, token)
        job["NomadTokenID"] = ""  # plan never sets it (§3.5)
        self.validate(job)
        self.api.require(token, job["Namespace"], "submit-job")
        existing = self.store.current(job["Namespace"], job["ID"])
        index = existing["JobModifyIndex"] if existing else 0
        planned = self.planned_job(existing, job)
        plans = self.deployments.preview(planned, self.scheduler.plan(planned))
        desired = {name: plan.desired_updates() for name, plan in plans.items()}
        diff = None
        if field_of(body, "Diff"):
            diff = jobdiff.job_diff(existing, job)
            jobdiff.annotate(diff, desired)
        failed = {name: plan.failed for name, plan in plans.items() if plan.failed} or None
        result = {"Annotations": {"DesiredTGUpdates": desired, "PreemptedAllocs": None}, "FailedTGAllocs": failed,
                  "JobModifyIndex": index, "CreatedEvals": None, "Diff": diff, "NextPeriodicLaunch": None,
                  "Warnings": "", "Index": index}
        return json_response(request, result, headers={"X-Nomad-Index": str(index)})

    @staticmethod
    def planned_job(existing, job: dict) -> dict:
        planned = copy.deepcopy(job)
        if existing is None:
            planned["JobModifyIndex"] = 100
        elif spec_changed(existing, job):
            planned["JobModifyIndex"] = existing["JobModifyIndex"] + 1
        else:
            planned["JobModifyIndex"] = existing["JobModifyIndex"]
        return planned

    # --- stop / purge (§5) ---------------------------------------------------------------------------
    async def deregister(self, request, job_id: str):
        purge = self._bool_param(request, "purge")
        self._bool_param(request, "global")
        token = self._token(request)
        namespace = self._namespace(request)
        if not job_id:
            raise HttpError(500, "missing job ID for deregistering", rpc=True)
        self.api.require(token, namespace, "submit-job")
        existing = self.store.current(namespace, job_id)
        if existing is None:
            zero = {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0, "VolumeEvalID": "", "VolumeEvalIndex": 0,
                    "Index": 0, "LastContact": 0, "KnownLeader": False, "NextToken": ""}
            return json_response(request, zero, headers={"X-Nomad-Index": "0"})
        index = self.emulator.bump()
        stopped = dict(copy.deepcopy(existing), Stop=True)
        if purge:
            self.store.purge(namespace, job_id)
            self.complete_pending_evals(namespace, job_id)
        else:
            stopped.update({"SubmitTime": now_ns(), "Version": existing["Version"] + 1, "ModifyIndex": index,
                            "JobModifyIndex": index})
            self.store.store_version(stopped, self.store.submissions.get((namespace, job_id, existing["Version"])))
        evaluation = self.store.new_eval(stopped, "job-deregister", index, eval_type="service")
        self.process_eval(evaluation, stopped)
        if purge:
            self.delete_allocs(namespace, job_id)
            self.deployments.purge_job(namespace, job_id)
        result = {"EvalID": evaluation["ID"], "EvalCreateIndex": index, "JobModifyIndex": index, "VolumeEvalID": "",
                  "VolumeEvalIndex": 0, "Index": index, "LastContact": 0, "KnownLeader": False, "NextToken": ""}
        return json_response(request, result, headers={"X-Nomad-Index": str(index)})

    def delete_allocs(self, namespace: str, job_id: str) -> None:
        """Purge deletes the job's allocations from the state store at 1.10.5 (§5.2; after their stop)."""
        for alloc in [alloc for alloc in self.emulator.allocs.values()
                      if alloc.namespace == namespace and alloc.job_id == job_id]:
            self.emulator.remove_alloc(alloc)

    def complete_pending_evals(self, namespace: str, job_id: str) -> None:
        for evaluation in self.store.job_evals(namespace, job_id):
            if evaluation["Status"] in ("pending", "blocked"):
                evaluation.update({"Status": "complete" if evaluation["Status"] == "pending" else "canceled",
                                   "StatusDescription": f"job {job_id} deleted"})

    @staticmethod
    def _bool_param(request, name: str) -> bool:
        from .nomadtime import GoParseBoolError, parse_go_bool
        if name not in request.query:
            return False
        value = request.query[name]
        try:
            return parse_go_bool(value)
        except GoParseBoolError as err:
            raise HttpError(500, f'Failed to parse value of "{name}" ({value}) as a bool: {err}') from err

    # --- reads (§4) ----------------------------------------------------------------------------------
    async def block(self, request, current_index) -> None:
        """Blocking queries (`index`, `wait`) on the emulator's change event, like the allocation readers."""
        from .server import QueryOptions  # server.py imports this module
        await self.api.block(QueryOptions(request), current_index)

    def _read_start(self, request, job_id: str):
        token = self._token(request)
        namespace = self._namespace(request)
        self.api.require(token, namespace, "read-job")
        return namespace

    def versions(self, request, job_id: str):
        namespace = self._read_start(request, job_id)
        diffs = self._bool_param(request, "diffs")
        history = list(reversed(self.store.versions.get((namespace, job_id), [])))
        if not history:
            raise HttpError(404, "job versions not found", self.api.read_meta(self.emulator.index))
        index = max(version["ModifyIndex"] for version in history)
        result = {"Versions": history, "Diffs": None, "Index": index, "LastContact": 0, "KnownLeader": False,
                  "NextToken": ""}
        if diffs:
            result["Diffs"] = [jobdiff.job_diff(older, newer) for newer, older in zip(history, history[1:])] or None
        return json_response(request, result, headers=self.api.read_meta(index))

    def summary(self, request, job_id: str):
        """§4.5 (no method check): per-group allocation counts by client status, queued from blocked evals."""
        namespace = self._read_start(request, job_id)
        job = self.store.current(namespace, job_id)
        if job is None:
            raise HttpError(404, "job not found", self.api.read_meta(self.emulator.index))
        body = self.job_summary(job)
        return json_response(request, body, headers=self.api.read_meta(body["ModifyIndex"]))

    def job_summary(self, job: dict) -> dict:
        """The `JobSummary` of a job (§4.5), also embedded in the job list stubs (§4.2)."""
        namespace, job_id = job["Namespace"], job["ID"]
        counts = {group["Name"]: dict.fromkeys(("Queued", "Complete", "Failed", "Running", "Starting", "Lost",
                                                "Unknown"), 0) for group in job["TaskGroups"]}
        modify_index = job["ModifyIndex"]
        for alloc in self.emulator.allocs.values():
            if alloc.namespace != namespace or alloc.job_id != job_id or alloc.task_group not in counts:
                continue
            status = {"pending": "Starting"}.get(alloc.client_status, alloc.client_status.capitalize())
            if status in counts[alloc.task_group]:
                counts[alloc.task_group][status] += 1
            modify_index = max(modify_index, alloc.modify_index)
        for evaluation in self.store.job_evals(namespace, job_id):
            if evaluation["Status"] == "blocked":
                for group, queued in (evaluation.get("QueuedAllocations") or {}).items():
                    if group in counts:
                        counts[group]["Queued"] += queued
        return {"JobID": job_id, "Namespace": namespace, "Summary": counts,
                "Children": {"Pending": 0, "Running": 0, "Dead": 0}, "CreateIndex": job["CreateIndex"],
                "ModifyIndex": modify_index}

    def submission(self, request, job_id: str):
        text = request.query.get("version", "")
        if not text.isdigit():
            raise HttpError(400, "Unable to parse job submission version parameter")
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        namespace = self._read_start(request, job_id)
        found = self.store.submissions.get((namespace, job_id, int(text)))
        if found is None:
            raise HttpError(404, "job source not found", self.api.read_meta(0))
        return json_response(request, found, headers=self.api.read_meta(found["JobModifyIndex"]))

    async def job_allocations(self, request, job_id: str):
        namespace = self._read_start(request, job_id)
        await self.block(request, lambda: self.emulator.allocs_index)
        stubs = [alloc.stub() for alloc in self.emulator.allocs.values()
                 if alloc.namespace == namespace and alloc.job_id == job_id]
        stubs.sort(key=lambda stub: (stub["CreateIndex"], stub["ID"]))
        return json_response(request, stubs, headers=self.api.read_meta(self.emulator.allocs_index))

    def job_evaluations(self, request, job_id: str):
        namespace = self._read_start(request, job_id)
        evals = [eval_json(ev) for ev in self.store.evals_by_job_prefix(namespace, job_id)]
        return json_response(request, evals, headers=self.api.read_meta(self.store.evals_index))

    # --- /v1/evaluation/:id (§8.1) ----------------------------------------------------------------------
    async def evaluation(self, request, tail: str):
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        eval_id, _slash, action = tail.partition("/")
        if action not in ("", "allocations"):
            raise HttpError(404, "resource not found")
        token = self._token(request)
        self.api.require(token, self._namespace(request), "read-job")
        evaluation = self.store.evals.get(eval_id)
        if evaluation is None:
            raise HttpError(404, "eval not found", self.api.read_meta(self.store.evals_index))
        self.api.require(token, evaluation["Namespace"], "read-job")
        await self.block(request, lambda: evaluation["ModifyIndex"])
        headers = self.api.read_meta(evaluation["ModifyIndex"])
        if action == "allocations":
            stubs = [alloc.stub() for alloc in self.emulator.allocs.values() if alloc.eval_id == eval_id]
            return json_response(request, stubs, headers=headers)
        return json_response(request, eval_json(evaluation), headers=headers)


# --- helpers --------------------------------------------------------------------------------------------
def job_validation(job: dict) -> list:
    """Job.Validate (nomad/structs/structs.go, §2.4) for the fields the emulator maps."""
    errors = []
    if not job["ID"]:
        errors.append("Missing job ID")
    elif " " in job["ID"]:
        errors.append("Job ID contains a space")
    if job["Type"] not in VALID_TYPES:
        errors.append(f'Invalid job type: "{job["Type"]}"')
    if not job.get("TaskGroups"):
        errors.append("Missing job task groups")
    for group in job.get("TaskGroups") or ():
        group_errors = group_validation(job, group)
        if group_errors and group_errors[0].startswith("Job task group"):
            errors.append(group_errors.pop(0))
        if group_errors:
            errors.append(f"Task group {group['Name']} validation failed: {multierror(group_errors)}")
    return errors


def group_validation(job: dict, group: dict) -> list:
    errors = []
    if job["Type"] == "system" and group["Count"] > 1:
        errors.append(f"Job task group {group['Name']} has count {group['Count']}. Count cannot exceed 1 with "
                      "system scheduler")
    if group["Count"] < 0:
        errors.append("Task group count can't be negative")
    if not group.get("Tasks"):
        errors.append("Missing tasks for task group")
    if job["Type"] in ("batch", "sysbatch") and group.get("Update"):
        errors.append(f'Job type "{job["Type"]}" does not allow update block')
    if job["Type"] != "service" and group.get("Migrate"):
        errors.append(f'Job type "{job["Type"]}" does not allow migrate block')
    for task in group.get("Tasks") or ():
        if not task.get("Driver"):
            errors.append(f"Task {task['Name']} validation failed: {multierror(['Missing task driver'])}")
    return errors


def spec_changed(existing: dict, job: dict) -> bool:
    """Job.SpecChanged: deep equality after copying the bookkeeping fields (§2.7; NomadTokenID is compared)."""
    candidate = dict(job)
    for key in NOT_SPEC:
        candidate[key] = existing.get(key)
    return candidate != existing


def preserve_counts(existing: dict, job: dict) -> None:
    counts = {group["Name"]: group["Count"] for group in existing["TaskGroups"]}
    for group in job["TaskGroups"]:
        if group["Name"] in counts:
            group["Count"] = counts[group["Name"]]


def canonical_submission(submission):
    if not isinstance(submission, dict) or not field_of(submission, "Source"):
        return None
    flags = field_of(submission, "VariableFlags") or None
    return {"Source": field_of(submission, "Source"), "Format": field_of(submission, "Format") or "",
            "VariableFlags": flags, "Variables": field_of(submission, "Variables") or ""}


def scenario_group(group: dict) -> dict:
    """The group in the scenario format, so that the allocation machinery (stop's replacement) can rebuild it."""
    tasks = []
    for spec in group["Tasks"]:
        config = spec.get("Config") or {}
        command = [str(config.get("command", "/bin/sh"))] + [str(arg) for arg in config.get("args") or ()]
        tasks.append({"name": spec["Name"], "command": command, "env": dict(spec.get("Env") or {}),
                      "kill_timeout": (spec.get("KillTimeout") or 5_000_000_000) / 1e9})
    services = [{"name": service.get("Name", ""), "port": 0, "tags": list(service.get("Tags") or ()),
                 "checks": scenario_checks(service)} for service in group.get("Services") or ()]
    return {"name": group["Name"], "count": group["Count"], "tasks": tasks, "services": services}


def scenario_checks(service: dict) -> list:
    """The service's checks that checks.py can run: script checks, and http/tcp checks on a numeric port."""
    found = []
    for check in service.get("Checks") or ():
        kind = check.get("Type") or ""
        spec = {"name": check.get("Name") or f"service: \"{service.get('Name', '')}\" check", "type": kind,
                "interval": (check.get("Interval") or 10_000_000_000) / 1e9,
                "timeout": (check.get("Timeout") or 2_000_000_000) / 1e9, "path": check.get("Path") or "/"}
        if check.get("TaskName"):
            spec["task"] = str(check["TaskName"])
        port = str(check.get("PortLabel") or service.get("PortLabel") or "")
        if kind == "script" and check.get("Command"):
            spec["command"] = [str(check["Command"])] + [str(arg) for arg in check.get("Args") or ()]
        elif kind in ("http", "tcp") and port.isdigit():
            spec["port"] = int(port)
        else:
            continue
        found.append(spec)
    return found
