# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Cluster state: jobs, allocations, tasks, the raft-like index and change notification."""
from __future__ import annotations

import asyncio
import bisect
import copy
import json
import os
import random
import uuid
from dataclasses import dataclass, field

from . import acl as acl_mod
from .faults import Faults
from .nomadversion import DEFAULT as DEFAULT_NOMAD
from .nomadversion import NomadVersion
from .nomadtime import now_ns, parse_go_duration, rfc3339

ALLOC_MIGRATING = "alloc is being migrated"


def new_id() -> str:
    return str(uuid.uuid4())


class FastIds:
    """Version-4-shaped UUIDs from a seeded generator: cheap for 100,000 virtual allocations, same every run."""

    def __init__(self, seed: int = 4646):
        self._random = random.Random(seed)

    def __call__(self) -> str:
        text = f"{self._random.getrandbits(128):032x}"
        variant = "89ab"[int(text[16], 16) & 3]
        return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{variant}{text[17:20]}-{text[20:]}"


@dataclass
class Task:
    name: str
    command: list
    lifecycle: dict | None = None
    kill_timeout: float = 5.0
    healthy: bool = True
    state: str = "pending"
    failed: bool = False
    restarts: int = 0
    last_restart: int = 0
    restart_count: int = 0          # the restart tracker's attempts in the current interval (restarts.py)
    restart_window_start: int = 0   # when that interval began
    restart_wait: object = None     # the asyncio task waiting out a restart delay
    started_at: int = 0
    finished_at: int = 0
    events: list = field(default_factory=list)
    pid: int | None = None
    process: object = None
    task_dir: str = ""
    env: dict = field(default_factory=dict)
    signals: list = field(default_factory=list)
    started: bool = False
    expected_exit: bool = False  # set while the emulator itself is killing the task (stop/restart)
    exited: asyncio.Event | None = None
    job_env: dict = field(default_factory=dict)  # the job's `env` block (scenario `env:`)

    @property
    def is_prestart_ephemeral(self) -> bool:
        return bool(self.lifecycle) and self.lifecycle.get("hook") == "prestart" and not self.lifecycle.get("sidecar")

    @property
    def is_sidecar(self) -> bool:
        return bool(self.lifecycle) and bool(self.lifecycle.get("sidecar"))

    def add_event(self, event_type: str, message: str, **extra):
        event = {
            "Type": event_type, "Time": now_ns(), "Message": extra.pop("Message", ""),
            "DisplayMessage": message, "Details": extra.pop("Details", {}), "FailsTask": extra.pop("FailsTask", False),
            "RestartReason": extra.pop("RestartReason", ""), "SetupError": "", "DriverError": "",
            "ExitCode": extra.pop("ExitCode", 0), "Signal": extra.pop("Signal", 0), "KillReason": "",
            "KillTimeout": extra.pop("KillTimeout", 0), "KillError": "", "StartDelay": extra.pop("StartDelay", 0),
            "TaskSignalReason": "", "TaskSignal": extra.pop("TaskSignal", ""), "DriverMessage": "", "GenericSource": "",
        }
        self.events.append(event)
        if len(self.events) > 10:  # Nomad keeps the last 10 events
            del self.events[0]

    def lifecycle_dict(self):
        if not self.lifecycle:
            return None
        return {"Hook": self.lifecycle.get("hook", "prestart"), "Sidecar": bool(self.lifecycle.get("sidecar", False))}

    def state_dict(self, version: NomadVersion = DEFAULT_NOMAD) -> dict:
        state = {
            "State": self.state, "Failed": self.failed, "Restarts": self.restarts,
            "LastRestart": rfc3339(self.last_restart), "StartedAt": rfc3339(self.started_at),
            "FinishedAt": rfc3339(self.finished_at), "Events": list(self.events),
        }
        if version.task_state_has_handle:
            state["TaskHandle"] = None
        if version.task_state_has_paused:
            state["Paused"] = ""   # a TaskScheduleState; always empty in Nomad CE (row 18)
        return state

    def control_view(self) -> dict:
        return {"pid": self.pid, "state": self.state, "restarts": self.restarts, "task_dir": self.task_dir,
                "signals": list(self.signals), "failed": self.failed}


class Allocation:
    version: NomadVersion = DEFAULT_NOMAD   # the emulator's, set by Emulator.add_alloc

    def __init__(self, *, alloc_id, job, group, index_in_group, namespace, node, tasks, create_index,
                 virtual=False, services=(), eval_id=None):
        self.id = alloc_id
        self.job = job
        self.group = group
        self.namespace = namespace
        self.name = f"{job['ID']}.{group['Name']}[{index_in_group}]"
        self.index_in_group = index_in_group
        self.node = node
        self.tasks = {task.name: task for task in tasks}
        self.virtual = virtual
        self.eval_id = eval_id or new_id()
        self.desired_status = "run"
        self.desired_description = ""
        self.client_status = "pending"
        self.client_description = "No tasks have started"
        self.desired_transition = {"Migrate": None, "Reschedule": None, "ForceReschedule": None,
                                   "NoShutdownDelay": None}
        self.deployment_status = None
        self.deployment_id = ""
        self.previous_allocation = ""
        self.next_allocation = ""
        self.followup_eval_id = ""
        self.reschedule_tracker = None    # {"Events": [...], "LastReschedule": ...} (reschedule.py)
        self.create_index = create_index
        self.modify_index = create_index
        self.alloc_modify_index = create_index
        self.create_time = now_ns()
        self.modify_time = self.create_time
        self.service_specs = list(services)
        self.group_spec: dict = {}
        self._lifecycle_lock: asyncio.Lock | None = None
        self.services: list = []
        self.token = f"{create_index}.{alloc_id}"
        self.hex_id = alloc_id.replace("-", "")
        self.alloc_dir = ""
        self._stub_json: bytes | None = None
        self.stub_template: str | None = None  # shared by pristine virtual allocations, see stub_json()

    @property
    def lifecycle_lock(self) -> asyncio.Lock:
        """Serialises restarts and stops of this allocation (made lazily: virtual allocations rarely need one)."""
        if self._lifecycle_lock is None:
            self._lifecycle_lock = asyncio.Lock()
        return self._lifecycle_lock

    # --- views -------------------------------------------------------------------------------------
    @property
    def job_id(self) -> str:
        return self.job["ID"]

    @property
    def task_group(self) -> str:
        return self.group["Name"]

    @property
    def task_names(self) -> list:
        return list(self.tasks)

    @property
    def main_tasks(self) -> list:
        return [task for task in self.tasks.values() if not task.lifecycle]

    @property
    def terminal(self) -> bool:
        return self.client_status in ("complete", "failed", "lost") or self.desired_status in ("stop", "evict")

    def invalidate(self):
        self._stub_json = None
        self.stub_template = None

    def task_states(self) -> dict:
        return {name: task.state_dict(self.version) for name, task in self.tasks.items()}

    def allocated_resources(self) -> dict:
        tasks = {name: {"Cpu": {"CpuShares": 100, "ReservedCores": None}, "Memory": {"MemoryMB": 300, "MemoryMaxMB": 0},
                        "Networks": None, "Devices": None} for name in self.tasks}
        return {"Tasks": tasks, "TaskLifecycles": {name: task.lifecycle_dict() for name, task in self.tasks.items()},
                "Shared": {"DiskMB": 300, "Networks": None, "Ports": None}}

    def stub(self, *, resources: bool = False, task_states: bool = True) -> dict:
        stub = {
            "ID": self.id, "EvalID": self.eval_id, "Name": self.name, "Namespace": self.namespace,
            "NodeID": self.node["ID"], "NodeName": self.node["Name"], "JobID": self.job_id,
            "JobType": self.job["Type"], "JobVersion": self.job["Version"], "TaskGroup": self.task_group,
        }
        if resources:
            stub["AllocatedResources"] = self.allocated_resources()
        stub.update({
            "DesiredStatus": self.desired_status, "DesiredDescription": self.desired_description,
            "ClientStatus": self.client_status, "ClientDescription": self.client_description,
            "DesiredTransition": dict(self.desired_transition),
            "TaskStates": self.task_states() if task_states else None,
            "DeploymentStatus": dict(self.deployment_status) if self.deployment_status else None,
            "FollowupEvalID": self.followup_eval_id, "NextAllocation": self.next_allocation,
            "RescheduleTracker": copy.deepcopy(self.reschedule_tracker), "PreemptedAllocations": None,
            "PreemptedByAllocation": "",
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
            "CreateTime": self.create_time, "ModifyTime": self.modify_time,
        })
        return stub

    def stub_json(self) -> bytes:
        """The default list element (task states, no resources), cached until the allocation changes."""
        if self._stub_json is None:
            if self.stub_template is not None:
                self._stub_json = (self.stub_template % {
                    "id": self.id, "eval": self.eval_id, "name": self.name, "index": self.create_index,
                    "time": self.create_time}).encode()
            else:
                self._stub_json = json.dumps(self.stub(), separators=(",", ":")).encode()
        return self._stub_json

    def make_stub_template(self) -> str:
        """This allocation's stub JSON with its own ID, EvalID, Name, indexes and times as %-placeholders.

        Valid for every unmodified virtual allocation of the same job created at the same time.
        """
        stub = self.stub()
        stub.update({"ID": "@@id@@", "EvalID": "@@eval@@", "Name": "@@name@@", "CreateIndex": "@@index@@",
                     "ModifyIndex": "@@index@@", "CreateTime": "@@time@@", "ModifyTime": "@@time@@"})
        if stub["DeploymentStatus"]:
            stub["DeploymentStatus"]["ModifyIndex"] = "@@index@@"
        text = json.dumps(stub, separators=(",", ":")).replace("%", "%%")
        for name in ("id", "eval", "name"):
            text = text.replace(f'"@@{name}@@"', f'"%({name})s"')
        for name in ("index", "time"):
            text = text.replace(f'"@@{name}@@"', f"%({name})d")
        return text

    def full(self) -> dict:
        return {
            "ID": self.id, "Namespace": self.namespace, "EvalID": self.eval_id, "Name": self.name,
            "NodeID": self.node["ID"], "NodeName": self.node["Name"], "JobID": self.job_id, "Job": self.job,
            "TaskGroup": self.task_group,
            "Resources": {"CPU": 100 * len(self.tasks), "Cores": 0, "MemoryMB": 300 * len(self.tasks),
                          "MemoryMaxMB": 0, "DiskMB": 300, "IOPS": 0, "Networks": None, "Devices": None},
            "SharedResources": {"CPU": 0, "Cores": 0, "MemoryMB": 0, "MemoryMaxMB": 0, "DiskMB": 300, "IOPS": 0,
                                "Networks": None, "Devices": None},
            "TaskResources": None,
            "AllocatedResources": self.allocated_resources(),
            "Metrics": {"NodesEvaluated": 1, "NodesFiltered": 0, "NodesAvailable": {self.node.get("Datacenter", "dc1"): 1},
                        "ClassFiltered": None, "ConstraintFiltered": None, "NodesExhausted": 0, "ClassExhausted": None,
                        "DimensionExhausted": None, "QuotaExhausted": None, "ResourcesExhausted": None,
                        "Scores": None, "ScoreMetaData": None, "AllocationTime": 50000, "CoalescedFailures": 0},
            "DesiredStatus": self.desired_status, "DesiredDescription": self.desired_description,
            "DesiredTransition": dict(self.desired_transition),
            "ClientStatus": self.client_status, "ClientDescription": self.client_description,
            "TaskStates": self.task_states(), "AllocStates": None,
            "PreviousAllocation": self.previous_allocation, "NextAllocation": self.next_allocation,
            "DeploymentID": self.deployment_id,
            "DeploymentStatus": dict(self.deployment_status) if self.deployment_status else None,
            "RescheduleTracker": copy.deepcopy(self.reschedule_tracker), "NetworkStatus": None,
            "FollowupEvalID": self.followup_eval_id,
            "PreemptedAllocations": None, "PreemptedByAllocation": "", "SigningKeyID": "",
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
            "AllocModifyIndex": self.alloc_modify_index, "CreateTime": self.create_time, "ModifyTime": self.modify_time,
        }


class Emulator:
    """Everything the HTTP handlers and the exec handler share (see README "Internals for exec")."""

    def __init__(self, scenario: dict, *, state_dir: str, string_token_compare: bool = False,
                 version: NomadVersion = DEFAULT_NOMAD):
        self.scenario = scenario
        self.version = version
        self.state_dir = state_dir
        self.region = str(scenario.get("region", "global"))
        self.datacenter = str(scenario.get("datacenter", "dc1"))
        self.acl_enabled = bool(scenario.get("acl", False))
        self.namespaces = [str(ns) for ns in scenario.get("namespaces") or ["default"]]
        if "default" not in self.namespaces:
            self.namespaces.insert(0, "default")
        self.tokens = {}
        for entry in scenario.get("tokens") or ():
            token = acl_mod.token_from_scenario(entry, version)
            self.tokens[token.secret] = token
        self.anonymous = acl_mod.Token(
            name="anonymous", secret="",
            capabilities={str(ns): acl_mod.expand_capabilities(caps, version)
                          for ns, caps in (scenario.get("anonymous") or {}).items()})
        self.settings = {
            "string_token_compare": bool(string_token_compare) or not version.numeric_pagination_tokens,
            # answer like a multi-node cluster, where RPC errors that crossed a connection carry "rpc error: "
            "rpc_error_prefix": False,
        }
        self.faults = Faults()
        self.request_counts: dict = {}
        self.blocking_counts: dict = {}  # the part of request_counts that were blocking queries (`index=`)
        self.index = 1
        self.allocs_index = 1
        self.services_index = 1
        self.allocs: dict = {}
        self._hex_ids: list = []          # sorted hex IDs (the memdb `id` index)
        self._alloc_by_hex: dict = {}
        self._by_create: list = []        # allocations in (CreateIndex, ID) order
        self._by_create_keys: list = []
        self._by_namespace: dict = {}     # namespace -> (allocations, keys) in (CreateIndex, ID) order
        self._changed = asyncio.Event()
        self.nodes = []
        self.nodes_index = 1              # the nodes table index (nodes.py)
        self.jobs = {}
        self.supervisor = None            # tasks.Supervisor, set by the server
        self.on_alloc_failed = None       # called when a client update reports a failed allocation (jobs.py)

    # --- change notification (blocking queries) ------------------------------------------------
    def bump(self) -> int:
        self.index += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return self.index

    async def wait_for_change(self, timeout: float) -> None:
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def touch(self, alloc: Allocation, *, client_update: bool = False) -> int:
        index = self.bump()
        alloc.modify_index = index
        if not client_update:
            alloc.alloc_modify_index = index
        alloc.modify_time = now_ns()
        alloc.invalidate()
        self.allocs_index = index
        if client_update and alloc.client_status == "failed" and self.on_alloc_failed is not None:
            self.on_alloc_failed(alloc)
        return index

    # --- lookups ---------------------------------------------------------------------------------
    def find_alloc(self, alloc_id: str):
        alloc = self.allocs.get(alloc_id)
        if alloc is None and alloc_id != alloc_id.lower():
            alloc = self.allocs.get(alloc_id.lower())
        return alloc

    def hex_range(self, hex_prefix: str):
        """Positions in the sorted hex-ID list that start with hex_prefix."""
        start = bisect.bisect_left(self._hex_ids, hex_prefix)
        end = bisect.bisect_left(self._hex_ids, hex_prefix + "g")
        return start, end

    def alloc_by_hex(self, position: int) -> Allocation:
        return self._alloc_by_hex[self._hex_ids[position]]

    def create_ordered(self, namespace):
        """(allocations, keys) in (CreateIndex, ID) order, for one namespace or all (None)."""
        if namespace is None:
            return self._by_create, self._by_create_keys
        return self._by_namespace.get(namespace, ([], []))

    # --- registration ----------------------------------------------------------------------------
    def add_alloc(self, alloc: Allocation) -> None:
        alloc.version = self.version
        self.allocs[alloc.id] = alloc
        bisect.insort(self._hex_ids, alloc.hex_id)
        self._alloc_by_hex[alloc.hex_id] = alloc
        key = (alloc.create_index, alloc.id)
        for allocs, keys in (self.create_ordered(None), self._namespace_lists(alloc.namespace)):
            position = bisect.bisect_left(keys, key)
            keys.insert(position, key)
            allocs.insert(position, alloc)

    def remove_alloc(self, alloc: Allocation) -> None:
        """Delete an allocation from every index (a job purge at Nomad 1.10 deletes its allocations)."""
        if self.allocs.pop(alloc.id, None) is None:
            return
        position = bisect.bisect_left(self._hex_ids, alloc.hex_id)
        if position < len(self._hex_ids) and self._hex_ids[position] == alloc.hex_id:
            del self._hex_ids[position]
        self._alloc_by_hex.pop(alloc.hex_id, None)
        key = (alloc.create_index, alloc.id)
        for allocs, keys in (self.create_ordered(None), self._namespace_lists(alloc.namespace)):
            position = bisect.bisect_left(keys, key)
            if position < len(keys) and keys[position] == key:
                del keys[position]
                del allocs[position]
        self.allocs_index = self.bump()

    def _namespace_lists(self, namespace):
        return self._by_namespace.setdefault(namespace, ([], []))

    def bulk_add(self, allocs: list) -> None:
        """Add many allocations at once (virtual mode) with one sort instead of many inserts."""
        for alloc in allocs:
            self.allocs[alloc.id] = alloc
            self._alloc_by_hex[alloc.hex_id] = alloc
        self._hex_ids = sorted(self._alloc_by_hex)
        everything = sorted(self.allocs.values(), key=lambda a: (a.create_index, a.id))
        self._by_create = everything
        self._by_create_keys = [(a.create_index, a.id) for a in everything]
        self._by_namespace = {}
        for alloc in everything:
            allocs, keys = self._namespace_lists(alloc.namespace)
            allocs.append(alloc)
            keys.append((alloc.create_index, alloc.id))

    # --- ACL -------------------------------------------------------------------------------------
    def token_of(self, request) -> str:
        return acl_mod.token_from_headers(request.headers)

    def resolve_token(self, secret: str):
        """The Token for a secret; anonymous for none; raises PermissionDenied for unknown secrets."""
        if not secret:
            return self.anonymous
        token = self.tokens.get(secret)
        if token is None:
            raise acl_mod.PermissionDenied()
        return token

    def allowed(self, namespace: str, capability: str, token: str) -> bool:
        if not self.acl_enabled:
            return True
        try:
            return self.resolve_token(token).allows(namespace, capability)
        except acl_mod.PermissionDenied:
            return False

    def authorize(self, request, namespace: str, capability: str, token=None) -> None:
        secret = self.token_of(request) if token is None else token
        if not self.allowed(namespace, capability, secret):
            raise acl_mod.PermissionDenied()

    def authenticate(self, request):
        """Token object for the request (None when ACLs are off); unknown secrets raise PermissionDenied."""
        if not self.acl_enabled:
            return None
        return self.resolve_token(self.token_of(request))

    # --- misc ------------------------------------------------------------------------------------
    def record_request(self, method: str, path: str, blocking: bool = False) -> None:
        key = f"{method} {path}"
        self.request_counts[key] = self.request_counts.get(key, 0) + 1
        if blocking:
            self.blocking_counts[key] = self.blocking_counts.get(key, 0) + 1

    def ensure_task_dir(self, alloc: Allocation, task: Task) -> str:
        if not task.task_dir:
            task.task_dir = os.path.join(self.state_dir, alloc.id, task.name)
        os.makedirs(task.task_dir, exist_ok=True)
        return task.task_dir


def duration_seconds(value, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    return parse_go_duration(str(value))
