# -*- coding: utf-8 -*-
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading allocations the way nomad_alloc_info and the nomad_alloc lookup return them: stubs for a
selector, full objects for IDs, optionally with their services, waiting for a condition."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.nomadops.nomad.plugins.module_utils._client import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils._selector import (
    ALLOCATIONS_PATH,
    AllocationNotFoundError,
    SelectorError,
    list_query,
    resolve_allocation_id,
    select_allocations,
    id_filter,
)
from ansible_collections.nomadops.nomad.plugins.module_utils._waits import wait_for_condition

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


class IndexTracker(object):
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


class ListOptions(object):
    """How to list: namespace, page size, limit, order and which stub fields Nomad should include."""

    __slots__ = ("namespace", "per_page", "limit", "reverse", "resources", "task_states")

    def __init__(self, namespace=None, per_page=None, limit=None, reverse=False, resources=False, task_states=True):
        if per_page is not None and per_page < 1:
            raise SelectorError("per_page must be 1 or more (got %s)" % per_page)
        if limit is not None and limit < 1:
            raise SelectorError("limit must be 1 or more (got %s)" % limit)
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


def read_allocation(client, allocation_id, tracker=None):
    response = client.read("/v1/allocation/%s" % allocation_id)
    if tracker is not None:
        tracker(response)
    return response.data


def attach_services(client, allocations):
    """Add each allocation's Nomad services (GET /v1/allocation/<id>/services in its namespace) as `Services`."""

    def services_of(allocation):
        try:
            response = client.read(
                "/v1/allocation/%s/services" % allocation["ID"], {"namespace": allocation.get("Namespace") or "default"}
            )
        except NomadNotFoundError:
            return []  # garbage-collected since it was listed
        return response.data or []

    for allocation, services in zip(allocations, concurrently(services_of, allocations)):
        allocation[SERVICES_KEY] = services
    return allocations


def full_objects(client, stubs, tracker=None):
    """GET /v1/allocation/<id> for each stub; allocations garbage-collected since the listing are left out."""

    def full_object(stub):
        try:
            return read_allocation(client, stub["ID"], tracker)
        except NomadNotFoundError:
            return None

    return [allocation for allocation in concurrently(full_object, stubs) if allocation is not None]


def gather_allocations(client, selector, list_options, services=False):
    """(allocations, index): stubs for a selector, full objects when `id` is given."""
    tracker = IndexTracker()
    stubs = select_allocations(client, selector, on_response=tracker, **list_options.select_kwargs())
    allocations = full_objects(client, stubs, tracker) if selector.get("id") else stubs
    if services:
        attach_services(client, allocations)
    return allocations, tracker.index


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


def wait_for_allocations(client, selector, list_options, condition, timeout, services=False):
    """Wait until the selected allocations meet `condition`; a WaitOutcome with what was read last."""
    ids = selector.get("id") or []
    id_clause = None
    if ids:
        resolved = _resolve_for_wait(client, selector, condition, list_options.namespace)
        if not resolved:
            return wait_for_condition(condition, lambda: ([], None), lambda index, seconds: None, timeout)
        id_clause = id_filter(resolved)
    list_selector = dict(selector, id=None)
    query = list_query(list_selector, list_options.namespace, list_options.reverse, list_options.resources,
                       list_options.task_states, extra_filter=id_clause)

    def list_allocations():
        tracker = IndexTracker()
        stubs = list(client.paginate(ALLOCATIONS_PATH, query, per_page=list_options.per_page,
                                     limit=list_options.limit, on_response=tracker))
        return stubs, tracker.index

    def wait_for_change(index, seconds):
        client.blocking_read(ALLOCATIONS_PATH, dict(query, per_page=1), index, seconds)

    outcome = wait_for_condition(condition, list_allocations, wait_for_change, timeout, fixed_selection=bool(ids))
    if ids and outcome.allocations:
        tracker = IndexTracker()
        tracker.index = outcome.index
        outcome.allocations = full_objects(client, outcome.allocations, tracker)
        outcome.index = tracker.index
    if services:
        attach_services(client, outcome.allocations)
    return outcome
