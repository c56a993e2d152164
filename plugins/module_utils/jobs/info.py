# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading jobs for nomad_job_info: one job by ID or a list (prefix, filter, namespace `*`), with the extras
asked for attached (`Versions`, `Submission`, `Deployments`, `Summary`), like `Checks` on allocations."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec import job_path, read_job

JOB_INFO_ARGUMENT_SPEC = dict(
    name=dict(type="str"),
    prefix=dict(type="str"),
    filter=dict(type="str"),
    versions=dict(type="bool", default=False),
    submission=dict(type="bool", default=False),
    deployments=dict(type="bool", default=False),
    summary=dict(type="bool", default=False),
    fields=dict(type="list", elements="str"),
)
JOB_INFO_MUTUALLY_EXCLUSIVE = [["name", "prefix"], ["name", "filter"]]
EXTRAS = ("versions", "submission", "deployments", "summary")


def list_jobs(client, namespace, prefix=None, bexpr=None):
    """Job stubs (JobListStub) of a namespace (or `*`), paginated, with Nomad's prefix and filter."""
    params = {"namespace": namespace}
    if prefix:
        params["prefix"] = prefix
    if bexpr:
        params["filter"] = bexpr
    return list(client.paginate("/v1/jobs", params))


def named_jobs(client, name, namespace):
    """The job called `name` as a one-element list (every namespace's with namespace `*`), [] when missing."""
    if namespace != "*":
        job = read_job(client, name, namespace)
        return [job] if job else []
    stubs = [stub for stub in list_jobs(client, "*", prefix=name) if stub.get("ID") == name]
    return [job for job in (read_job(client, name, stub.get("Namespace")) for stub in stubs) if job]


def _read_or_none(client, path, params):
    try:
        return client.read(path, params).data
    except NomadNotFoundError:
        return None


def submission_of(client, job):
    """The source Nomad stored with the job's current version (Source, Format, Variables, VariableFlags), or None."""
    params = {"namespace": job.get("Namespace") or "default", "version": job.get("Version") or 0}
    stored = _read_or_none(client, job_path(job["ID"]) + "/submission", params)
    if not stored:
        return None
    return {key: stored.get(key) for key in ("Source", "Format", "Variables", "VariableFlags", "Version")}


def attach_extras(client, jobs, wanted):
    """Add `Versions`, `Submission`, `Deployments`, `Summary` (per group counts) to each job as asked."""
    for job in jobs:
        params = {"namespace": job.get("Namespace") or "default"}
        path = job_path(job["ID"])
        if "versions" in wanted:
            job["Versions"] = (_read_or_none(client, path + "/versions", params) or {}).get("Versions") or []
        if "submission" in wanted:
            job["Submission"] = submission_of(client, job)
        if "deployments" in wanted:
            job["Deployments"] = _read_or_none(client, path + "/deployments", params) or []
        if "summary" in wanted:
            job["Summary"] = (_read_or_none(client, path + "/summary", params) or {}).get("Summary")
    return jobs
