# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Node eligibility and drains for nomad_node: what the options ask for, whether the node already is so, the
writes (`/v1/node/:id/drain`, `/eligibility`), and the drain watch (blocking queries on the node until Nomad
reports the drain complete, then, for `wait_for: healthy`, the replacements' health by the allocation wait)."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import is_terminal, read_allocation
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.reads import wait_for_allocations
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOptionError, OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.nodes.nodes import (
    NO_NAMESPACE,
    node_allocations,
    node_facts,
    node_path,
    read_node,
    require_node,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.concurrency import concurrent_map
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import ListOptions
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import allocation_summary_entry
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id
from ansible_collections.nomadops.nomad.plugins.module_utils.common.waiting import Verdict, wait_until
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.health import (
    describe_progress,
    is_healthy,
    rfc3339_seconds,
    should_run,
)

NODE_ARGUMENT_SPEC = dict(
    node=dict(type="str", required=True),
    eligible=dict(type="bool"),
    drain=dict(type="bool"),
    drain_deadline=dict(type="int"),
    drain_force=dict(type="bool", default=False),
    drain_no_deadline=dict(type="bool", default=False),
    ignore_system_jobs=dict(type="bool", default=False),
    drain_message=dict(type="str"),
    keep_ineligible=dict(type="bool", default=False),
    wait=dict(type="bool"),
    wait_for=dict(type="str", choices=["complete", "healthy"], default="complete"),
    wait_timeout=dict(type="int"),
)
NODE_MUTUALLY_EXCLUSIVE = [["drain_force", "drain_deadline"], ["drain_force", "drain_no_deadline"],
                           ["drain_no_deadline", "drain_deadline"]]
NODE_REQUIRED_ONE_OF = [["eligible", "drain"]]
DEFAULT_DEADLINE = 3600  # seconds, like `nomad node drain -deadline`
WAIT_AFTER_DEADLINE = 300
WAIT_WITHOUT_DEADLINE = 3600
NANOSECONDS = 1_000_000_000
SYSTEM_TYPES = frozenset(("system", "sysbatch"))
DRAIN_COMPLETE_EVENT = "Node drain complete"


class NodeRequestError(NomadOptionError):
    """Options that ask for something Nomad refuses or that cannot be done; str() is the one-line message."""


# --------------------------------------------------------------------------------------------- what is asked
class DrainRequest:
    """The drain options as Nomad's DrainSpec and the wait they imply."""

    def __init__(self, params):
        self.force = params["drain_force"]
        self.no_deadline = params["drain_no_deadline"]
        self.deadline = params["drain_deadline"]
        if params["drain"] and self.deadline is not None and self.deadline <= 0:
            raise NodeRequestError(f"drain_deadline must be more than 0 seconds (got {self.deadline}); use "
                                   "drain_no_deadline or drain_force instead")
        if self.deadline is None:
            self.deadline = DEFAULT_DEADLINE
        self.ignore_system_jobs = params["ignore_system_jobs"]
        self.message = params["drain_message"]

    @property
    def deadline_ns(self):
        if self.force:
            return -1
        if self.no_deadline:
            return 0
        return self.deadline * NANOSECONDS

    def spec(self):
        return {"Deadline": self.deadline_ns, "IgnoreSystemJobs": self.ignore_system_jobs}

    def default_wait_timeout(self):
        if self.no_deadline:
            return WAIT_WITHOUT_DEADLINE
        return (0 if self.force else self.deadline) + WAIT_AFTER_DEADLINE

    def same_as(self, strategy):
        """Whether the node's DrainStrategy is this drain (force = any negative deadline)."""
        if not strategy or bool(strategy.get("IgnoreSystemJobs")) != self.ignore_system_jobs:
            return False
        deadline = strategy.get("Deadline") or 0
        return deadline < 0 if self.force else deadline == self.deadline_ns

    def moves(self, allocation):
        """Whether this drain stops (and for service and batch jobs, replaces) the allocation."""
        if is_terminal(allocation) or not should_run(allocation):
            return False
        return not (self.ignore_system_jobs and job_type(allocation) in SYSTEM_TYPES)


def job_type(allocation):
    return (allocation.get("Job") or {}).get("Type")


def is_draining(node):
    return node.get("DrainStrategy") is not None


def is_eligible(node):
    return node.get("SchedulingEligibility") == "eligible"


# --------------------------------------------------------------------------------------------- the plan
class NodeChange:
    """What nomad_node would send: `drain` (a DrainRequest), `cancel` (with `mark_eligible`), or `eligibility`."""

    def __init__(self, kind=None, request=None, mark_eligible=False, eligibility=None):
        self.kind = kind
        self.request = request
        self.mark_eligible = mark_eligible
        self.eligibility = eligibility

    @property
    def changes(self):
        return self.kind is not None


def plan_change(node, params, movable):
    """The NodeChange the options ask for on `node` (`movable`: the allocations a drain would move)."""
    name = node.get("Name")
    drain, eligible = params["drain"], params["eligible"]
    if drain:
        if eligible:
            raise NodeRequestError(f'node "{name}": drain: true and eligible: true contradict (a draining node is '
                                   "never eligible: Nomad refuses it)")
        request = DrainRequest(params)
        if is_draining(node) and request.same_as(node["DrainStrategy"]):
            return NodeChange()
        if not is_draining(node) and not is_eligible(node) and not movable:
            return NodeChange()
        return NodeChange("drain", request)
    if drain is False:
        mark = eligible if eligible is not None else not params["keep_ineligible"]
        if is_draining(node):
            return NodeChange("cancel", mark_eligible=mark)
        drained_before = (node.get("LastDrain") or {}).get("Status") in ("complete", "canceled")
        if eligible is None and not (mark and drained_before):
            return NodeChange()
        return eligibility_change(node, mark)
    if eligible and is_draining(node):
        raise NodeRequestError(f'node "{name}" is draining: Nomad refuses to make a draining node eligible '
                               "(set drain: false to cancel the drain, with eligible: true)")
    return eligibility_change(node, eligible)


def eligibility_change(node, eligible):
    if is_eligible(node) == eligible:
        return NodeChange()
    return NodeChange("eligibility", eligibility="eligible" if eligible else "ineligible")


# --------------------------------------------------------------------------------------------- the writes
def send_change(client, node, change):
    node_id = node["ID"]
    if change.kind == "eligibility":
        body = {"NodeID": node_id, "Eligibility": change.eligibility}
        return client.write("POST", node_path(node_id, "/eligibility"), NO_NAMESPACE, body).data
    body = {"NodeID": node_id, "DrainSpec": None, "MarkEligible": change.mark_eligible}
    if change.kind == "drain":
        body["DrainSpec"] = change.request.spec()
        body["MarkEligible"] = False
        if change.request.message:
            body["Meta"] = {"message": change.request.message}
    return client.write("POST", node_path(node_id, "/drain"), NO_NAMESPACE, body).data


# --------------------------------------------------------------------------------------------- the watch
class DrainIncompleteError(OperationFailed):
    """The drain was cancelled by someone else, did not complete within wait_timeout, or its replacements did not
    become healthy in time; `details` holds what the task returns with the failure."""


def drain_reader(client, node, request, report):
    """A read(index, seconds) for the wait engine: the node, re-read when something changed.

    While allocations are left to move, it blocks on the node's allocations (their index moves with every
    migration step, so progress - the allocations left - can be reported); once none is left, on the node itself
    (its index moves when Nomad marks the drain complete). `index` is (node index, allocations index, left)."""
    name = node.get("Name")
    reported = []

    def read(index, seconds):
        if index is not None:
            node_index, allocations_index, left = index
            if left:
                node_allocations(client, node["ID"], allocations_index, seconds)
            else:
                client.blocking_read(node_path(node["ID"]), NO_NAMESPACE, node_index, seconds)
        response = client.read(node_path(node["ID"]), NO_NAMESPACE)
        allocations, allocations_index = node_allocations(client, node["ID"])
        left = [allocation for allocation in allocations if request.moves(allocation)]
        current = response.data or {}
        if is_draining(current) and reported[-1:] != [len(left)]:
            reported.append(len(left))
            report(f'node "{name}": {len(left)} allocation(s) left to move')
        return current, (response.index, allocations_index, len(left))

    return read


def drain_judge(node):
    if is_draining(node):
        return Verdict()
    status = (node.get("LastDrain") or {}).get("Status")
    return Verdict(met=status == "complete", hopeless=status != "complete")


def deadline_reached(node):
    """Whether Nomad's last drain-complete event says the deadline forced the rest off the node."""
    for event in reversed(node.get("Events") or []):
        if event.get("Message") == DRAIN_COMPLETE_EVENT:
            return (event.get("Details") or {}).get("deadline_reached") == "true"
    return False


def left_on_node(client, node_id, request):
    allocations = node_allocations(client, node_id)[0]
    return [allocation for allocation in allocations if request.moves(allocation)]


def wait_for_drain(client, node, request, timeout, report):
    """Block until the drain completed; the node as read last. Raises DrainIncompleteError."""
    outcome = wait_until(drain_reader(client, node, request, report), drain_judge, timeout)
    if outcome.met:
        return outcome.value
    name = node.get("Name")
    if outcome.hopeless:
        status = (outcome.value.get("LastDrain") or {}).get("Status")
        raise DrainIncompleteError(f'the drain of node "{name}" ended without completing (last drain {status})',
                                   address=client.options.address)
    left = left_on_node(client, node["ID"], request)
    shown = ", ".join(allocation_summary_entry(allocation)["name"] or short_id(allocation["ID"]) for allocation in left[:5])
    raise DrainIncompleteError(f'timed out after {timeout} s waiting for the drain of node "{name}": '
                               f"{len(left)} allocation(s) left on the node: {shown}",
                               address=client.options.address)


def _read_allocation(client, allocation_id, namespace):
    """The full allocation, or {} once Nomad garbage-collected it."""
    try:
        return read_allocation(client, allocation_id, namespace=namespace or "default")
    except NomadNotFoundError:
        return {}


def moved_allocation(client, allocation, force_deadline=None):
    """One moved allocation's summary (read again) with its `replacement` (ID, node, client status, healthy) and,
    when the drain hit its deadline, `forced` (stopped by the deadline rather than migrated in turn)."""
    now = _read_allocation(client, allocation["ID"], allocation.get("Namespace"))
    entry = allocation_summary_entry(now or allocation)
    entry["id"] = allocation["ID"]
    entry["replacement"] = None
    moved_at = now.get("ModifyTime")
    next_id = now.get("NextAllocation")
    if next_id:
        after = _read_allocation(client, next_id, allocation.get("Namespace"))
        entry["replacement"] = {"id": next_id, "node": after.get("NodeName") or after.get("NodeID"),
                                "client_status": after.get("ClientStatus"), "healthy": is_healthy(after)}
        moved_at = after.get("CreateTime")
    if force_deadline is not None:
        entry["forced"] = (moved_at or 0) / NANOSECONDS >= force_deadline
    return entry


def moved_allocations(client, moved, force_deadline=None):
    """moved_allocation() for each of `moved`, a few reads at a time, in order."""
    return concurrent_map(lambda allocation: moved_allocation(client, allocation, force_deadline), moved)


def wait_for_replacements(client, entries, timeout):
    """Wait until every replacement is healthy (the allocation health of nomad_alloc_info); the progress line
    when it timed out, else None."""
    ids = [entry["replacement"]["id"] for entry in entries if entry.get("replacement")]
    if not ids:
        return None
    selector = {"id": ids}
    outcome = wait_for_allocations(client, selector, ListOptions(namespace="*"), "healthy", timeout)
    by_id = {allocation["ID"]: allocation for allocation in outcome.value}
    for entry in entries:
        replacement = entry.get("replacement")
        if replacement and replacement["id"] in by_id:
            after = by_id[replacement["id"]]
            replacement.update(client_status=after.get("ClientStatus"), healthy=is_healthy(after),
                               node=after.get("NodeName") or after.get("NodeID"))
    return None if outcome.met else (outcome.progress or describe_progress("healthy", outcome.value))


def force_deadline_of(node):
    """Unix seconds of the drain's ForceDeadline, or None (no deadline, force)."""
    return rfc3339_seconds((node.get("DrainStrategy") or {}).get("ForceDeadline") or "")


# --------------------------------------------------------------------------------------------- the task
def summaries(allocations):
    return [dict(allocation_summary_entry(allocation), id=allocation["ID"], replacement=None)
            for allocation in allocations]


def manage_node(client, params, check_mode, warn, report):
    """What nomad_node does: resolve the node, decide, send (not in check mode), wait; returns the task's result.

    Raises NodeRequestError for options Nomad refuses, DrainIncompleteError when a wait fails."""
    node = require_node(client, params["node"])
    request = DrainRequest(params) if params["drain"] else None
    movable = []
    if request is not None:
        movable = [allocation for allocation in node_allocations(client, node["ID"])[0] if request.moves(allocation)]
    change = plan_change(node, params, movable)
    result = {"changed": change.changes, "node": node_facts(node), "allocations": []}
    if change.kind == "drain":
        result["allocations"] = summaries(movable)
    if check_mode or not change.changes and request is None:
        return result
    if change.changes:
        send_change(client, node, change)
        node = read_node(client, node["ID"])[0] or node
        result["node"] = node_facts(node)
    wait = params["wait"] if params["wait"] is not None else request is not None
    if request is None or not wait or not (is_draining(node) or change.changes):
        return result
    timeout = params["wait_timeout"] or request.default_wait_timeout()
    force_deadline = force_deadline_of(node)
    moved = movable
    if not change.changes:
        moved = [allocation for allocation in node_allocations(client, node["ID"])[0] if request.moves(allocation)]
    try:
        node = wait_for_drain(client, node, request, timeout, report)
    except DrainIncompleteError as error:
        error.details = {"node": node_facts(read_node(client, node["ID"])[0] or node),
                         "allocations": moved_allocations(client, moved)}
        raise
    forced_since = force_deadline if deadline_reached(node) else None
    result["allocations"] = moved_allocations(client, moved, forced_since)
    result["node"] = node_facts(node)
    if forced_since is not None:
        forced = [entry["name"] or short_id(entry["id"]) for entry in result["allocations"] if entry.get("forced")]
        warn(f'the drain of node "{node.get("Name")}" reached its deadline; force-stopped: {", ".join(forced) or "none"}')
    if params["wait_for"] == "healthy":
        unhealthy = [entry for entry in result["allocations"] if entry["replacement"] and not entry["replacement"]["healthy"]]
        if unhealthy:
            report(f'node "{node.get("Name")}": drain complete, {len(unhealthy)} replacement(s) not healthy yet')
        problem = wait_for_replacements(client, result["allocations"], timeout)
        if problem:
            raise DrainIncompleteError(f"timed out after {timeout} s waiting for the replacements to be healthy: "
                                       f"{problem}", details=result, address=client.options.address)
    return result
