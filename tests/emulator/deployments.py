# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Deployments of service jobs with an `update` block: the reconciler's rollout rules, the client's health
verdicts, the deployment watcher (auto-promote, progress deadline, fail early, auto-revert) and the endpoints.

Facts and texts: /work/shared/reference/nomad-deployments-nodes-behaviour.md (§ numbers below, Nomad 1.10.5).
The scheduler (scheduler.py) plans a job as if there were no deployment; `Deployments.shape` then replaces the
plan of every group that takes part in a rollout (§3.2, §3.3) before jobs.py applies it.
"""
from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass

from . import checks as checks_mod
from . import reschedule as reschedule_mod
from .httpjson import HttpError, json_response
from .jobdiff import tasks_need_destructive_update
from .jobspec import DEFAULT_UPDATE
from .nomadtime import now_ns, rfc3339
from .scheduler import GroupPlan, group_ask
from .state import new_id
from .uuidindex import IndexError_, parse_uuid

ACTIVE = ("running", "paused", "blocked", "unblocking", "initializing", "pending")
RUNNING = "Deployment is running"
NEEDS_PROMOTION = "Deployment is running but requires manual promotion"
PENDING_AUTO_PROMOTION = "Deployment is running pending automatic promotion"
PAUSED = "Deployment is paused"
SUCCESSFUL = "Deployment completed successfully"
CANCELLED_STOPPED = "Cancelled because job is stopped"
CANCELLED_NEWER = "Cancelled due to newer version of job"
FAILED_UNHEALTHY = "Failed due to unhealthy allocations"
FAILED_DEADLINE = "Failed due to progress deadline"
FAILED_MARKED = "Deployment marked as failed"
STOP_DESCRIPTION = "alloc not needed due to job update"
UPDATE_DESCRIPTION = "alloc is being updated due to job update"
HEALTH_POLL_SECONDS = 0.025   # Nomad's tracker polls checks every 500 ms; shorter keeps 100 ms health gates exact
UINT_PATHS = ("JobVersion", "JobModifyIndex", "JobSpecModifyIndex", "JobCreateIndex", "CreateIndex", "ModifyIndex",
              "TaskGroups.*.DesiredTotal", "TaskGroups.*.DesiredCanaries")
WRITE_ROUTES = ("fail/", "pause/", "promote/", "allocation-health/", "unblock/")


@dataclass
class RolloutPlan(GroupPlan):
    """A group's plan under a deployment: its new placements are canaries while the group is canarying."""
    canary: bool = False

    def desired_updates(self) -> dict:
        updates = super().desired_updates()
        if self.canary:
            updates["Canary"], updates["Place"] = updates["Place"], 0
        return updates


def uses_deployments(group: dict, with_default_update: bool) -> bool:
    """A group rolls out with a deployment when its update block is non-empty (MaxParallel > 0, §3.1).

    Emulator rule: a block equal to the SDK's default (what a job without `update` gets) only counts when the
    scenario sets `deployments: all`, so jobs without an update block keep the all-at-once replacement.
    """
    update = group.get("Update") or {}
    if not update.get("MaxParallel"):
        return False
    return with_default_update or any(update.get(key) != value for key, value in DEFAULT_UPDATE.items())


def is_canary(alloc) -> bool:
    return bool((alloc.deployment_status or {}).get("Canary"))


def health_of(alloc):
    """True / False / None (no verdict yet)."""
    return (alloc.deployment_status or {}).get("Healthy")


def group_state(update: dict, canaries: int) -> dict:
    return {"AutoRevert": bool(update.get("AutoRevert")), "AutoPromote": bool(update.get("AutoPromote")),
            "ProgressDeadline": int(update.get("ProgressDeadline") or 0), "RequireProgressBy": None,
            "Promoted": False, "PlacedCanaries": None, "DesiredCanaries": canaries,
            "DesiredTotal": 0, "PlacedAllocs": 0, "HealthyAllocs": 0, "UnhealthyAllocs": 0}


def requires_promotion(deployment: dict) -> bool:
    return any(state["DesiredCanaries"] > 0 and not state["Promoted"] for state in deployment["TaskGroups"].values())


def creation_description(deployment: dict) -> str:
    """§2.4: manual promotion unless every group with canaries auto-promotes."""
    canary_groups = [state for state in deployment["TaskGroups"].values() if state["DesiredCanaries"] > 0]
    if not canary_groups:
        return RUNNING
    if all(state["AutoPromote"] for state in canary_groups):
        return PENDING_AUTO_PROMOTION
    return NEEDS_PROMOTION


class Deployments:
    """All deployments of the emulator, the rollout rules and the watcher."""

    def __init__(self, jobs):
        self.jobs = jobs
        self.emulator = jobs.emulator
        self.items: dict = {}           # ID -> Deployment document (the JSON)
        self.table_index = 1            # index of the `deployment` table
        self.progress_by: dict = {}     # (deployment ID, group) -> RequireProgressBy in ns
        self.timers: dict = {}          # deployment ID -> asyncio.TimerHandle of the progress deadline

    # --- bookkeeping -------------------------------------------------------------------------------------------
    def with_default_update(self) -> bool:
        return str(self.emulator.scenario.get("deployments", "")) == "all"

    def touch(self, deployment: dict, index: int | None = None, modify_time: int | None = None) -> int:
        """Write the deployment: its ModifyIndex and the table index move (blocking queries wake)."""
        if index is None:
            index = self.emulator.bump()
        deployment["ModifyIndex"] = index
        if modify_time is not None:
            deployment["ModifyTime"] = modify_time
        self.table_index = max(self.table_index, index)
        return index

    def of_job(self, namespace: str, job_id: str) -> list:
        return sorted((dep for dep in self.items.values() if dep["Namespace"] == namespace and dep["JobID"] == job_id),
                      key=lambda dep: (dep["CreateIndex"], dep["ID"]))

    def latest(self, namespace: str, job_id: str):
        found = self.of_job(namespace, job_id)
        return found[-1] if found else None

    def set_status(self, deployment: dict, status: str, description: str, index: int | None = None) -> int:
        """A status update writes ModifyTime 0 (the watcher and scheduler never fill UpdatedAt, §2.1)."""
        deployment["Status"] = status
        deployment["StatusDescription"] = description
        if status not in ACTIVE:
            self.cancel_timer(deployment["ID"])
        return self.touch(deployment, index, modify_time=0)

    # --- the reconciler (§3.1-§3.3), called by jobs.process_eval ---------------------------------------------
    def shape(self, job: dict, plans: dict, evaluation: dict, rescheduling=None) -> dict | None:
        """Cancel an outdated deployment, create one if needed and replace the plans of its groups.

        Returns {"deployment": the deployment, "canary": {group name: placements are canaries}} for `after_apply`,
        or None when the job has no deployment.
        """
        latest = self.latest(job["Namespace"], job["ID"])
        if latest is not None and latest["Status"] in ACTIVE and self.outdated(latest, job):
            self.set_status(latest, "cancelled", CANCELLED_STOPPED if job.get("Stop") else CANCELLED_NEWER)
        if job.get("Stop") or job["Type"] != "service":
            return None
        groups = {group["Name"]: group for group in job["TaskGroups"]
                  if uses_deployments(group, self.with_default_update())}
        if not groups:
            return None
        deployment = latest if latest is not None and not self.outdated(latest, job) else None
        if deployment is None:
            deployment = self.create_if_needed(job, groups, plans, evaluation)
        if deployment is None:
            return None
        evaluation["DeploymentID"] = deployment["ID"]  # also a terminal one (generic_sched.go:217-220)
        if deployment["Status"] == "successful":
            return None  # nothing left to roll out: the scheduler's plan stands (and so do its hooks)
        canary_groups = {}
        kept = [alloc for alloc in (rescheduling.kept if rescheduling else ())
                if alloc.job.get("JobModifyIndex") == job["JobModifyIndex"]]  # failed, not replaced: they count
        for name, state in deployment["TaskGroups"].items():
            if name not in groups:
                continue
            live = [alloc for alloc in self.jobs.scheduler.live_allocs(job["Namespace"], job["ID"]) + kept
                    if alloc.task_group == name]
            failed_now = [alloc for alloc in (rescheduling.now if rescheduling else ()) if alloc.task_group == name]
            plans[name], canary_groups[name] = self.reconcile_group(job, groups[name], state, deployment, live,
                                                                    failed_now)
        self.place(job, plans, canary_groups)
        return {"deployment": deployment, "canary": canary_groups}

    def place(self, job: dict, plans: dict, rollout: dict) -> None:
        """Nodes for the rollout plans, counting what the other groups' plans already placed and what stays."""
        scheduler = self.jobs.scheduler
        usage = scheduler.node_usage(exclude=[alloc for plan in plans.values() for alloc in plan.stop + plan.destructive])
        groups = {group["Name"]: group for group in job["TaskGroups"]}
        for name, plan in plans.items():
            if name in rollout or name not in groups:
                continue
            cpu, memory = group_ask(groups[name])
            for _index, node, _previous in plan.place:
                usage[node["ID"]][0] += cpu
                usage[node["ID"]][1] += memory
        for name in rollout:
            scheduler.place_group(job, groups[name], plans[name], usage)

    def preview(self, job: dict, plans: dict) -> dict:
        """For `job plan`: the rollout plans a registration would get (§3.3 counts: canaries as `Canary`, deferred
        destructive updates as `Ignore`); nothing is written."""
        if job.get("Stop") or job["Type"] != "service":
            return plans
        groups = {group["Name"]: group for group in job["TaskGroups"]
                  if uses_deployments(group, self.with_default_update())}
        if not groups:
            return plans
        deployment = self.latest(job["Namespace"], job["ID"])
        if deployment is not None and deployment["JobSpecModifyIndex"] == job["JobModifyIndex"] and \
                deployment["Status"] == "successful":
            return plans
        if deployment is None or deployment["JobSpecModifyIndex"] != job["JobModifyIndex"]:
            states = self.initial_states(job, groups, plans)
            if not states:
                return plans
            deployment = {"ID": "", "Status": "running", "TaskGroups": states}
        rollout = {}
        for name, state in deployment["TaskGroups"].items():
            if name in groups:
                live = [alloc for alloc in self.jobs.scheduler.live_allocs(job["Namespace"], job["ID"])
                        if alloc.task_group == name]
                plans[name], rollout[name] = self.reconcile_group(job, groups[name], state, deployment, live)
        self.place(job, plans, rollout)
        return plans

    def purge_job(self, namespace: str, job_id: str) -> None:
        """A purge deletes the job's deployments at 1.10.5 (state_store.go:1944-1954)."""
        doomed = self.of_job(namespace, job_id)
        for deployment in doomed:
            self.cancel_timer(deployment["ID"])
            del self.items[deployment["ID"]]
        if doomed:
            self.table_index = self.emulator.bump()

    @staticmethod
    def outdated(deployment: dict, job: dict) -> bool:
        return bool(job.get("Stop")) or deployment["JobVersion"] != job["Version"] or \
            deployment["JobCreateIndex"] != job["CreateIndex"]

    def create_if_needed(self, job: dict, groups: dict, plans: dict, evaluation: dict):
        states = self.initial_states(job, groups, plans)
        if not states:
            return None
        index = self.emulator.bump()
        deployment = self._new_deployment(job, states, evaluation, index)
        self.items[deployment["ID"]] = deployment
        self.touch(deployment, index)
        return deployment

    @staticmethod
    def initial_states(job: dict, groups: dict, plans: dict) -> dict:
        """§3.1: a group takes part when it has something to do for a version that never ran, or updates."""
        states = {}
        for name, group in groups.items():
            plan = plans.get(name) or GroupPlan()
            ran = any(alloc.job.get("JobModifyIndex") == job["JobModifyIndex"] for alloc in plan.ignore)
            if group["Count"] <= 0 or (ran and not plan.destructive and not plan.in_place):
                continue
            canaries = (group["Update"].get("Canary") or 0) if plan.destructive else 0
            states[name] = group_state(group["Update"], canaries)
            states[name]["DesiredTotal"] = group["Count"]
        return states

    def _new_deployment(self, job: dict, states: dict, evaluation: dict, index: int) -> dict:
        now = now_ns()
        deployment = {"ID": new_id(), "Namespace": job["Namespace"], "JobID": job["ID"], "JobVersion": job["Version"],
                      "JobModifyIndex": job["ModifyIndex"], "JobSpecModifyIndex": job["JobModifyIndex"],
                      "JobCreateIndex": job["CreateIndex"], "IsMultiregion": False, "TaskGroups": states,
                      "Status": "running", "StatusDescription": "", "EvalPriority": evaluation["Priority"],
                      "CreateIndex": index, "ModifyIndex": index, "CreateTime": now, "ModifyTime": now}
        deployment["StatusDescription"] = creation_description(deployment)
        return deployment

    def reconcile_group(self, job: dict, group: dict, state: dict, deployment: dict, live: list,
                        failed_now=()):
        """The group's plan under the deployment: canaries first, then `max_parallel` destructive updates; failed
        allocations due for rescheduling are replaced when the deployment can place (§3.3)."""
        plan = RolloutPlan()
        current = [alloc for alloc in live if alloc.job.get("JobModifyIndex") == job["JobModifyIndex"]]
        older = [alloc for alloc in live if alloc not in current]
        plan.stop = [alloc for alloc in older if is_canary(alloc)]   # unpromoted canaries of an older deployment
        older = [alloc for alloc in older if not is_canary(alloc)]
        plan.in_place = [alloc for alloc in older if not tasks_need_destructive_update(alloc.group, group)]
        outdated = sorted((alloc for alloc in older if alloc not in plan.in_place), key=lambda a: a.index_in_group)
        place_ready = deployment["Status"] not in ("paused", "failed")
        if state["DesiredCanaries"] > 0 and not state["Promoted"]:
            self.plan_canaries(state, deployment, current, outdated, plan, place_ready)
            plan.canary = True
            return plan, True
        canary_indexes = {alloc.index_in_group for alloc in current if alloc.id in (state["PlacedCanaries"] or ())}
        replaced = [alloc for alloc in outdated if alloc.index_in_group in canary_indexes]
        plan.stop.extend(replaced)
        outdated = [alloc for alloc in outdated if alloc not in replaced]
        self.trim_to_count(group["Count"], current, outdated, plan)
        outdated = [alloc for alloc in outdated if alloc not in plan.stop]
        budget = self.update_budget(group, deployment, current) if place_ready else 0
        plan.destructive = outdated[:budget]
        plan.ignore = current + outdated[budget:]
        plan.place = [(alloc.index_in_group, None, alloc) for alloc in plan.destructive]
        if place_ready:
            plan.reschedule = list(failed_now)
            plan.place.extend((alloc.index_in_group, None, alloc) for alloc in plan.reschedule)
            used = {alloc.index_in_group for alloc in current + outdated + plan.in_place + plan.reschedule}
            free = (number for number in range(10 ** 6) if number not in used)
            missing = group["Count"] - len(current) - len(outdated) - len(plan.in_place) - len(plan.reschedule)
            plan.place.extend((next(free), None, None) for _count in range(max(0, missing)))
        return plan, False

    @staticmethod
    def plan_canaries(state: dict, deployment: dict, current: list, outdated: list, plan: GroupPlan,
                      place_ready: bool) -> None:
        """§3.2/§3.3: canaries are placed beside the old allocations (taking their names); nothing else moves."""
        plan.ignore = current + outdated
        placed = [alloc for alloc in current if alloc.id in (state["PlacedCanaries"] or ())]
        if not place_ready:
            return
        wanted = max(0, state["DesiredCanaries"] - len(placed))
        taken = {alloc.index_in_group for alloc in placed}
        names = [alloc.index_in_group for alloc in outdated if alloc.index_in_group not in taken][:wanted]
        spare = (number for number in range(10 ** 6) if number not in taken and number not in names)
        names.extend(next(spare) for _count in range(wanted - len(names)))
        plan.place = [(number, None, None) for number in names]

    @staticmethod
    def trim_to_count(count: int, current: list, outdated: list, plan: GroupPlan) -> None:
        excess = len(current) + len(outdated) + len(plan.in_place) - count
        for alloc in sorted(outdated, key=lambda a: -a.index_in_group) + sorted(current, key=lambda a: -a.index_in_group):
            if excess <= 0:
                break
            plan.stop.append(alloc)
            excess -= 1
        for alloc in plan.stop:
            if alloc in current:
                current.remove(alloc)

    @staticmethod
    def update_budget(group: dict, deployment: dict, current: list) -> int:
        """§3.3 underProvisionedBy: max_parallel minus the deployment's allocations without a verdict; 0 once
        one of them is unhealthy."""
        members = [alloc for alloc in current if deployment["ID"] and alloc.deployment_id == deployment["ID"]]
        if any(health_of(alloc) is False for alloc in members):
            return 0
        waiting = len([alloc for alloc in members if health_of(alloc) is None])
        return max(0, int(group["Update"]["MaxParallel"]) - waiting)

    def after_apply(self, job: dict, shaped: dict | None, plans: dict, evaluation: dict) -> None:
        """New and in-place updated allocations join the deployment; then the completion check (§3.3)."""
        if not shaped:
            return
        deployment = shaped["deployment"]
        changed = False
        for name, canary in shaped["canary"].items():
            state = deployment["TaskGroups"][name]
            members = [alloc for alloc in self.emulator.allocs.values()
                       if alloc.eval_id == evaluation["ID"] and alloc.task_group == name and alloc.job is job
                       and not alloc.deployment_id]
            for alloc in members + list(plans[name].in_place):
                self.join(deployment, state, alloc, canary and alloc in members)
                changed = True
        if changed:
            self.touch(deployment, self.emulator.index, modify_time=now_ns())
            self.schedule_progress_deadline(deployment)
        if deployment["Status"] in ACTIVE and self.complete(job, deployment):
            self.succeed(job, deployment)

    def join(self, deployment: dict, state: dict, alloc, canary: bool) -> None:
        """§3.4: PlacedAllocs+1, PlacedCanaries, RequireProgressBy on the first placement; health watched anew."""
        alloc.deployment_id = deployment["ID"]
        index = self.emulator.touch(alloc)
        alloc.deployment_status = ({"Healthy": None, "Timestamp": None, "Canary": True, "ModifyIndex": index}
                                   if canary else None)
        alloc.invalidate()
        state["PlacedAllocs"] += 1
        if canary:
            state["PlacedCanaries"] = (state["PlacedCanaries"] or []) + [alloc.id]
        key = (deployment["ID"], alloc.task_group)
        if state["ProgressDeadline"] > 0 and key not in self.progress_by:
            self.set_progress_by(deployment, alloc.task_group, alloc.modify_time + state["ProgressDeadline"])
        update = alloc.group.get("Update") or {}
        self.emulator.supervisor.spawn(self.watch_health(alloc, deployment["ID"], update))

    def set_progress_by(self, deployment: dict, group: str, when_ns: int) -> None:
        self.progress_by[(deployment["ID"], group)] = when_ns
        deployment["TaskGroups"][group]["RequireProgressBy"] = rfc3339(when_ns)

    def complete(self, job: dict, deployment: dict) -> bool:
        for name, state in deployment["TaskGroups"].items():
            live = [alloc for alloc in self.jobs.scheduler.live_allocs(job["Namespace"], job["ID"])
                    if alloc.task_group == name]
            if any(alloc.job.get("JobModifyIndex") != job["JobModifyIndex"] for alloc in live):
                return False
            if state["DesiredCanaries"] > 0 and not state["Promoted"]:
                return False
            if state["HealthyAllocs"] < max(state["DesiredTotal"], state["DesiredCanaries"]):
                return False
        return True

    def succeed(self, job: dict, deployment: dict) -> None:
        """`successful`, and the job version becomes Stable (state_store.go:4739-4744)."""
        index = self.set_status(deployment, "successful", SUCCESSFUL)
        job["Stable"] = True
        job["ModifyIndex"] = index

    # --- the client's health verdict (§3.5) ----------------------------------------------------------------------
    async def watch_health(self, alloc, deployment_id: str, update: dict) -> None:
        mode = update.get("HealthCheck") or "checks"
        if mode == "manual":
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (update.get("HealthyDeadline") or 0) / 1e9
        min_healthy = (update.get("MinHealthyTime") or 0) / 1e9
        passing_since = None
        latest_start = 0
        while alloc.deployment_id == deployment_id and alloc.desired_status == "run" and health_of(alloc) is None:
            verdict = health_verdict(alloc, mode)
            now = loop.time()
            if verdict is False:
                self.mark_unhealthy(alloc, update, at_deadline=False)
                return
            if latest_task_start(alloc) != latest_start:  # a (policy) restart between polls restarts the timer
                latest_start, passing_since = latest_task_start(alloc), None
            passing_since = (passing_since if passing_since is not None else now) if verdict else None
            if passing_since is not None and now - passing_since >= min_healthy:
                self.set_health(alloc, True)
                return
            if now >= deadline:
                self.mark_unhealthy(alloc, update, at_deadline=True)
                return
            wait = min_healthy - (now - passing_since) if passing_since is not None else HEALTH_POLL_SECONDS
            await asyncio.sleep(max(0.0, min(HEALTH_POLL_SECONDS, wait, deadline - now)))

    def mark_unhealthy(self, alloc, update: dict, at_deadline: bool) -> None:
        """The `Alloc Unhealthy` task events of the tasks that caused it (§3.5), then the verdict."""
        for task_name, message in unhealthy_reasons(alloc, update, at_deadline).items():
            alloc.tasks[task_name].add_event("Alloc Unhealthy", message, Message=message)
        self.set_health(alloc, False)

    def set_health(self, alloc, healthy: bool) -> None:
        """Client update of DeploymentStatus and the deployment's counters in the same write (§3.4)."""
        recorded = self.record_health(alloc, healthy, client_update=True)
        if recorded is not None and recorded[0]["Status"] in ACTIVE:
            self.after_health(recorded[0], alloc, recorded[1], healthy)

    def record_health(self, alloc, healthy: bool, client_update: bool):
        """DeploymentStatus, counters (§3.4: newly set +1; healthy -> unhealthy moves one; unhealthy -> healthy
        none), RequireProgressBy; returns (deployment, group state) or None."""
        deployment = self.items.get(alloc.deployment_id)
        before = health_of(alloc)
        index = self.emulator.touch(alloc, client_update=client_update)
        alloc.deployment_status = {"Healthy": healthy, "Timestamp": rfc3339(alloc.modify_time),
                                   "Canary": is_canary(alloc), "ModifyIndex": index}
        alloc.invalidate()
        if deployment is None or alloc.task_group not in deployment["TaskGroups"]:
            return None
        state = deployment["TaskGroups"][alloc.task_group]
        if before is None:
            state["HealthyAllocs" if healthy else "UnhealthyAllocs"] += 1
        elif before is True and not healthy:
            state["HealthyAllocs"] -= 1
            state["UnhealthyAllocs"] += 1
        if healthy and state["ProgressDeadline"] > 0:
            later = alloc.modify_time + state["ProgressDeadline"]
            if later > self.progress_by.get((deployment["ID"], alloc.task_group), 0):
                self.set_progress_by(deployment, alloc.task_group, later)
        self.touch(deployment, index, modify_time=alloc.modify_time)
        return deployment, state

    def manual_health(self, deployment: dict, healthy_ids: list, unhealthy_ids: list) -> tuple:
        """§1.9: set the verdicts, then fail (rollback suffix only when a stable version exists) or evaluate."""
        for alloc_id, healthy in [(alloc_id, True) for alloc_id in healthy_ids] + \
                [(alloc_id, False) for alloc_id in unhealthy_ids]:
            self.record_health(self.emulator.allocs[alloc_id.lower()], healthy, client_update=False)
        if unhealthy_ids:
            groups = {self.emulator.allocs[alloc_id.lower()].task_group for alloc_id in unhealthy_ids}
            rollback = any(deployment["TaskGroups"][name]["AutoRevert"] for name in groups)
            return self.fail(deployment, FAILED_UNHEALTHY, rollback, suffix_without_stable=False)
        evaluation = self.run_eval(deployment)
        return (evaluation or {}).get("ID", ""), (evaluation or {}).get("CreateIndex", 0), None

    # --- the deployment watcher (§3.6) ---------------------------------------------------------------------------
    def after_health(self, deployment: dict, alloc, state: dict, healthy: bool) -> None:
        if not healthy:
            if state["ProgressDeadline"] == 0 or \
                    not reschedule_mod.eligible(reschedule_mod.policy_of(alloc), alloc, now_ns()):
                self.fail(deployment, FAILED_UNHEALTHY, state["AutoRevert"])
                return
            alloc.desired_transition["Reschedule"] = True  # with an eval, in one write (§3.6)
            self.emulator.touch(alloc)
            self.run_eval(deployment)
            return
        self.schedule_progress_deadline(deployment)
        if self.auto_promotable(deployment):
            self.promote(deployment, list(deployment["TaskGroups"]))
            return
        self.run_eval(deployment)

    def run_eval(self, deployment: dict, index: int | None = None):
        """A `deployment-watcher` evaluation of the job, run at once (Nomad batches them for 1 s)."""
        job = self.jobs.store.current(deployment["Namespace"], deployment["JobID"])
        if job is None:
            return None
        evaluation = self.jobs.store.new_eval(job, "deployment-watcher", index or self.emulator.bump(),
                                              priority=deployment["EvalPriority"])
        evaluation["DeploymentID"] = deployment["ID"]
        self.jobs.process_eval(evaluation, job)
        return evaluation

    def auto_promotable(self, deployment: dict) -> bool:
        """§3.6: running, needs promotion, every canary group auto-promotes and has exactly its healthy canaries."""
        if deployment["Status"] != "running" or not requires_promotion(deployment):
            return False
        for state in deployment["TaskGroups"].values():
            if state["DesiredCanaries"] < 1:
                continue
            if not state["AutoPromote"] or len(self.healthy_canaries(state)) != state["DesiredCanaries"]:
                return False
        return True

    def healthy_canaries(self, state: dict) -> list:
        allocs = [self.emulator.allocs.get(alloc_id) for alloc_id in state["PlacedCanaries"] or ()]
        return [alloc for alloc in allocs if alloc is not None and not alloc.terminal and health_of(alloc) is True]

    def promote(self, deployment: dict, groups: list) -> dict:
        """§1.6 step 3: Promoted, RequireProgressBy reset, description, canaries become ordinary members."""
        index = self.emulator.bump()
        now = now_ns()
        for name in groups:
            state = deployment["TaskGroups"].get(name)
            if state is None:
                continue
            state["Promoted"] = True
            if state["ProgressDeadline"] > 0 and state["RequireProgressBy"] is not None:
                self.set_progress_by(deployment, name, now + state["ProgressDeadline"])
            for alloc_id in state["PlacedCanaries"] or ():
                alloc = self.emulator.allocs.get(alloc_id)
                if alloc is not None and alloc.deployment_status:
                    alloc.deployment_status = dict(alloc.deployment_status, Canary=False, ModifyIndex=index)
                    alloc.modify_index = alloc.alloc_modify_index = index
                    alloc.invalidate()
                    self.emulator.allocs_index = index
        if deployment["Status"] == "running" and not requires_promotion(deployment):
            deployment["StatusDescription"] = RUNNING
        self.touch(deployment, index, modify_time=0)
        self.schedule_progress_deadline(deployment)
        return self.run_eval(deployment, index)

    def fail(self, deployment: dict, base: str, rollback: bool, suffix_without_stable: bool = True) -> tuple:
        """§1.7/§3.6: failed with the rollback suffix; the stable version is registered again as a new version."""
        from .jobs import spec_changed  # jobs.py imports this module
        job = self.jobs.store.current(deployment["Namespace"], deployment["JobID"])
        description, stable = base, None
        if rollback and job is not None:
            stable = self.latest_stable(job)
            if stable is None:
                description += " - no stable job version to auto revert to" if suffix_without_stable else ""
            elif spec_changed(stable, job):
                description += f" - rolling back to job version {stable['Version']}"
            else:
                description += (f" - not rolling back to stable job version {stable['Version']} as current job has "
                                "same specification")
                stable = None
        index = self.set_status(deployment, "failed", description)
        if stable is not None:
            reverted = copy.deepcopy(stable)
            submission = self.jobs.store.submissions.get((job["Namespace"], job["ID"], stable["Version"]))
            result = self.jobs.write_job(reverted, job, submission, "deployment-watcher")
            return result["EvalID"], result["EvalCreateIndex"], stable["Version"]
        evaluation = self.run_eval(deployment, index)
        return (evaluation or {}).get("ID", ""), index, None

    def latest_stable(self, job: dict):
        versions = self.jobs.store.versions.get((job["Namespace"], job["ID"]), [])
        stable = [version for version in versions if version.get("Stable") and version["Version"] != job["Version"]]
        return max(stable, key=lambda version: version["Version"]) if stable else None

    # --- the progress deadline (§3.6) --------------------------------------------------------------------------
    def schedule_progress_deadline(self, deployment: dict) -> None:
        self.cancel_timer(deployment["ID"])
        if deployment["Status"] not in ACTIVE:
            return
        pending = [self.progress_by[(deployment["ID"], name)] for name, state in deployment["TaskGroups"].items()
                   if (deployment["ID"], name) in self.progress_by and not self.group_done(state)]
        if not pending:
            return
        delay = max(0.0, (min(pending) - now_ns()) / 1e9)
        loop = asyncio.get_running_loop()
        self.timers[deployment["ID"]] = loop.call_later(delay, self.progress_deadline_fired, deployment["ID"])

    def cancel_timer(self, deployment_id: str) -> None:
        timer = self.timers.pop(deployment_id, None)
        if timer is not None:
            timer.cancel()

    @staticmethod
    def group_done(state: dict) -> bool:
        if state["DesiredCanaries"] > 0 and not state["Promoted"]:
            return state["HealthyAllocs"] >= state["DesiredCanaries"]
        return state["HealthyAllocs"] >= state["DesiredTotal"]

    def progress_deadline_fired(self, deployment_id: str) -> None:
        self.timers.pop(deployment_id, None)
        deployment = self.items.get(deployment_id)
        if deployment is None or deployment["Status"] not in ACTIVE:
            return
        failing = [name for name, state in deployment["TaskGroups"].items() if not self.group_done(state)]
        if not failing:
            return
        job = self.jobs.store.current(deployment["Namespace"], deployment["JobID"]) or {}
        rollback = any((group.get("Update") or {}).get("AutoRevert") for group in job.get("TaskGroups") or ()
                       if group["Name"] in failing)
        self.fail(deployment, FAILED_DEADLINE, rollback)


def go_duration(ns: int) -> str:
    """Go's time.Duration.String() for non-negative durations (5m0s, 100ms, 1.5s)."""
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return _decimal(ns, size) + unit
        return "0s"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _decimal(rest, 1_000_000_000) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    return f"{minutes}m{seconds}" if minutes else seconds


def _decimal(value: int, size: int) -> str:
    whole, fraction = divmod(value, size)
    if not fraction:
        return str(whole)
    return f"{whole}." + str(fraction).zfill(len(str(size)) - 1).rstrip("0")


def unhealthy_reasons(alloc, update: dict, at_deadline: bool) -> dict:
    """{task name: message} like the health tracker's task checks (tracker.go:714-773); failing Nomad checks
    alone give no event."""
    deadline = int(update.get("HealthyDeadline") or 0)
    min_healthy = int(update.get("MinHealthyTime") or 0)
    reasons = {}
    for task in alloc.tasks.values():
        if task.lifecycle and not task.is_sidecar:
            continue
        if task.failed:
            reasons[task.name] = "Unhealthy because of failed task"
        elif task.state == "dead":
            reasons[task.name] = "Unhealthy because of dead task"
        elif at_deadline and task.state != "running":
            reasons[task.name] = f"Task not running by healthy_deadline of {go_duration(deadline)}"
        elif at_deadline and task.started_at + min_healthy > now_ns():
            reasons[task.name] = (f"Task not running for min_healthy_time of {go_duration(min_healthy)} by "
                                  f"healthy_deadline of {go_duration(deadline)}")
    return reasons


def latest_task_start(alloc) -> int:
    return max((task.started_at for task in alloc.tasks.values()), default=0)


def health_verdict(alloc, mode: str):
    """False: unhealthy now; None: not yet; True: passing (the min_healthy_time timer runs) (§3.5 tracker)."""
    if alloc.client_status == "failed":
        return False
    for task in alloc.tasks.values():
        if task.is_prestart_ephemeral or task.lifecycle:
            continue
        if task.failed or task.state == "dead":
            return False
        if task.state != "running":
            return None
    if mode != "checks" or alloc.virtual or not checks_mod.check_entries(alloc.group_spec or {}):
        return True
    results = checks_mod.current_results(alloc)
    if not results:
        return None
    return all(result["Status"] == "success" for result in results.values() if result["Mode"] == "healthiness") or None


# --- HTTP (§1) ----------------------------------------------------------------------------------------------------
def parse_per_page(text) -> int:
    """1.10: strconv.ParseInt(v, 10, 32); anything else is a 400 (reference version table)."""
    if text is None or text == "":
        return 0
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or not body.isascii() or not -2 ** 31 <= int(text) < 2 ** 31:
        raise HttpError(400, "Expect a number for `per_page` query string parameter")
    return max(0, int(text))


def compile_filter(text: str):
    if not text:
        return None
    from . import bexpr  # only needed with a filter
    try:
        return bexpr.compile_filter(text, map_paths=("TaskGroups",), uint_paths=UINT_PATHS)
    except bexpr.FilterParseError as err:
        raise HttpError(400, f"failed to create result paginator: failed to read filter expression: {err}") from err


def filter_matches(matcher, deployment: dict) -> bool:
    from . import bexpr
    try:
        return matcher.evaluate(deployment)
    except bexpr.FilterEvaluationError as err:
        raise HttpError(400, f"failed to read result page: {err}") from err


def token_before(token: str, start: str, reverse: bool) -> bool:
    """tokenizer.go:43-76: `<CreateIndex>.<ID>` tokens compare the index numerically, then the ID; else strings."""
    mine, _dot, my_id = token.partition(".")
    theirs, _dot, their_id = start.partition(".")
    if my_id and their_id and mine.isdigit() and theirs.isdigit():
        left, right = (int(mine), my_id), (int(theirs), their_id)
    else:
        left, right = token, start
    return left > right if reverse else left < right


class DeploymentApi:
    def __init__(self, jobs, deployments: Deployments):
        self.jobs = jobs
        self.api = jobs.api
        self.deployments = deployments
        self.emulator = jobs.emulator

    async def dispatch(self, request, path: str):
        if path == "/v1/deployments":
            return await self.list(request)
        rest = path[len("/v1/deployment/"):]
        for prefix in WRITE_ROUTES:
            if rest.startswith(prefix):
                return await self.write(request, prefix[:-1], rest[len(prefix):])
        if rest.startswith("allocations/"):
            return await self.allocations(request, rest[len("allocations/"):])
        return await self.get(request, rest)

    def _read_token(self, request):
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        token = self.jobs._token(request)
        namespace = request.query.get("namespace", "") or "default"
        if token is not None and not self._readable(token, namespace):
            raise HttpError(403, "Permission denied")
        return token, namespace

    def _readable(self, token, namespace: str) -> bool:
        if token is None:
            return True
        if namespace == "*":
            return token.allows_in_any(self.emulator.namespaces, "read-job")
        return token.allows(namespace, "read-job")

    async def block(self, request, current_index) -> None:
        from .server import QueryOptions  # server.py imports jobs.py, which imports this module
        await self.api.block(QueryOptions(request), current_index)

    async def list(self, request):
        token, namespace = self._read_token(request)
        await self.block(request, lambda: self.deployments.table_index)
        prefix = request.query.get("prefix", "")
        found = list(self.deployments.items.values())
        if prefix:
            try:
                hex_prefix = parse_uuid(prefix, exact=False)
            except IndexError_ as err:
                raise HttpError(500, f"index error: {err}") from err
            found = sorted((dep for dep in found if dep["ID"].replace("-", "").startswith(hex_prefix)),
                           key=lambda dep: dep["ID"])
        else:
            found.sort(key=lambda dep: (dep["CreateIndex"], dep["ID"]))
        if request.query.get("reverse") == "true":
            found.reverse()
        page, next_token = self.paginate(request, found, by_id=bool(prefix),
                                         visible=lambda dep: (namespace == "*" or dep["Namespace"] == namespace)
                                         and self._readable(token, dep["Namespace"]))
        headers = self.api.read_meta(self.deployments.table_index)
        if next_token:
            headers["X-Nomad-NextToken"] = next_token
        return json_response(request, page, headers=headers)

    @staticmethod
    def paginate(request, found: list, by_id: bool, visible) -> tuple:
        """Nomad 1.10's paginator (§1.2): skip before `next_token`, then `filter`, then the namespace selector;
        the (per_page+1)-th accepted item's token is the next token."""
        per_page = parse_per_page(request.query.get("per_page"))
        matcher = compile_filter(request.query.get("filter", ""))
        start = request.query.get("next_token", "")
        reverse = request.query.get("reverse") == "true"
        page, skipping = [], bool(start)
        for deployment in found:
            token = deployment["ID"] if by_id else f"{deployment['CreateIndex']}.{deployment['ID']}"
            if skipping and token_before(token, start, reverse):
                continue
            skipping = False
            if matcher is not None and not filter_matches(matcher, deployment):
                continue
            if not visible(deployment):
                continue
            if per_page and len(page) == per_page:
                return page, token
            page.append(deployment)
        return page, ""

    def lookup(self, deployment_id: str, *, read: bool):
        if not deployment_id:
            raise HttpError(500, "missing deployment ID", rpc=True)
        try:
            parse_uuid(deployment_id, exact=True)
        except IndexError_ as err:
            raise HttpError(500, f"deployment lookup failed: index error: {err}", rpc=True) from err
        deployment = self.deployments.items.get(deployment_id.lower())
        if deployment is None:
            if read:
                raise HttpError(404, "deployment not found", self.api.read_meta(self.deployments.table_index))
            raise HttpError(500, "deployment not found", rpc=True)
        return deployment

    async def get(self, request, deployment_id: str):
        token, _namespace = self._read_token(request)
        deployment = self.lookup(deployment_id, read=True)
        if not self._readable(token, deployment["Namespace"]):
            raise HttpError(404, "deployment not found", self.api.read_meta(self.deployments.table_index))
        await self.block(request, lambda: deployment["ModifyIndex"])
        return json_response(request, deployment, headers=self.api.read_meta(deployment["ModifyIndex"]))

    async def allocations(self, request, deployment_id: str):
        token, _namespace = self._read_token(request)
        try:
            parse_uuid(deployment_id, exact=True)
        except IndexError_ as err:
            raise HttpError(500, f"index error: {err}", rpc=True) from err
        await self.block(request, lambda: self.emulator.allocs_index)
        allocs = sorted((alloc for alloc in self.emulator.allocs.values() if alloc.deployment_id == deployment_id),
                        key=lambda alloc: alloc.id)
        if allocs and not self._readable(token, allocs[0].namespace):
            raise HttpError(403, "Permission denied")
        return json_response(request, [alloc.stub() for alloc in allocs],
                             headers=self.api.read_meta(self.emulator.allocs_index))

    async def job_deployments(self, request, job_id: str, latest_only: bool):
        """§1.11: `/v1/job/:id/deployments[?all=true]` and `/v1/job/:id/deployment` (null when none)."""
        _token, namespace = self._read_token(request)
        await self.block(request, lambda: self.deployments.table_index)
        found = self.deployments.of_job(namespace, job_id)
        headers = self.api.read_meta(self.deployments.table_index)
        if latest_only:
            return json_response(request, found[-1] if found else None, headers=headers)
        job = self.jobs.store.current(namespace, job_id)
        if job is not None and not self.jobs._bool_param(request, "all"):
            found = [dep for dep in found if dep["JobCreateIndex"] == job["CreateIndex"]]
        return json_response(request, list(reversed(found)), headers=headers)

    # --- writes (§1.5-§1.8) --------------------------------------------------------------------------------------
    async def write(self, request, action: str, deployment_id: str):
        from .jobs import decode_body, field_of
        if request.method not in ("PUT", "POST"):
            raise HttpError(405, "Invalid method")
        body = {}
        if action != "fail":
            body = decode_body(await request.text())
            sent = field_of(body, "DeploymentID") or ""
            if not sent:
                raise HttpError(400, "DeploymentID must be specified")
            if sent != deployment_id:
                raise HttpError(400, "Deployment ID does not match")
        token = self.jobs._token(request)
        if action == "allocation-health" and deployment_id and not (field_of(body, "HealthyAllocationIDs")
                                                                    or field_of(body, "UnhealthyAllocationIDs")):
            raise HttpError(500, "must specify at least one healthy/unhealthy allocation ID", rpc=True)
        deployment = self.lookup(deployment_id, read=False)
        self.api.require(token, deployment["Namespace"], "submit-job")
        handler = {"fail": self.fail, "pause": self.pause, "promote": self.promote,
                   "allocation-health": self.allocation_health, "unblock": self.unblock}[action]
        result = handler(deployment, body)
        return json_response(request, result, headers={"X-Nomad-Index": str(result["Index"])})

    @staticmethod
    def _terminal(deployment: dict, verb: str) -> None:
        if deployment["Status"] not in ACTIVE:
            raise HttpError(500, f"can't {verb} terminal deployment", rpc=True)

    @staticmethod
    def _response(eval_id: str, eval_index: int, index: int, reverted=None) -> dict:
        return {"EvalID": eval_id, "EvalCreateIndex": eval_index, "DeploymentModifyIndex": index,
                "RevertedJobVersion": reverted, "Index": index}

    def fail(self, deployment: dict, _body: dict) -> dict:
        self._terminal(deployment, "fail")
        rollback = any(state["AutoRevert"] for state in deployment["TaskGroups"].values())
        eval_id, eval_index, reverted = self.deployments.fail(deployment, FAILED_MARKED, rollback)
        return self._response(eval_id, eval_index, deployment["ModifyIndex"], reverted)

    def unblock(self, deployment: dict, _body: dict) -> dict:
        """§1.10: multiregion only; in CE an Active deployment answers all zeros."""
        self._terminal(deployment, "unblock")
        return self._response("", 0, 0)

    def allocation_health(self, deployment: dict, body: dict) -> dict:
        """§1.9; every ID is checked before anything is written (the first error aborts the apply, 500)."""
        from .jobs import field_of
        self._terminal_health(deployment)
        healthy = [str(alloc_id) for alloc_id in field_of(body, "HealthyAllocationIDs") or ()]
        unhealthy = [str(alloc_id) for alloc_id in field_of(body, "UnhealthyAllocationIDs") or ()]
        for alloc_id in healthy + unhealthy:
            try:
                parse_uuid(alloc_id, exact=True)
            except IndexError_ as err:
                raise HttpError(500, f'alloc "{alloc_id}" lookup failed: index error: {err}', rpc=True) from err
            alloc = self.emulator.allocs.get(alloc_id.lower())
            if alloc is None:
                raise HttpError(500, f'unknown alloc "{alloc_id}"', rpc=True)
            if alloc.deployment_id != deployment["ID"]:
                raise HttpError(500, f'alloc "{alloc_id}" is not part of deployment "{deployment["ID"]}"', rpc=True)
        eval_id, eval_index, reverted = self.deployments.manual_health(deployment, healthy, unhealthy)
        return self._response(eval_id, eval_index, deployment["ModifyIndex"], reverted)

    @staticmethod
    def _terminal_health(deployment: dict) -> None:
        if deployment["Status"] not in ACTIVE:
            raise HttpError(500, "can't set health of allocations for a terminal deployment", rpc=True)

    def pause(self, deployment: dict, body: dict) -> dict:
        from .jobs import field_of
        pause = bool(field_of(body, "Pause"))
        self._terminal(deployment, "pause" if pause else "resume")
        if pause:
            index = self.deployments.set_status(deployment, "paused", PAUSED)
            return self._response("", 0, index)
        index = self.deployments.set_status(deployment, "running", RUNNING)
        evaluation = self.deployments.run_eval(deployment, index)
        return self._response((evaluation or {}).get("ID", ""), index, index)

    def promote(self, deployment: dict, body: dict) -> dict:
        from .jobs import field_of, multierror
        self._terminal(deployment, "promote")
        groups = list(deployment["TaskGroups"]) if field_of(body, "All") else list(field_of(body, "Groups") or ())
        errors = []
        for name in groups:
            state = deployment["TaskGroups"].get(name)
            if state is None or state["DesiredCanaries"] == 0:
                continue
            healthy = len(self.deployments.healthy_canaries(state))
            if healthy < state["DesiredCanaries"]:
                errors.append(f'Task group "{name}" has {healthy}/{state["DesiredCanaries"]} healthy allocations')
        if errors:
            raise HttpError(500, multierror(errors), rpc=True)
        evaluation = self.deployments.promote(deployment, groups)
        index = evaluation["CreateIndex"] if evaluation else deployment["ModifyIndex"]
        return self._response((evaluation or {}).get("ID", ""), index, index)
