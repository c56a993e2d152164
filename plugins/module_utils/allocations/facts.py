# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What an allocation is, in one place: how messages name it, its namespace, whether it has finished, the tasks
of its group with their lifecycle, and the one full read of it (always in its own namespace)."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id

TERMINAL_CLIENT_STATUSES = frozenset(("complete", "failed", "lost"))
FAILED_CLIENT_STATUSES = frozenset(("failed", "lost"))


# --------------------------------------------------------------------------------------------- naming
def allocation_label(allocation):
    """`8d1c3f2a (web.frontend[1])`: how messages name an allocation (the short ID alone when it has no name)."""
    name = allocation.get("Name")
    short = short_id(allocation.get("ID"))
    return f"{short} ({name})" if name else short


# --------------------------------------------------------------------------------------------- namespace
def namespace_of(allocation, default=None):
    """The namespace to send for an allocation: its own, else `default`, else the options' (None)."""
    return allocation.get("Namespace") or default


def namespace_params(namespace):
    """Query parameters that send `namespace`; None leaves the connection option's namespace in place
    (NomadClient.query would drop a None value, and with it the namespace)."""
    return {} if namespace is None else {"namespace": namespace}


# --------------------------------------------------------------------------------------------- status
def is_terminal(allocation):
    return allocation.get("ClientStatus") in TERMINAL_CLIENT_STATUSES


# --------------------------------------------------------------------------------------------- tasks
def task_group_of(allocation):
    """The allocation's group in its embedded job (`Job.TaskGroups`: the one walker over them), or None."""
    for group in ((allocation.get("Job") or {}).get("TaskGroups") or []):
        if group.get("Name") == allocation.get("TaskGroup"):
            return group
    return None


def task_specs(allocation):
    """The task specs of the allocation's group, in job order, or None when the job is not embedded."""
    group = task_group_of(allocation)
    return None if group is None else list(group.get("Tasks") or [])


def task_names(allocation):
    """The tasks of the allocation's group, in job order; TaskStates keys when the job is not embedded."""
    specs = task_specs(allocation)
    if specs is not None:
        return [spec.get("Name") for spec in specs]
    return sorted((allocation.get("TaskStates") or {}).keys())


def task_state(allocation, task):
    return (allocation.get("TaskStates") or {}).get(task) or {}


def task_lifecycles(allocation):
    """{task: lifecycle dict or None} when the allocation says (full object or resources), else None."""
    resources = allocation.get("AllocatedResources") or {}
    if resources.get("TaskLifecycles") is not None:
        return resources["TaskLifecycles"]
    specs = task_specs(allocation)
    if specs is None:
        return None
    return {spec.get("Name"): spec.get("Lifecycle") for spec in specs}


def runs_for_good(lifecycle):
    """Main tasks and sidecars keep running; other lifecycle hooks run once and exit."""
    return not lifecycle or not lifecycle.get("Hook") or bool(lifecycle.get("Sidecar"))


def runs_once(allocation, task):
    """A task of the embedded job with a lifecycle hook that is not a sidecar (prestart, poststart, poststop)
    runs once and exits, so it never 'runs again' after a restart."""
    for spec in task_specs(allocation) or []:
        if spec.get("Name") == task:
            return not runs_for_good(spec.get("Lifecycle"))
    return False


# --------------------------------------------------------------------------------------------- reads
def allocation_path(allocation_id):
    return f"/v1/allocation/{allocation_id}"


def read_allocation(client, allocation, on_response=None, namespace=None):
    """GET /v1/allocation/<id> in the allocation's namespace: `allocation` is a stub dict (its own Namespace
    wins over `namespace`) or an ID (sent with `namespace`, else the options'). `on_response` sees the response."""
    if isinstance(allocation, dict):
        allocation_id, namespace = allocation["ID"], namespace_of(allocation, namespace)
    else:
        allocation_id = allocation
    response = client.read(allocation_path(allocation_id), namespace_params(namespace))
    if on_response is not None:
        on_response(response)
    return response.data or {}


def blocking_read_allocation(client, allocation, index, seconds):
    """(allocation, index): GET /v1/allocation/<id> as a blocking query on the allocation's ModifyIndex."""
    response = client.blocking_read(allocation_path(allocation["ID"]),
                                    namespace_params(namespace_of(allocation)), index, seconds)
    return response.data or {}, response.index
