# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reads over selected allocations: full objects for IDs, their services and check results, and the waits
over a selection (the selection itself is selection.select()). The namespace of an allocation is always
sent with every request about it."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import (
    namespace_of,
    namespace_params,
    read_allocation,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.concurrency import concurrent_map
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import (
    IndexTracker,
    list_matching,
    listing_of,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import (
    ALLOCATIONS_PATH,
    list_query,
    resolve_allocation_ids,
    short_id_filter,
    short_job_filter,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.waiting import wait_until
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.health import (
    CHECKS_KEY,
    allocation_judge,
    describe_progress,
    needs_checks,
    still_running,
    terminal_judge,
)

SERVICES_KEY = "Services"

LIST_ARGUMENT_SPEC = dict(
    per_page=dict(type="int"),
    limit=dict(type="int"),
    reverse=dict(type="bool", default=False),
    resources=dict(type="bool", default=False),
    task_states=dict(type="bool", default=True),
    services=dict(type="bool", default=False),
)


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

    for allocation, services in zip(allocations, concurrent_map(services_of, allocations)):
        allocation[SERVICES_KEY] = services
    return allocations


def attach_checks(client, allocations, only=None):
    """Add each allocation's check results as `Checks` (those for which only(allocation) holds, when given)."""
    chosen = [allocation for allocation in allocations if only is None or only(allocation)]
    for allocation, checks in zip(chosen, concurrent_map(lambda allocation: read_checks(client, allocation), chosen)):
        allocation[CHECKS_KEY] = checks
    return allocations


def full_objects(client, stubs, tracker=None):
    """GET /v1/allocation/<id> for each stub; allocations garbage-collected since the listing are left out."""

    def full_object(stub):
        try:
            return read_allocation(client, stub, tracker)
        except NomadNotFoundError:
            return None

    return [allocation for allocation in concurrent_map(full_object, stubs) if allocation is not None]


def read_selection(client, selection, services=False, checks=False):
    """(allocations, index) of a Selection: its stubs, full objects when `id` was given, with the extras asked."""
    tracker = IndexTracker()
    tracker.index = selection.index
    allocations = selection.allocations
    if selection.selector.get("id"):
        allocations = full_objects(client, allocations, tracker)
    attach_extras(client, allocations, services, checks)
    return allocations, tracker.index


def attach_extras(client, allocations, services=False, checks=False):
    if services:
        attach_services(client, allocations)
    if checks:
        attach_checks(client, allocations)
    return allocations


# --------------------------------------------------------------------------------------------- waiting
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
        stubs = list_matching(client, query, per_page, limit, keep_ids, on_response=tracker)
        if with_checks:
            attach_checks(client, stubs, only=needs_checks)
        return stubs, tracker.index

    return read


def wait_for_allocations(client, selector, list_options, condition, timeout, services=False, checks=False):
    """Wait until the selected allocations meet `condition`; a WaitOutcome with what was read last.

    `selector` is resolved (its node, see selection.select); `id` entries are resolved once, before the wait
    (for `absent`, entries that no longer resolve are already absent)."""
    ids = selector.get("id") or []
    resolved = None
    if ids:
        stubs = resolve_allocation_ids(client, ids, list_options.namespace, missing_ok=condition == "absent")
        resolved = [stub["ID"] for stub in stubs]
        if not resolved:
            return wait_until(lambda index, seconds: ([], None), allocation_judge(condition), timeout)
    query, keep_ids = listing_of(selector, resolved, list_options.namespace, list_options.reverse,
                                 list_options.resources, list_options.task_states)
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

    Returns the IDs still not terminal when the deadline passed (empty when all finished). When a list
    `observed` is given, the allocations' state after the wait, task states included, is appended to it: the
    blocking reads leave task states out (they only need the statuses), so this is one more listing.
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
        observed.extend(list_matching(client, dict(query, task_states=True), keep_ids=set(ids)))
    return still_running(ids, outcome.value)
