# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What nomad_job does, step by step: parse, plan (idempotence and check mode), register, watch the rollout;
or stop/purge and watch the allocations end. Each function returns the result keys of the task."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec import (
    job_facts,
    job_namespace,
    job_of_request,
    nomad_warnings,
    plan_changes,
    plan_job,
    read_job,
    refuse_index_conflict,
    register_job,
    stop_job,
    with_preserved_counts,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.plan_render import render_plan
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.rollout import (
    Progress,
    RolloutFailed,
    watch_registration,
    watch_stopped,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import summarize


class WaitSettings:
    """`wait`, `wait_timeout`, `diagnose_lines` and where progress lines go."""

    def __init__(self, wait=True, timeout=600, diagnose_lines=20, report=None):
        self.wait = wait
        self.timeout = timeout
        self.diagnose_lines = diagnose_lines
        self.progress = Progress(report)


def plan_summary(plan):
    """The `plan` key: whether the diff changes the job, its type, the scheduler's per-group updates, failures."""
    diff = plan.get("Diff") or {}
    return dict(changed=plan_changes(plan), diff_type=diff.get("Type"), job_modify_index=plan.get("JobModifyIndex") or 0,
                desired_updates=(plan.get("Annotations") or {}).get("DesiredTGUpdates") or {},
                failed_groups=sorted(plan.get("FailedTGAllocs") or {}))


def deploy_job(client, request, option_namespace, check_mode=False, settings=None):
    """state=present: (result keys). Nothing is registered when the plan shows no change, or in check mode."""
    settings = settings or WaitSettings()
    job, submission = job_of_request(client, request, option_namespace or "default")
    namespace = job_namespace(job, option_namespace)
    job["Namespace"] = namespace
    if request.preserve_counts:
        job = with_preserved_counts(job, read_job(client, job["ID"], namespace))
    plan = plan_job(client, job, namespace)
    refuse_index_conflict(request.check_index, plan, job["ID"])
    result = dict(changed=plan_changes(plan), plan=plan_summary(plan), diff_text=render_plan(plan, job["ID"], job.get("Type")),
                  warnings_nomad=nomad_warnings(plan))
    if not result["changed"] or check_mode:
        result.update(job=job_facts(read_job(client, job["ID"], namespace) or job), eval_id=None, deployment=None, summary=[])
        return result
    answer = register_job(client, job, submission, namespace, request.check_index, request.preserve_counts)
    stored = read_job(client, job["ID"], namespace) or job
    result.update(job=job_facts(stored), eval_id=answer.get("EvalID") or None, deployment=None, summary=[],
                  warnings_nomad=nomad_warnings(plan, answer))
    if settings.wait:
        try:
            deployment, allocations = watch_registration(client, stored, answer.get("EvalID"), settings.timeout,
                                                         settings.diagnose_lines, settings.progress)
        except RolloutFailed as failure:
            failure.details.update(job=result["job"], eval_id=result["eval_id"])
            raise
        result.update(deployment=deployment, summary=summarize(allocations))
    return result


def remove_job(client, name, namespace, purge=False, check_mode=False, settings=None):
    """state=absent: stop (or purge) unless already stopped (or gone); idempotent."""
    settings = settings or WaitSettings()
    current = read_job(client, name, namespace)
    if current is None:
        return dict(changed=False, job=None, eval_id=None)
    changed = purge or not current.get("Stop")
    result = dict(changed=changed, job=job_facts(current), eval_id=None)
    if not changed or check_mode:
        return result
    answer = stop_job(client, name, namespace, purge=purge)
    result["eval_id"] = answer.get("EvalID") or None
    stored = read_job(client, name, namespace)
    result["job"] = job_facts(stored) if stored else None
    if settings.wait:
        watch_stopped(client, current, settings.timeout, settings.progress)
    return result
