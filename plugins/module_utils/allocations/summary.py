# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Readable module results: the `summary` of allocations, `fields` selection, and results without job specs."""

from __future__ import annotations

import datetime

from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id

JOB_KEY = "Job"


def iso_time(nanoseconds):
    """Nomad's nanosecond Unix times (and RFC 3339 strings, passed through) as ISO 8601 UTC, or None."""
    if not nanoseconds:
        return None
    if isinstance(nanoseconds, str):
        return None if nanoseconds.startswith("0001-01-01") else nanoseconds
    moment = datetime.datetime.fromtimestamp(nanoseconds / 1e9, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _health(alloc):
    status = alloc.get("DeploymentStatus") or {}
    healthy = status.get("Healthy")
    if healthy is None:
        return None
    return "healthy" if healthy else "unhealthy"


def _last_event(state):
    events = state.get("Events") or []
    if not events:
        return None, None
    event = events[-1]
    text = event.get("DisplayMessage") or event.get("Message") or ""
    label = f"{event.get('Type')}: {text}" if text else str(event.get("Type"))
    return label, iso_time(event.get("Time"))


def task_summary(name, state):
    event, event_time = _last_event(state)
    return {
        "task": name,
        "state": state.get("State") or "pending",
        "failed": bool(state.get("Failed")),
        "restarts": state.get("Restarts") or 0,
        "last_event": event,
        "last_event_time": event_time,
    }


def allocation_summary_entry(alloc):
    """One short entry: short ID, name, node, client/desired status, health, and one entry per task."""
    states = alloc.get("TaskStates") or {}
    return {
        "id": short_id(alloc.get("ID")),
        "name": alloc.get("Name"),
        "node": alloc.get("NodeName") or short_id(alloc.get("NodeID")) or None,
        "client_status": alloc.get("ClientStatus"),
        "desired_status": alloc.get("DesiredStatus"),
        "health": _health(alloc),
        "modified": iso_time(alloc.get("ModifyTime")),
        "tasks": [task_summary(name, states[name] or {}) for name in sorted(states)],
    }


def summarize(allocations):
    """The `summary` every module result carries: allocation_summary_entry() for each allocation, in order."""
    return [allocation_summary_entry(alloc) for alloc in allocations or []]


def without_job(allocations):
    """Copies of the allocations without the embedded job spec (for failure and partial results)."""
    return [{key: value for key, value in alloc.items() if key != JOB_KEY} for alloc in allocations or []]


def keep_fields(allocations, fields):
    """(allocations with only `fields` kept, the fields that name no key of any allocation)."""
    if not fields:
        return allocations, []
    present = set()
    for alloc in allocations:
        present.update(alloc)
    unknown = [name for name in fields if name not in present] if allocations else []
    kept = [{key: alloc[key] for key in fields if key in alloc} for alloc in allocations]
    return kept, unknown
