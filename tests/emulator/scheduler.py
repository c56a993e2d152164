# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small generic scheduler: which allocations a job version wants, on which client node, and why not.

Feasibility (datacenter, node pool, driver, constraints on `${node.unique.name}`, `${node.datacenter}`,
`${node.class}`, `${attr.kernel.name}`, `${node.pool}`) then bin packing on CPU and memory, like Nomad's
`scheduler/feasible.go` and `rank.go` in spirit. Failures are reported as Nomad's `AllocMetric`
(reference nomad-jobs-behaviour.md §3.3, §8.1): `ConstraintFiltered`, `NodesExhausted`, `DimensionExhausted`.
No deployments: a changed group replaces all its allocations at once (destructive update).
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from . import jobdiff

DEFAULT_NODE_CPU = 4000
DEFAULT_NODE_MEMORY = 8192
SUPPORTED_DRIVERS = ("raw_exec", "exec")
DEFAULT_TASK_CPU, DEFAULT_TASK_MEMORY = 100, 300
UPDATE_KEYS = ("Ignore", "Place", "Migrate", "Stop", "InPlaceUpdate", "DestructiveUpdate", "Canary", "Preemptions")


def node_resources(node: dict) -> tuple:
    return int(node.get("CPU", DEFAULT_NODE_CPU)), int(node.get("MemoryMB", DEFAULT_NODE_MEMORY))


def group_ask(group: dict) -> tuple:
    """CPU (MHz) and memory (MB) one allocation of the group needs."""
    cpu = memory = 0
    for task in group.get("Tasks") or ():
        resources = task.get("Resources") or {}
        cpu += int(resources.get("CPU", DEFAULT_TASK_CPU))
        memory += int(resources.get("MemoryMB", DEFAULT_TASK_MEMORY))
    return cpu, memory


def alloc_usage(alloc) -> tuple:
    return group_ask(alloc.group) if any("Resources" in task for task in alloc.group.get("Tasks") or ()) else (
        DEFAULT_TASK_CPU * len(alloc.tasks), DEFAULT_TASK_MEMORY * len(alloc.tasks))


def constraint_string(constraint: dict) -> str:
    return f"{constraint['LTarget']} {constraint['Operand']} {constraint['RTarget']}".strip()


def _node_value(node: dict, target: str):
    values = {"${node.unique.name}": node["Name"], "${node.unique.id}": node["ID"],
              "${node.datacenter}": node.get("Datacenter", "dc1"), "${node.pool}": node.get("NodePool", "default"),
              "${node.class}": node.get("NodeClass", ""), "${attr.kernel.name}": "linux",
              "${attr.unique.hostname}": node["Name"]}
    return values.get(target)


def constraint_met(node: dict, constraint: dict) -> bool:
    left = _node_value(node, constraint["LTarget"])
    right = constraint["RTarget"]
    operand = constraint["Operand"]
    if left is None:
        return operand == "is_not_set"
    if operand in ("=", "==", "is"):
        return left == right
    if operand in ("!=", "not"):
        return left != right
    if operand == "regexp":
        return re.search(right, left) is not None
    if operand == "set_contains":
        return set(right.split(",")) <= set(left.split(","))
    if operand == "is_set":
        return True
    return False


@dataclass
class GroupPlan:
    ignore: list = field(default_factory=list)
    in_place: list = field(default_factory=list)       # allocations of an older version that keep running
    stop: list = field(default_factory=list)
    destructive: list = field(default_factory=list)   # old allocations replaced by new ones
    place: list = field(default_factory=list)          # (index_in_group, node, previous allocation or None)
    reschedule: list = field(default_factory=list)    # failed allocations replaced now (reschedule.py)
    failed: dict | None = None
    queued: int = 0

    def desired_updates(self) -> dict:
        updates = dict.fromkeys(UPDATE_KEYS, 0)
        updates.update({"Ignore": len(self.ignore), "InPlaceUpdate": len(self.in_place), "Stop": len(self.stop),
                        "DestructiveUpdate": len(self.destructive),
                        "Place": len([entry for entry in self.place
                                      if entry[2] is None or entry[2] in self.reschedule])})
        return updates


class Scheduler:
    """Plans one job against the emulator's nodes and allocations (no side effects)."""

    def __init__(self, emulator):
        self.emulator = emulator

    def live_allocs(self, namespace: str, job_id: str) -> list:
        return [alloc for alloc in self.emulator.allocs.values()
                if alloc.namespace == namespace and alloc.job_id == job_id and not alloc.terminal]

    def finished_batch_allocs(self, job: dict) -> list:
        """Batch allocations that completed successfully count as placed: they are not run again."""
        if job["Type"] != "batch":
            return []
        return [alloc for alloc in self.emulator.allocs.values()
                if alloc.namespace == job["Namespace"] and alloc.job_id == job["ID"]
                and alloc.desired_status == "run" and alloc.client_status == "complete"]

    def node_usage(self, exclude=()) -> dict:
        used = {node["ID"]: [0, 0] for node in self.emulator.nodes}
        skipped = {id(alloc) for alloc in exclude}
        for alloc in self.emulator.allocs.values():
            if alloc.terminal or id(alloc) in skipped or alloc.node["ID"] not in used:
                continue
            cpu, memory = alloc_usage(alloc)
            used[alloc.node["ID"]][0] += cpu
            used[alloc.node["ID"]][1] += memory
        return used

    def plan(self, job: dict, rescheduling=None) -> dict:
        """{group name: GroupPlan} for the job as it should run now (Stop -> every allocation stops).

        `rescheduling` (a reschedule.RescheduleDecision): failed allocations replaced now, and those that keep
        their place in the group (not replaced)."""
        live = self.live_allocs(job["Namespace"], job["ID"])
        groups = {group["Name"]: group for group in job["TaskGroups"]}
        plans = {name: GroupPlan() for name in groups}
        for alloc in live:
            if alloc.task_group not in groups or job.get("Stop"):
                plans.setdefault(alloc.task_group, GroupPlan()).stop.append(alloc)
        if job.get("Stop"):
            return plans
        leaving = [alloc for plan in plans.values() for alloc in plan.stop]
        finished = self.finished_batch_allocs(job)
        kept = list(rescheduling.kept) if rescheduling else []
        now = list(rescheduling.now) if rescheduling else []
        for name, group in groups.items():
            current = [alloc for alloc in live + finished + kept if alloc.task_group == name]
            plans[name].reschedule = [alloc for alloc in now if alloc.task_group == name]
            self._reconcile(job, group, current, plans[name])
            leaving.extend(plans[name].stop + plans[name].destructive)
        usage = self.node_usage(exclude=leaving)
        for name, group in groups.items():
            self._place(job, group, plans[name], usage)
        return plans

    def _reconcile(self, job: dict, group: dict, current: list, plan: GroupPlan) -> None:
        wanted = self._wanted_count(job, group)
        current = sorted(current, key=lambda alloc: alloc.index_in_group)
        plan.stop.extend(alloc for alloc in current[wanted:] if not alloc.terminal)
        kept = current[:wanted]
        for alloc in kept:
            if alloc.terminal or alloc.job.get("JobModifyIndex") == job["JobModifyIndex"]:
                plan.ignore.append(alloc)
            elif jobdiff.tasks_need_destructive_update(alloc.group, group):
                plan.destructive.append(alloc)
            else:
                plan.in_place.append(alloc)
        plan.reschedule = plan.reschedule[:max(0, wanted - len(kept))]
        used_indexes = {alloc.index_in_group for alloc in kept + plan.reschedule}
        plan.place = [(alloc.index_in_group, None, alloc) for alloc in plan.destructive + plan.reschedule]
        free = (number for number in range(10 ** 6) if number not in used_indexes)
        plan.place.extend((next(free), None, None) for _count in range(wanted - len(kept) - len(plan.reschedule)))

    def _wanted_count(self, job: dict, group: dict) -> int:
        if job["Type"] == "system":
            return len(self.feasible_nodes(job, group)[0]) if group["Count"] else 0
        return group["Count"]

    def place_group(self, job: dict, group: dict, plan: GroupPlan, usage: dict) -> None:
        """Nodes for a plan made elsewhere (deployments.py's rollout plans), with the same failure metrics."""
        self._place(job, group, plan, usage)

    def _place(self, job: dict, group: dict, plan: GroupPlan, usage: dict) -> None:
        nodes, metric = self.feasible_nodes(job, group)
        ask_cpu, ask_memory = group_ask(group)
        placed = []
        failures = 0
        occupied = {alloc.node["ID"] for alloc in plan.ignore + plan.in_place}
        system_nodes = iter([node for node in nodes if node["ID"] not in occupied])
        for index_in_group, _node, previous in plan.place:
            candidates = nodes
            if job["Type"] == "system":  # one allocation per feasible node; a replacement stays on its node
                candidates = [previous.node] if previous is not None else [next(system_nodes, None)]
            node, exhausted = self._best_fit([node for node in candidates if node], usage, ask_cpu, ask_memory)
            if node is None:
                if failures == 0:  # Nomad reports the metrics of the first failed placement
                    metric["NodesExhausted"] = sum(exhausted.values())
                    metric["DimensionExhausted"] = exhausted or None
                failures += 1
                if previous in plan.destructive:  # a replacement that does not fit leaves the old one running
                    plan.destructive.remove(previous)
                    plan.ignore.append(previous)
                elif previous in plan.reschedule:  # a failed allocation that cannot be replaced stays failed
                    plan.reschedule.remove(previous)
                continue
            usage[node["ID"]][0] += ask_cpu
            usage[node["ID"]][1] += ask_memory
            placed.append((index_in_group, node, previous))
        if failures:
            metric["CoalescedFailures"] = failures - 1
            plan.failed = metric
            plan.queued = failures
        plan.place = placed

    @staticmethod
    def _best_fit(nodes: list, usage: dict, ask_cpu: int, ask_memory: int):
        """Bin packing: the fitting node with the highest utilisation after placement (ties: node name),
        and {dimension: nodes exhausted on it} for the nodes that did not fit."""
        best, best_score, exhausted = None, None, {}
        for node in sorted(nodes, key=lambda item: item["Name"]):
            cpu, memory = node_resources(node)
            used_cpu, used_memory = usage[node["ID"]]
            dimension = ("cpu" if used_cpu + ask_cpu > cpu else
                         "memory" if used_memory + ask_memory > memory else None)
            if dimension:
                exhausted[dimension] = exhausted.get(dimension, 0) + 1
                continue
            score = (used_cpu + ask_cpu) / cpu + (used_memory + ask_memory) / memory
            if best_score is None or score > best_score:
                best, best_score = node, score
        return best, exhausted

    def feasible_nodes(self, job: dict, group: dict):
        """Nodes that may run the group, and the AllocMetric counting the filtered ones."""
        pool = job.get("NodePool") or "default"
        datacenters = job.get("Datacenters") or ["*"]
        in_pool = [node for node in self.schedulable_nodes() if pool == "all" or node.get("NodePool", "default") == pool]
        metric = new_metric(pool, len(in_pool))
        available = [node for node in in_pool
                     if any(fnmatch.fnmatchcase(node.get("Datacenter", "dc1"), pattern) for pattern in datacenters)]
        for node in available:
            datacenter = node.get("Datacenter", "dc1")
            metric["NodesAvailable"][datacenter] = metric["NodesAvailable"].get(datacenter, 0) + 1
        for datacenter in datacenters:
            if "*" not in datacenter:
                metric["NodesAvailable"].setdefault(datacenter, 0)
        feasible = []
        constraints = list(job.get("Constraints") or ()) + list(group.get("Constraints") or ())
        for task in group.get("Tasks") or ():
            constraints.extend(task.get("Constraints") or ())
        drivers = {task.get("Driver", "") for task in group.get("Tasks") or ()}
        for node in available:
            metric["NodesEvaluated"] += 1
            reason = self._filter_reason(node, constraints, drivers)
            if reason:
                metric["NodesFiltered"] += 1
                filtered = metric["ConstraintFiltered"] or {}
                filtered[reason] = filtered.get(reason, 0) + 1
                metric["ConstraintFiltered"] = filtered
                continue
            feasible.append(node)
        return feasible, metric

    def schedulable_nodes(self) -> list:
        """Ready, eligible nodes: an ineligible or draining node gets no new allocations (nodes.py)."""
        from .nodes import schedulable
        return [node for node in self.emulator.nodes if schedulable(node)]

    @staticmethod
    def _filter_reason(node: dict, constraints: list, drivers: set):
        if not drivers <= set(SUPPORTED_DRIVERS):
            return "missing drivers"
        for constraint in constraints:
            if not constraint_met(node, constraint):
                return constraint_string(constraint)
        return None


def new_metric(pool: str, in_pool: int) -> dict:
    return {"NodesEvaluated": 0, "NodesFiltered": 0, "NodesInPool": in_pool, "NodePool": pool, "NodesAvailable": {},
            "ClassFiltered": None, "ConstraintFiltered": None, "NodesExhausted": 0, "ClassExhausted": None,
            "DimensionExhausted": None, "QuotaExhausted": None, "ResourcesExhausted": None, "Scores": None,
            "ScoreMetaData": None, "AllocationTime": 0, "CoalescedFailures": 0}
