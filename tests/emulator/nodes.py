# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Client nodes of a Nomad 1.10 agent: node state, `GET /v1/node/:id` (blocking), `/v1/node/:id/allocations`,
`POST /v1/node/:id/eligibility` and `/v1/node/:id/drain`, and the drainer that migrates a draining node's
allocations group by group (`migrate` block) onto other eligible nodes.

Facts, texts and status codes: /work/shared/reference/nomad-deployments-nodes-behaviour.md, Part B (§5-§9; the
sections are named where used). The list `/v1/nodes` stays in readers.py, which reads the node state kept here.
"""
from __future__ import annotations

import asyncio
import json

from .deployments import ACTIVE, is_canary
from .httpjson import HttpError, json_response
from .nomadtime import now_ns, parse_go_duration, rfc3339
from .state import ALLOC_MIGRATING, Allocation, Task, new_id
from .uuidindex import IndexError_, parse_uuid

NODE_SUFFIXES = ("evaluate", "allocations", "drain", "eligibility", "purge")
NOT_EMULATED_SUFFIXES = ("evaluate", "purge")
ELIGIBLE, INELIGIBLE = "eligible", "ineligible"
EVENT_REGISTERED = "Node registered"
EVENT_DRAIN_SET = "Node drain strategy set"
EVENT_DRAIN_UPDATED = "Node drain strategy updated"
EVENT_DRAIN_DISABLED = "Node drain disabled"
EVENT_DRAIN_COMPLETE = "Node drain complete"
EVENT_ELIGIBLE = "Node marked as eligible for scheduling"
EVENT_INELIGIBLE = "Node marked as ineligible for scheduling"
MAX_NODE_EVENTS = 10
TAINTED_DESCRIPTION = "alloc not needed as node is tainted"
DRAINING_WHILE_ELIGIBLE = "can not set node's scheduling eligibility to eligible while it is draining"
SECOND = 1_000_000_000
DEFAULT_MIGRATE = {"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SECOND,
                   "HealthyDeadline": 300 * SECOND}
DRAIN_BATCH_SECONDS = 0.05   # Nomad commits drain marks in 1 s batches; the emulator coalesces changes briefly
DRAIN_IDLE_SECONDS = 60.0
CLIENT_TERMINAL = ("complete", "failed", "lost")
SYSTEM_TYPES = ("system", "sysbatch")


# --- node state ---------------------------------------------------------------------------------------
def init_node(emulator, node: dict, entry: dict) -> None:
    """Scenario node entry -> the node's 1.10 state (called by scenario.build_nodes)."""
    address = str(entry.get("address", "127.0.0.1"))
    node.update({
        "NodeClass": str(entry.get("node_class", "")), "Status": str(entry.get("status", "ready")),
        "SchedulingEligibility": INELIGIBLE if entry.get("eligible") is False else ELIGIBLE,
        "DrainStrategy": None, "LastDrain": None, "HTTPAddr": f"{address}:4646", "Address": address,
        "Meta": {str(key): str(value) for key, value in (entry.get("meta") or {}).items()},
        "Attributes": node_attributes(node, address, entry.get("attributes")),
        "StatusUpdatedAt": now_ns() // SECOND, "CreateIndex": 1, "ModifyIndex": 1,
    })
    node["Events"] = [node_event(EVENT_REGISTERED, "Cluster", 1)]


def node_attributes(node: dict, address: str, extra) -> dict:
    attributes = {"unique.network.ip-address": address, "unique.hostname": node["Name"], "kernel.name": "linux",
                  "os.name": "ubuntu", "nomad.version": "1.6.5", "driver.raw_exec": "1", "driver.exec": "1",
                  "cpu.totalcompute": str(node.get("CPU", 4000)), "memory.totalbytes": str(node.get("MemoryMB", 8192) << 20)}
    attributes.update({str(key): str(value) for key, value in (extra or {}).items()})
    return attributes


def node_event(message: str, subsystem: str, index: int, details=None) -> dict:
    return {"Message": message, "Subsystem": subsystem, "Details": details, "Timestamp": rfc3339(now_ns()),
            "CreateIndex": index}


def add_node_event(node: dict, event: dict) -> None:
    """Node events keep the newest 10 (§5.3)."""
    events = node.setdefault("Events", None) or []
    events.append(event)
    node["Events"] = events[-MAX_NODE_EVENTS:]


def touch_node(emulator, node: dict) -> int:
    index = emulator.bump()
    node["ModifyIndex"] = index
    emulator.nodes_index = index
    return index


def is_draining(node: dict) -> bool:
    return node.get("DrainStrategy") is not None


def schedulable(node: dict) -> bool:
    """Nodes the scheduler may place on: ready and eligible (a draining node is ineligible)."""
    return node.get("Status", "ready") == "ready" and node.get("SchedulingEligibility", ELIGIBLE) == ELIGIBLE


def whole_seconds(ns: int) -> str:
    return rfc3339(ns // SECOND * SECOND)


# --- request helpers -------------------------------------------------------------------------------------
def decode_object(text: str, struct: str) -> dict:
    """Go's decodeBody into a struct: empty -> 400, `null` -> zero struct, other JSON -> encoding/json's texts."""
    if text == "":
        raise HttpError(400, "Request body is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise HttpError(400, f"invalid character in request body: {err.msg}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HttpError(400, f"json: cannot unmarshal {go_kind(data)} into Go value of type {struct}")
    return data


def go_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def field_of(body: dict, name: str, default=None):
    """encoding/json matches field names case-insensitively."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return default


def typed_field(body: dict, name: str, kinds: tuple, struct: str, go_type: str, default):
    value = field_of(body, name, default)
    if value is None:
        return default
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise HttpError(400, f"json: cannot unmarshal {go_kind(value)} into Go struct field {struct}.{name} "
                             f"of type {go_type}")
    return value


def migrate_block(group: dict) -> dict:
    """The group's `migrate` block in ns (Nomad's defaults when the job has none, §3.5)."""
    return {**DEFAULT_MIGRATE, **(group.get("Migrate") or {})}


def scenario_migrate(spec) -> dict | None:
    """A scenario group's `migrate:` (max_parallel, health_check, min_healthy_time, healthy_deadline) -> Migrate."""
    if not spec:
        return None
    block = dict(DEFAULT_MIGRATE)
    if "max_parallel" in spec:
        block["MaxParallel"] = int(spec["max_parallel"])
    if "health_check" in spec:
        block["HealthCheck"] = str(spec["health_check"])
    for key, name in (("min_healthy_time", "MinHealthyTime"), ("healthy_deadline", "HealthyDeadline")):
        if key in spec:
            value = spec[key]
            seconds = float(value) if isinstance(value, (int, float)) else parse_go_duration(str(value))
            block[name] = int(seconds * SECOND)
    return block


class Nodes:
    """The node endpoints (§5) and the drainer (§6)."""

    def __init__(self, api, readers, jobs):
        self.api = api
        self.readers = readers
        self.jobs = jobs
        self.emulator = api.emulator
        self.drainer = Drainer(self.emulator, jobs)

    # --- routing (§5.1) -----------------------------------------------------------------------------
    async def dispatch(self, request):
        path = request.path
        if path == "/v1/nodes":
            if request.method == "GET" and request.query.get("index"):
                self.readers.require_node_read(self._token(request))  # no waiting for a refused request
                await self.block(request, lambda: self.emulator.nodes_index)
            return None  # readers.py answers the list
        if not path.startswith("/v1/node/") or path.startswith(("/v1/node/pools", "/v1/node/pool/")):
            return None
        tail = path[len("/v1/node/"):]
        for suffix in NODE_SUFFIXES:
            if tail.endswith("/" + suffix):
                return await self.node_action(request, tail[:-len(suffix) - 1], suffix)
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        return await self.get_node(request, tail)

    async def node_action(self, request, node_id: str, suffix: str):
        if suffix == "allocations":
            if request.method != "GET":
                raise HttpError(405, "Invalid method")
            return await self.node_allocations(request, node_id)
        if request.method not in ("PUT", "POST"):
            raise HttpError(405, "Invalid method")
        if suffix in NOT_EMULATED_SUFFIXES:
            raise HttpError(501, f"the emulator does not implement /v1/node/:id/{suffix}")
        if suffix == "drain":
            return await self.update_drain(request, node_id)
        return await self.update_eligibility(request, node_id)

    async def block(self, request, current_index) -> None:
        from .server import QueryOptions  # server.py imports this module
        await self.api.block(QueryOptions(request), current_index)

    def _token(self, request):
        self.api.check_region(request)
        return self.api.authenticate(request)

    def require_node_write(self, token) -> None:
        if self.readers._node_policy(token) != "write":
            from .acl import PERMISSION_DENIED
            raise HttpError(403, PERMISSION_DENIED)

    def lookup(self, node_id: str):
        """Exact node ID through memdb's UUID index (§5.1): short or malformed IDs are a 500."""
        try:
            hex_id = parse_uuid(node_id, exact=True)
        except IndexError_ as err:
            raise HttpError(500, f"node lookup failed: index error: {err}", rpc=True) from err
        for node in self.emulator.nodes:
            if node["ID"].replace("-", "").lower() == hex_id:
                return node
        return None

    # --- GET /v1/node/:id (§5.3) -------------------------------------------------------------------------
    async def get_node(self, request, node_id: str):
        from .readers import node_full
        from .server import QueryOptions  # server.py imports this module
        self.api.refuse_bad_query(QueryOptions(request))  # the node get handler tests parse()'s result (rows 4-5)
        token = self._token(request)
        self.readers.require_node_read(token)
        if not node_id:
            raise HttpError(500, "missing node ID", rpc=True)
        node = self.lookup(node_id)
        if node is None:
            raise HttpError(404, "node not found", self.api.read_meta(self.emulator.nodes_index))
        await self.block(request, lambda: node["ModifyIndex"])
        return json_response(request, node_full(node, self.emulator.version), headers=self.api.read_meta(node["ModifyIndex"]))

    # --- GET /v1/node/:id/allocations (§5.6) ------------------------------------------------------------
    async def node_allocations(self, request, node_id: str):
        token = self._token(request)
        self.readers.require_node_read(token)
        wanted = node_id.lower()

        def on_node():
            return [alloc for alloc in self.emulator.allocs.values() if alloc.node["ID"].lower() == wanted]

        def current_index():
            allocs = on_node()
            return max((alloc.modify_index for alloc in allocs), default=max(1, self.emulator.allocs_index))

        await self.block(request, current_index)
        allocs = on_node()
        index = max((alloc.modify_index for alloc in allocs), default=max(1, self.emulator.allocs_index))
        readable = [alloc.full() for alloc in sorted(allocs, key=lambda item: item.id)
                    if token is None or token.allows(alloc.namespace, "read-job")]
        return json_response(request, readable, headers=self.api.read_meta(index))

    # --- POST /v1/node/:id/eligibility (§5.5) -------------------------------------------------------------
    async def update_eligibility(self, request, node_id: str):
        struct = "structs.NodeUpdateEligibilityRequest"
        body = decode_object(await request.text(), struct)
        node_id = typed_field(body, "NodeID", (str,), struct, "string", "") or node_id
        eligibility = typed_field(body, "Eligibility", (str,), struct, "string", "")
        token = self._token(request)
        self.require_node_write(token)
        if not node_id:
            raise HttpError(500, "missing node ID for setting scheduling eligibility", rpc=True)
        if eligibility not in (ELIGIBLE, INELIGIBLE):
            raise HttpError(500, f'invalid scheduling eligibility "{eligibility}"', rpc=True)
        node = self.lookup(node_id)
        if node is None:
            raise HttpError(500, "node not found", rpc=True)
        if is_draining(node) and eligibility == ELIGIBLE:
            raise HttpError(500, DRAINING_WHILE_ELIGIBLE, rpc=True)
        if node["SchedulingEligibility"] == eligibility:
            return update_response(request, 0)
        index = touch_node(self.emulator, node)
        node["SchedulingEligibility"] = eligibility
        node["StatusUpdatedAt"] = now_ns() // SECOND
        add_node_event(node, node_event(EVENT_ELIGIBLE if eligibility == ELIGIBLE else EVENT_INELIGIBLE,
                                        "Cluster", index))
        if eligibility == ELIGIBLE:
            self.jobs.unblock(exclude={"Namespace": None, "ID": None})  # blocked evals may now fit (fsm.go)
        return update_response(request, index)

    # --- POST /v1/node/:id/drain (§5.4) ----------------------------------------------------------------------
    async def update_drain(self, request, node_id: str):
        struct = "api.NodeUpdateDrainRequest"
        body = decode_object(await request.text(), struct)
        spec = field_of(body, "DrainSpec")
        if spec is not None and not isinstance(spec, dict):
            raise HttpError(400, f"json: cannot unmarshal {go_kind(spec)} into Go struct field "
                                 f"NodeUpdateDrainRequest.DrainSpec of type api.DrainSpec")
        if spec is not None:
            spec = {"Deadline": int(typed_field(spec, "Deadline", (int,), "NodeUpdateDrainRequest.DrainSpec",
                                                "time.Duration", 0)),
                    "IgnoreSystemJobs": typed_field(spec, "IgnoreSystemJobs", (bool,),
                                                    "NodeUpdateDrainRequest.DrainSpec", "bool", False)}
        mark_eligible = typed_field(body, "MarkEligible", (bool,), "NodeUpdateDrainRequest", "bool", False)
        meta = typed_field(body, "Meta", (dict,), "NodeUpdateDrainRequest", "map[string]string", {}) or {}
        token = self._token(request)
        self.require_node_write(token)
        if not node_id:
            raise HttpError(500, "missing node ID for drain update", rpc=True)
        node = self.lookup(node_id)
        if node is None:
            raise HttpError(500, "node not found", rpc=True)
        index = self.apply_drain(node, spec, mark_eligible, {str(k): str(v) for k, v in meta.items()},
                                 self.accessor(token))
        if spec is not None:
            self.drainer.track(node)
        return update_response(request, index)

    def accessor(self, token) -> str:
        """LastDrain.AccessorID at 1.8+: the authenticated identity (version table)."""
        if token is None:
            return "token:acls-disabled"
        return f"token:{self.jobs.token_accessor(token)}"

    def apply_drain(self, node: dict, spec, mark_eligible: bool, meta: dict, accessor: str) -> int:
        """The state store's drain update (§5.4 steps 5-6, state change)."""
        now = now_ns()
        was_draining = is_draining(node)
        index = touch_node(self.emulator, node)
        if spec is not None:
            started = node["DrainStrategy"]["StartedAt"] if was_draining else rfc3339(now)
            force = rfc3339(now + spec["Deadline"]) if spec["Deadline"] > 0 else None
            node["DrainStrategy"] = {**spec, "ForceDeadline": force, "StartedAt": started}
            node["_force_at_ns"] = now + spec["Deadline"] if spec["Deadline"] > 0 else None  # not in the JSON
            node["SchedulingEligibility"] = INELIGIBLE
        else:
            node["DrainStrategy"] = None
            if mark_eligible:
                node["SchedulingEligibility"] = ELIGIBLE
        node["StatusUpdatedAt"] = now // SECOND
        message = (EVENT_DRAIN_UPDATED if was_draining else EVENT_DRAIN_SET) if spec is not None else (
            EVENT_DRAIN_DISABLED if was_draining else None)
        if message:
            add_node_event(node, node_event(message, "Drain", index))
        if was_draining or spec is not None:
            self.update_last_drain(node, now, "draining" if spec is not None else "canceled", meta, accessor,
                                   new=not was_draining)
        if spec is None and mark_eligible:
            self.jobs.unblock(exclude={"Namespace": None, "ID": None})
        return index

    @staticmethod
    def update_last_drain(node: dict, now: int, status: str, meta: dict, accessor: str, *, new: bool) -> None:
        if new or node.get("LastDrain") is None:
            node["LastDrain"] = {"StartedAt": whole_seconds(now), "UpdatedAt": whole_seconds(now), "Status": status,
                                 "AccessorID": accessor, "Meta": meta or None}
            return
        last = node["LastDrain"]
        last.update({"UpdatedAt": whole_seconds(now), "Status": status})
        if meta:
            last["Meta"] = meta
        if accessor:
            last["AccessorID"] = accessor


def update_response(request, index: int):
    body = {"NodeModifyIndex": index, "EvalIDs": None, "EvalCreateIndex": 0, "Index": index}
    return json_response(request, body, headers={"X-Nomad-Index": str(index)})


# --- the drainer (§6) ----------------------------------------------------------------------------------
class Drainer:
    """One coroutine per draining node on the emulator's event loop; it re-examines the node whenever the
    emulator's state changes (coalesced), at its deadline, and when it is cancelled (§6.1)."""

    def __init__(self, emulator, jobs):
        self.emulator = emulator
        self.jobs = jobs
        self.watchers: dict = {}

    def track(self, node: dict) -> None:
        """Start the node's watcher unless it runs (a running one is woken by the update's index bump)."""
        watcher = self.watchers.get(node["ID"])
        if watcher is None or watcher.done():
            self.watchers[node["ID"]] = self.emulator.supervisor.spawn(self.watch(node))

    async def watch(self, node: dict) -> None:
        while is_draining(node):
            if self.deadline_reached(node):
                self.force(node)
                return
            if self.drain_pass(node):
                return
            await self.emulator.wait_for_change(self.seconds_to_deadline(node))
            await asyncio.sleep(DRAIN_BATCH_SECONDS)

    @staticmethod
    def deadline_reached(node: dict) -> bool:
        """A force drain (negative deadline) is due at once; an infinite one (0) never (§6.4)."""
        if node["DrainStrategy"]["Deadline"] < 0:
            return True
        force_at = node.get("_force_at_ns")
        return force_at is not None and now_ns() >= force_at

    def seconds_to_deadline(self, node: dict) -> float:
        strategy = node["DrainStrategy"]
        if strategy is None or node.get("_force_at_ns") is None:
            return DRAIN_IDLE_SECONDS
        return max(0.0, min(DRAIN_IDLE_SECONDS, (node["_force_at_ns"] - now_ns()) / SECOND))

    # --- one pass (§6.2, §6.3) ----------------------------------------------------------------------------
    def drain_pass(self, node: dict) -> bool:
        """Mark what may move now; complete the drain when only system allocations are left. True when done."""
        on_node, groups = self.snapshot(node)
        for key, draining in self.groups_on_node(on_node).items():
            self.migrate_group(key, draining, groups.get(key, []))
        # sysbatch allocations are neither stopped last nor migrated: they hold the drain until they finish (§6.5)
        remaining = [alloc for alloc in on_node
                     if alloc.job["Type"] != "system" and alloc.client_status not in CLIENT_TERMINAL]
        if remaining:
            return False
        ignore_system = node["DrainStrategy"]["IgnoreSystemJobs"]
        system = [alloc for alloc in on_node if alloc.job["Type"] == "system" and not alloc.terminal]
        if not ignore_system:
            self.migrate(system)
        self.complete(node, deadline_reached=False)
        return True

    def snapshot(self, node: dict):
        """The node's allocations, and the live (non-terminal) allocations of every group, in one pass."""
        on_node, groups = [], {}
        for alloc in self.emulator.allocs.values():
            if alloc.node is node or alloc.node["ID"] == node["ID"]:
                on_node.append(alloc)
            if not alloc.terminal:
                groups.setdefault(group_key(alloc), []).append(alloc)
        return on_node, groups

    @staticmethod
    def groups_on_node(on_node: list) -> dict:
        """Service allocations on the node that still run and are not marked yet, by group (§6.2 drainable)."""
        drainable = {}
        for alloc in on_node:
            if alloc.job["Type"] != "service" or alloc.desired_status != "run":
                continue
            if alloc.client_status in CLIENT_TERMINAL or alloc.desired_transition.get("Migrate"):
                continue
            drainable.setdefault(group_key(alloc), []).append(alloc)
        return drainable

    def migrate_group(self, key, drainable: list, live: list) -> None:
        """min(drainable, healthy - (count - max_parallel)) are marked now (§6.2)."""
        max_parallel = int(migrate_block(drainable[0].group)["MaxParallel"])
        healthy = [alloc for alloc in live if has_health(alloc) and not alloc.desired_transition.get("Migrate")]
        count = len(live)
        number = min(len(drainable), len(healthy) - (count - max_parallel))
        if number > 0:
            self.migrate(sorted(drainable, key=lambda alloc: alloc.name)[:number])

    # --- marking and the scheduler's answer (§7) ---------------------------------------------------------------
    def migrate(self, allocs: list) -> None:
        """DesiredTransition.Migrate, then what the scheduler does with the node-drain eval: stop the allocation
        and place a replacement elsewhere (service, batch) or just stop it (system, sysbatch)."""
        for alloc in allocs:
            alloc.desired_transition["Migrate"] = True
            self.emulator.touch(alloc)
        evals = {}
        for alloc in allocs:
            if alloc.desired_status != "run":
                continue
            if alloc.job["Type"] in SYSTEM_TYPES:
                self.jobs.stop_alloc(alloc, TAINTED_DESCRIPTION)
                continue
            evaluation = evals.get((alloc.namespace, alloc.job_id))
            if evaluation is None:
                evaluation = evals[(alloc.namespace, alloc.job_id)] = self.drain_eval(alloc)
            self.replace(alloc, evaluation["ID"])

    def drain_eval(self, alloc: Allocation) -> dict:
        """One evaluation per job, TriggeredBy node-drain (§6.2)."""
        index = self.emulator.bump()
        evaluation = self.jobs.store.new_eval(alloc.job, "node-drain", index)
        evaluation.update({"Status": "complete", "ModifyIndex": index})
        return evaluation

    def replace(self, old: Allocation, eval_id: str) -> None:
        from .scheduler import Scheduler, group_ask
        scheduler = Scheduler(self.emulator)
        nodes, _metric = scheduler.feasible_nodes(old.job, old.group)
        cpu, memory = group_ask(old.group)
        target, _exhausted = scheduler._best_fit(nodes, scheduler.node_usage(), cpu, memory)
        old.desired_status = "stop"
        old.desired_description = ALLOC_MIGRATING
        self.emulator.touch(old)
        if target is None:  # nowhere to go: Nomad's blocked eval; the emulator only stops the allocation
            self.stop_client_side(old)
            return
        replacement = self.new_replacement(old, target, eval_id)
        replacement.previous_allocation = old.id
        old.next_allocation = replacement.id
        self.emulator.touch(old)
        self.emulator.add_alloc(replacement)
        self.emulator.allocs_index = replacement.create_index
        self.join_active_deployment(old, replacement)
        self.start(replacement)
        self.stop_client_side(old)

    def join_active_deployment(self, old: Allocation, replacement: Allocation) -> None:
        """§7: the replacement joins the job's active deployment (PlacedAllocs+1, a canary stays a canary) and
        its health is judged by the group's `update` block instead of `migrate`."""
        deployments = self.jobs.deployments
        deployment = deployments.latest(old.namespace, old.job_id)
        if deployment is None or deployment["Status"] not in ACTIVE or \
                deployment["JobVersion"] != replacement.job["Version"] or \
                replacement.task_group not in deployment["TaskGroups"]:
            return
        deployments.join(deployment, deployment["TaskGroups"][replacement.task_group], replacement, is_canary(old))
        deployments.touch(deployment, self.emulator.index, modify_time=now_ns())

    def stop_client_side(self, alloc: Allocation) -> None:
        supervisor = self.emulator.supervisor
        if alloc.virtual:
            supervisor.stop_virtual(alloc)
        else:
            supervisor.spawn(supervisor.stop_allocation(alloc))

    def new_replacement(self, old: Allocation, node: dict, eval_id: str) -> Allocation:
        from .scenario import new_allocation
        create_index = self.emulator.bump()
        if not old.virtual:
            alloc = new_allocation(self.emulator, old.job, old.group, old.group_spec, old.index_in_group, node,
                                   create_index)
            alloc.eval_id = eval_id
            return alloc
        tasks = [Task(name=name, command=[]) for name in old.tasks]
        alloc = Allocation(alloc_id=new_id(), job=old.job, group=old.group, index_in_group=old.index_in_group,
                           namespace=old.namespace, node=node, tasks=tasks, create_index=create_index, virtual=True,
                           eval_id=eval_id)
        alloc.name = old.name
        alloc.group_spec = old.group_spec
        return alloc

    def start(self, alloc: Allocation) -> None:
        """Process allocations start under the supervisor (healthy after its usual second); virtual ones run at
        once and get their health verdict after the group's min_healthy_time (or unhealthy at healthy_deadline)."""
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
        self.emulator.touch(alloc, client_update=True)
        block = migrate_block(alloc.group)
        healthy = block["MinHealthyTime"] < block["HealthyDeadline"]
        delay = (block["MinHealthyTime"] if healthy else block["HealthyDeadline"]) / SECOND
        asyncio.get_running_loop().call_later(delay, self.set_health, alloc, healthy)

    def set_health(self, alloc: Allocation, healthy: bool) -> None:
        if alloc.terminal or alloc.deployment_status or alloc.deployment_id:  # deployments.py judges those
            return
        index = self.emulator.bump()
        alloc.deployment_status = {"Healthy": healthy, "Timestamp": rfc3339(now_ns()), "Canary": False,
                                   "ModifyIndex": index}
        self.emulator.touch(alloc, client_update=True)

    # --- deadline and completion (§6.3, §6.4) --------------------------------------------------------------------
    def force(self, node: dict) -> None:
        """Every remaining allocation moves at once (system ones unless ignored), then the drain is complete."""
        ignore_system = node["DrainStrategy"]["IgnoreSystemJobs"]
        on_node, _groups = self.snapshot(node)
        remaining = [alloc for alloc in on_node if not alloc.terminal
                     and not (ignore_system and alloc.job["Type"] == "system")]
        self.migrate(remaining)
        self.complete(node, deadline_reached=True)

    def complete(self, node: dict, *, deadline_reached: bool) -> None:
        now = now_ns()
        index = touch_node(self.emulator, node)
        node["DrainStrategy"] = None
        node["StatusUpdatedAt"] = now // SECOND
        add_node_event(node, node_event(EVENT_DRAIN_COMPLETE, "Drain", index,
                                        {"deadline_reached": "true"} if deadline_reached else None))
        Nodes.update_last_drain(node, now, "complete", {}, "", new=False)


def group_key(alloc: Allocation) -> tuple:
    return alloc.namespace, alloc.job_id, alloc.task_group


def has_health(alloc: Allocation) -> bool:
    """DeploymentStatus.HasHealth: a verdict, healthy or not (§6.2)."""
    return bool(alloc.deployment_status) and alloc.deployment_status.get("Healthy") is not None
