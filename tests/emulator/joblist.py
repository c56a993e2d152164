# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""`GET /v1/jobs` as Nomad 1.10 serves it (reference nomad-jobs-behaviour.md §4.2): `JobListStub`s with their
`JobSummary`, `meta`, `prefix`, `filter` on the full job, namespace `*`, `per_page`/`next_token`/`reverse`."""
from __future__ import annotations

from . import acl as acl_mod
from .deployments import parse_per_page
from .httpjson import HttpError, json_response

JOB_UINT_PATHS = ("CreateIndex", "ModifyIndex", "JobModifyIndex", "Version", "SubmitTime")


def job_stub(job: dict, summary: dict, status: str, with_meta: bool) -> dict:
    """`JobListStub` (structs.go:5235-5256); `Namespace`/`Meta` are always encoded (§0.4)."""
    return {"ID": job["ID"], "ParentID": job.get("ParentID", ""), "Name": job.get("Name", job["ID"]),
            "Namespace": job["Namespace"], "Datacenters": job.get("Datacenters"),
            "NodePool": job.get("NodePool", "default"), "Multiregion": job.get("Multiregion"),
            "Type": job.get("Type", "service"), "Priority": job.get("Priority", 50),
            "Periodic": bool(job.get("Periodic")), "ParameterizedJob": bool(job.get("ParameterizedJob")),
            "Stop": bool(job.get("Stop")), "Status": status, "StatusDescription": job.get("StatusDescription", ""),
            "JobSummary": summary, "CreateIndex": job.get("CreateIndex", 0), "ModifyIndex": job.get("ModifyIndex", 0),
            "JobModifyIndex": job.get("JobModifyIndex", 0), "SubmitTime": job.get("SubmitTime", 0),
            "Meta": (job.get("Meta") or {}) if with_meta else None}


def _compile_filter(text: str):
    if not text:
        return None
    from . import bexpr  # only needed with a filter
    try:
        return bexpr.compile_filter(text, map_paths=("Meta", "TaskGroups"), uint_paths=JOB_UINT_PATHS)
    except bexpr.FilterParseError as err:
        raise HttpError(400, f"failed to create result paginator: failed to read filter expression: {err}") from err


def _matches(matcher, job: dict) -> bool:
    from . import bexpr
    try:
        return matcher.evaluate(job)
    except bexpr.FilterEvaluationError as err:
        raise HttpError(400, f"failed to read result page: {err}") from err


class JobList:
    def __init__(self, jobs):
        self.jobs = jobs
        self.api = jobs.api
        self.emulator = jobs.emulator

    def readable_namespaces(self, token, namespace: str) -> list:
        """ACL `list-jobs`; with `*` in at least one namespace, and only those are listed (§4.2)."""
        if namespace != "*":
            self.api.require(token, namespace, "list-jobs")
            return [namespace]
        existing = list(self.emulator.namespaces)
        if token is None:
            return existing
        if not token.allows_in_any(list(existing) + ["*"], "list-jobs"):
            raise HttpError(403, acl_mod.PERMISSION_DENIED)
        return [ns for ns in existing if token.allows(ns, "list-jobs")]

    def table_index(self) -> int:
        """max(`jobs` table index, `job_summary` table index) (§4.2)."""
        index = self.jobs.store.purge_index
        for entry in self.emulator.jobs.values():
            index = max(index, entry["doc"].get("ModifyIndex", 0), self.jobs.job_summary(entry["doc"])["ModifyIndex"])
        return index or 1

    async def list(self, request):
        token = self.jobs._token(request)
        with_meta = self.jobs._bool_param(request, "meta")
        per_page = parse_per_page(request.query.get("per_page"))
        matcher = _compile_filter(request.query.get("filter", ""))
        namespace = self.jobs._namespace(request)
        readable = set(self.readable_namespaces(token, namespace))
        await self.jobs.block(request, self.table_index)
        prefix = request.query.get("prefix", "")
        reverse = request.query.get("reverse") == "true"
        ordered = sorted(self.emulator.jobs, reverse=reverse)
        start = request.query.get("next_token", "")
        page, next_token = [], ""
        for key in ordered:
            job = self.emulator.jobs[key]["doc"]
            token_text = f"{key[0]}.{key[1]}"
            if start and (token_text > start if reverse else token_text < start):
                continue
            if key[0] not in readable or not key[1].startswith(prefix):
                continue
            if matcher is not None and not _matches(matcher, job):
                continue
            if per_page and len(page) == per_page:
                next_token = token_text
                break
            page.append(job_stub(job, self.jobs.job_summary(job), self.jobs.job_status(job), with_meta))
        headers = self.api.read_meta(self.table_index())
        if next_token:
            headers["X-Nomad-NextToken"] = next_token
        return json_response(request, page, headers=headers)
