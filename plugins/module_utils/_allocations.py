# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one way the collection reads allocations: stubs for a selector, full objects for IDs, one
allocation (plain or as a blocking query), their services and check results, and the waits over them.
The namespace of an allocation is always sent with every request about it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.nomadops.nomad.plugins.module_utils._client import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils._selector import (
    ALLOCATIONS_PATH,
    AllocationNotFoundError,
    SelectorError,
    list_query,
    only_ids,
    resolve_allocation_id,
    select_allocations,
    short_id_filter,
    short_job_filter,
)
from ansible_collections.nomadops.nomad.plugins.module_utils._waits import (
    CHECKS_KEY,
    allocation_judge,
    describe_progress,
    needs_checks,
    still_running,
    terminal_judge,
    wait_until,
)

SERVICES_KEY = "Services"
MAX_CONCURRENT_READS = 8  # below NomadClient's default pool size, so connections are reused

LIST_ARGUMENT_SPEC = dict(
    per_page=dict(type="int"),
    limit=dict(type="int"),
    reverse=dict(type="bool", default=False),
    resources=dict(type="bool", default=False),
    task_states=dict(type="bool", default=True),
    services=dict(type="bool", default=False),
)


MAX_PER_PAGE = 2 ** 31 - 1   # Nomad parses per_page with strconv.ParseInt(v, 10, 32)


class IndexTracker:
    """Remembers the highest X-Nomad-Index of the responses it is given (from any thread)."""

    def __init__(self):
        self.index = None
        self._lock = threading.Lock()

    def __call__(self, response):
        with self._lock:
            if response.index is not None and (self.index is None or response.index > self.index):
                self.index = response.index


def concurrently(function, items):
    """[function(item) for item in items], up to MAX_CONCURRENT_READS at a time, in input order.
    The first exception is raised once every started call has ended."""
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_READS, len(items))) as pool:
        return list(pool.map(function, items))


class ListOptions:
    """How to list: namespace, page size, limit, order and which stub fields Nomad should include."""

    __slots__ = ("namespace", "per_page", "limit", "reverse", "resources", "task_states")

    def __init__(self, namespace=None, per_page=None, limit=None, reverse=False, resources=False, task_states=True):
        if per_page is not None and per_page < 1:
            raise SelectorError(f"per_page must be 1 or more (got {per_page})")
        if per_page is not None and per_page > MAX_PER_PAGE:
            # Nomad 1.6 ignored such a value (no paging at all), Nomad 1.8+ answers 400
            raise SelectorError(f"per_page must be at most {MAX_PER_PAGE}, Nomad's 32-bit limit (got {per_page})")
        if limit is not None and limit < 1:
            raise SelectorError(f"limit must be 1 or more (got {limit})")
        self.namespace = namespace
        self.per_page = per_page
        self.limit = limit
        self.reverse = bool(reverse)
        # Only sent when they differ from Nomad's defaults.
        self.resources = True if resources else None
        self.task_states = None if task_states or task_states is None else False

    @classmethod
    def from_params(cls, params):
        return cls(
            per_page=params.get("per_page"),
            limit=params.get("limit"),
            reverse=params.get("reverse"),
            resources=params.get("resources"),
            task_states=params.get("task_states"),
        )

    def select_kwargs(self):
        return dict(namespace=self.namespace, per_page=self.per_page, limit=self.limit, reverse=self.reverse,
                    resources=self.resources, task_states=self.task_states)


def namespace_of(allocation, default=None):
    """The namespace to send for an allocation: its own, else `default`, else the options' (None)."""
    return allocation.get("Namespace") or default


def namespace_params(namespace):
    """Query parameters that send `namespace`; None leaves the connection option's namespace in place
    (NomadClient.query would drop a None value, and with it the namespace)."""
    return {} if namespace is None else {"namespace": namespace}


def read_allocation(client, allocation, tracker=None, namespace=None):
    """GET /v1/allocation/<id> in the allocation's namespace (a stub dict or an ID with `namespace`)."""
    if isinstance(allocation, dict):
        allocation_id, namespace = allocation["ID"], namespace_of(allocation, namespace)
    else:
        allocation_id = allocation
    response = client.read(f"/v1/allocation/{allocation_id}", namespace_params(namespace))
    if tracker is not None:
        tracker(response)
    return response.data or {}


def blocking_read_allocation(client, allocation, index, seconds):
    """(allocation, index): GET /v1/allocation/<id> as a blocking query on the allocation's ModifyIndex."""
    response = client.blocking_read(f"/v1/allocation/{allocation['ID']}",
                                    namespace_params(namespace_of(allocation)), index, seconds)
    return response.data or {}, response.index


def read_checks(client, allocation):
    """The allocation's Nomad service check results (GET /v1/allocation/<id>/checks), keyed by check ID.

    Nomad answers `null` when the allocation has no Nomad-provider checks, its checks have not started
    yet, or it is being stopped; that, and an allocation garbage-collected since it was listed, is {}.
    """
    try:
        response = client.read(f"/v1/allocation/{allocation['ID']}/checks",
                               namespace_params(namespace_of(allocation)))
    except NomadNotFoundError:
        return {}
    return response.data or {}


def attach_services(client, allocations):
    """Add each allocation's Nomad services (GET /v1/allocation/<id>/services in its namespace) as `Services`."""

    def services_of(allocation):
        try:
            response = client.read(
                f"/v1/allocation/{allocation['ID']}/services", {"namespace": namespace_of(allocation, "default")}
            )
        except NomadNotFoundError:
            return []  # garbage-collected since it was listed
        return response.data or []

    for allocation, services in zip(allocations, concurrently(services_of, allocations)):
        allocation[SERVICES_KEY] = services
    return allocations


def attach_checks(client, allocations, only=None):
    """Add each allocation's check results as `Checks` (those for which only(allocation) holds, when given)."""
    chosen = [allocation for allocation in allocations if only is None or only(allocation)]
    for allocation, checks in zip(chosen, concurrently(lambda allocation: read_checks(client, allocation), chosen)):
        allocation[CHECKS_KEY] = checks
    return allocations


def full_objects(client, stubs, tracker=None):
    """GET /v1/allocation/<id> for each stub; allocations garbage-collected since the listing are left out."""

    def full_object(stub):
        try:
            return read_allocation(client, stub, tracker)
        except NomadNotFoundError:
            return None

    return [allocation for allocation in concurrently(full_object, stubs) if allocation is not None]


def gather_allocations(client, selector, list_options, services=False, checks=False):
    """(allocations, index): stubs for a selector, full objects when `id` is given."""
    tracker = IndexTracker()
    stubs = select_allocations(client, selector, on_response=tracker, **list_options.select_kwargs())
    allocations = full_objects(client, stubs, tracker) if selector.get("id") else stubs
    attach_extras(client, allocations, services, checks)
    return allocations, tracker.index


def attach_extras(client, allocations, services=False, checks=False):
    if services:
        attach_services(client, allocations)
    if checks:
        attach_checks(client, allocations)
    return allocations


# --------------------------------------------------------------------------------------------- waiting
def _resolve_for_wait(client, selector, condition, namespace):
    """Full IDs of the `id` entries; for `absent`, entries that no longer resolve are already absent."""
    found = []
    for entry in selector.get("id") or []:
        try:
            stub = resolve_allocation_id(client, entry, namespace)
        except AllocationNotFoundError:
            if condition != "absent":
                raise
            continue
        if stub["ID"] not in found:
            found.append(stub["ID"])
    return found


def listing_reader(client, query, per_page=None, limit=None, with_checks=False, keep_ids=None):
    """A read(index, seconds) for the wait engine over GET /v1/allocations with `query`.

    The blocking query asks for one item only (it just waits for the allocations table to change), then
    the whole selection is listed again.  With `with_checks`, every allocation that can run and runs gets
    its check results (they are not part of the listing, nor of any blocking index).  With `keep_ids` (a set),
    only those allocations are kept: for selections too long for an ID filter.
    """

    def read(index, seconds):
        if index is not None:
            client.blocking_read(ALLOCATIONS_PATH, dict(query, per_page=1), index, seconds)
        tracker = IndexTracker()
        if keep_ids is None:
            stubs = list(client.paginate(ALLOCATIONS_PATH, query, per_page=per_page, limit=limit, on_response=tracker))
        else:
            stubs = only_ids(client.paginate(ALLOCATIONS_PATH, query, per_page=per_page, on_response=tracker), keep_ids)
            stubs = stubs[:limit] if limit is not None else stubs
        if with_checks:
            attach_checks(client, stubs, only=needs_checks)
        return stubs, tracker.index

    return read


def wait_for_allocations(client, selector, list_options, condition, timeout, services=False, checks=False):
    """Wait until the selected allocations meet `condition`; a WaitOutcome with what was read last."""
    ids = selector.get("id") or []
    id_clause = keep_ids = None
    if ids:
        resolved = _resolve_for_wait(client, selector, condition, list_options.namespace)
        if not resolved:
            return wait_until(lambda index, seconds: ([], None), allocation_judge(condition), timeout)
        id_clause = short_id_filter(resolved)
        keep_ids = set(resolved) if id_clause is None else None
    query = list_query(dict(selector, id=None), list_options.namespace, list_options.reverse,
                       list_options.resources, list_options.task_states, extra_filter=id_clause)
    if condition == "healthy":
        query.pop("task_states", None)  # health is judged from the task states, whatever the stubs show
    read = listing_reader(client, query, list_options.per_page, list_options.limit, with_checks=condition == "healthy",
                          keep_ids=keep_ids)
    outcome = wait_until(read, allocation_judge(condition, fixed_selection=bool(ids)), timeout)
    outcome.progress = None if outcome.met else describe_progress(condition, outcome.value)
    if ids and outcome.value:
        tracker = IndexTracker()
        tracker.index = outcome.index
        full = {allocation["ID"]: allocation for allocation in full_objects(client, outcome.value, tracker)}
        outcome.value = [_keep_checks(full.get(stub["ID"]), stub) for stub in outcome.value if stub["ID"] in full]
        outcome.index = tracker.index
    for allocation in outcome.value if not checks else ():
        allocation.pop(CHECKS_KEY, None)
    attach_extras(client, outcome.value, services, checks)
    return outcome


def _keep_checks(full, stub):
    if CHECKS_KEY in stub:
        full[CHECKS_KEY] = stub[CHECKS_KEY]
    return full


def wait_for_terminal(client, allocations, timeout, observed=None):
    """Block on the allocation list until every one of `allocations` is terminal (or gone).

    Returns the IDs still not terminal when the deadline passed (empty when all finished); the last listing the
    wait read is appended to the list `observed` when one is given.
    """
    ids = [allocation["ID"] for allocation in allocations]
    if not ids:
        return []
    namespaces = {namespace_of(allocation, "default") for allocation in allocations}
    jobs = sorted({allocation.get("JobID") for allocation in allocations} - {None})
    narrowing = short_id_filter(ids) or short_job_filter(jobs)
    query = list_query({}, namespaces.pop() if len(namespaces) == 1 else "*", task_states=False,
                       extra_filter=narrowing)
    outcome = wait_until(listing_reader(client, query, keep_ids=set(ids)), terminal_judge(ids), timeout)
    if observed is not None:
        observed.extend(outcome.value or [])
    return still_running(ids, outcome.value)
