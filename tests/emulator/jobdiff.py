# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Nomad's job diff (`nomad/structs/diff.go`) and the plan annotations (`scheduler/annotate.go`) for the
fields the emulator's jobs carry. Reference: nomad-jobs-behaviour.md §3.4.

Primitive fields of jobs, groups and tasks are diffed non-contextually (only changes); objects (Update,
RestartPolicy, Config, Resources, ...) contextually (every field once something in them changed).
"""
from __future__ import annotations

NONE, ADDED, DELETED, EDITED = "None", "Added", "Deleted", "Edited"
JOB_FILTER = {"ID", "Status", "StatusDescription", "Version", "Stable", "CreateIndex", "ModifyIndex", "JobModifyIndex",
              "Update", "SubmitTime", "NomadTokenID", "VaultToken"}
GROUP_OBJECTS = ("RestartPolicy", "ReschedulePolicy", "EphemeralDisk", "Migrate", "Update")
TASK_OBJECTS = ("Resources", "LogConfig")
RESOURCE_FIELDS = ("CPU", "Cores", "DiskMB", "IOPS", "MemoryMB", "MemoryMaxMB")
# task objects whose change alone allows an in-place update (scheduler/annotate.go at 1.10.5)
IN_PLACE_OBJECTS = {"Service", "Constraint", "Affinity", "Spread", "LogConfig"}
UPDATE_NAMES = (("Ignore", "ignore"), ("Place", "create"), ("Migrate", "migrate"), ("Stop", "destroy"),
                ("Canary", "canary"), ("InPlaceUpdate", "in-place update"),
                ("DestructiveUpdate", "create/destroy update"))


def go_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def flatten(value, prefix: str = "", primitive_only: bool = True) -> dict:
    """helper/flatmap: `Meta[k]`, `args[0]`; with primitive_only nested structs and lists are skipped."""
    out = {}
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}[{key}]" if prefix else str(key)
            if isinstance(item, dict):
                if primitive_only and not _string_map(item):
                    continue
                out.update(flatten(item, name, primitive_only))
            elif isinstance(item, list):
                if not primitive_only:
                    for number, element in enumerate(item):
                        out.update(flatten({str(number): element}, name, primitive_only) if isinstance(
                            element, (dict, list)) else {f"{name}[{number}]": go_value(element)})
            else:
                out[name] = go_value(item)
    return out


def _string_map(value: dict) -> bool:
    return all(isinstance(item, str) for item in value.values())


def primitive_fields(obj: dict, exclude=()) -> dict:
    """Top-level primitives plus string maps (Meta, Env) of a job/group/task, as flatmap renders them."""
    out = {}
    for key, value in (obj or {}).items():
        if key in exclude or isinstance(value, list):
            continue
        if isinstance(value, dict):
            if _string_map(value):
                out.update({f"{key}[{item_key}]": item for item_key, item in value.items()})
            continue
        out[key] = go_value(value)
    return out


def field_diffs(old: dict, new: dict, contextual: bool) -> list | None:
    diffs = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, ""), new.get(name, "")
        if before == after:
            if contextual:
                diffs.append(_field(NONE, name, before, after))
            continue
        if before == "":
            diffs.append(_field(ADDED, name, "", after))
        elif after == "":
            diffs.append(_field(DELETED, name, before, ""))
        else:
            diffs.append(_field(EDITED, name, before, after))
    return diffs or None


def _field(kind: str, name: str, old: str, new: str) -> dict:
    return {"Type": kind, "Name": name, "Old": old, "New": new, "Annotations": None}


def object_diff(name: str, old, new, contextual: bool, *, flat=None) -> dict | None:
    if old == new:
        return None
    flat = flat or (lambda value: flatten(value or {}, primitive_only=True))
    kind = ADDED if not old else DELETED if not new else EDITED
    fields = field_diffs(flat(old) if old else {}, flat(new) if new else {}, contextual)
    return {"Type": kind, "Name": name, "Fields": fields, "Objects": None}


def _sorted_objects(objects: list) -> list | None:
    objects = [obj for obj in objects if obj is not None]
    return sorted(objects, key=lambda obj: (obj["Name"], obj["Type"])) or None


def _kind(old, new) -> str:
    if old is None:
        return ADDED
    if new is None:
        return DELETED
    return NONE if old == new else EDITED


# --- job -------------------------------------------------------------------------------------------------------
def job_diff(old: dict | None, new: dict, contextual: bool = True) -> dict:
    kind = ADDED if old is None else _job_kind(old, new)
    old_fields = primitive_fields(old, JOB_FILTER) if old else {}
    objects = []
    if old is None or (old.get("Datacenters") or []) != (new.get("Datacenters") or []):
        objects.append(set_diff("Datacenters", (old or {}).get("Datacenters"), new.get("Datacenters"), contextual))
    objects.extend(constraint_diffs((old or {}).get("Constraints"), new.get("Constraints"), contextual))
    return {"Type": kind, "ID": new["ID"], "Fields": field_diffs(old_fields, primitive_fields(new, JOB_FILTER), False),
            "Objects": _sorted_objects(objects),
            "TaskGroups": group_diffs((old or {}).get("TaskGroups") or [], new.get("TaskGroups") or [], contextual)}


def _job_kind(old: dict, new: dict) -> str:
    ignored = JOB_FILTER | {"Update"}
    return NONE if ({k: v for k, v in old.items() if k not in ignored}
                    == {k: v for k, v in new.items() if k not in ignored}) else EDITED


def set_diff(name: str, old, new, contextual: bool) -> dict | None:
    old, new = set(old or ()), set(new or ())
    if old == new and not contextual:
        return None
    fields = []
    for value in sorted(old | new):
        if value in old and value in new:
            if contextual:
                fields.append(_field(NONE, name, value, value))
        elif value in new:
            fields.append(_field(ADDED, name, "", value))
        else:
            fields.append(_field(DELETED, name, value, ""))
    kind = ADDED if not old else DELETED if not new else (NONE if old == new else EDITED)
    return {"Type": kind, "Name": name, "Fields": fields or None, "Objects": None}


def constraint_diffs(old, new, contextual: bool) -> list:
    old, new = list(old or ()), list(new or ())
    diffs = []
    for constraint in old:
        if constraint not in new:
            diffs.append(object_diff("Constraint", constraint, None, contextual))
    for constraint in new:
        if constraint not in old:
            diffs.append(object_diff("Constraint", None, constraint, contextual))
    return diffs


# --- groups and tasks ----------------------------------------------------------------------------------------------
def group_diffs(old: list, new: list, contextual: bool) -> list | None:
    old_map = {group["Name"]: group for group in old}
    new_map = {group["Name"]: group for group in new}
    names = sorted(set(old_map) | set(new_map))
    return [group_diff(old_map.get(name), new_map.get(name), contextual) for name in names] or None


def group_diff(old, new, contextual: bool) -> dict:
    name = (new or old)["Name"]
    exclude = {"Name"}
    old_fields = primitive_fields(old, exclude) if old else {}
    new_fields = primitive_fields(new, exclude) if new else {}
    for fields, group in ((old_fields, old), (new_fields, new)):
        if group is not None:
            fields["ShutdownDelay"] = go_value((group or {}).get("ShutdownDelay"))
    objects = constraint_diffs((old or {}).get("Constraints"), (new or {}).get("Constraints"), contextual)
    for key in GROUP_OBJECTS:
        before, after = (old or {}).get(key), (new or {}).get(key)
        if key == "Update":
            before = {k: v for k, v in (before or {}).items() if k != "Stagger"} or None
            after = {k: v for k, v in (after or {}).items() if k != "Stagger"} or None
        objects.append(object_diff(key, before, after, contextual))
    objects.extend(service_diffs((old or {}).get("Services"), (new or {}).get("Services"), contextual))
    return {"Type": _kind(old, new), "Name": name,
            "Fields": field_diffs(old_fields if old else {}, new_fields if new else {}, False),
            "Objects": _sorted_objects(objects),
            "Tasks": task_diffs((old or {}).get("Tasks") or [], (new or {}).get("Tasks") or [], contextual),
            "Updates": None}


def service_diffs(old, new, contextual: bool) -> list:
    old_map = {service.get("Name", ""): service for service in old or ()}
    new_map = {service.get("Name", ""): service for service in new or ()}
    return [object_diff("Service", old_map.get(name), new_map.get(name), contextual)
            for name in sorted(set(old_map) | set(new_map))]


def task_diffs(old: list, new: list, contextual: bool) -> list | None:
    old_map = {task["Name"]: task for task in old}
    new_map = {task["Name"]: task for task in new}
    return [task_diff(old_map.get(name), new_map.get(name), contextual)
            for name in sorted(set(old_map) | set(new_map))] or None


def task_diff(old, new, contextual: bool) -> dict:
    name = (new or old)["Name"]
    exclude = {"Name", "Config"}
    objects = constraint_diffs((old or {}).get("Constraints"), (new or {}).get("Constraints"), contextual)
    objects.append(object_diff("Config", (old or {}).get("Config"), (new or {}).get("Config"), contextual,
                               flat=lambda value: flatten(value, primitive_only=False)))
    objects.append(object_diff("Resources", _resources(old), _resources(new), contextual))
    objects.append(object_diff("LogConfig", (old or {}).get("LogConfig"), (new or {}).get("LogConfig"), contextual))
    objects.extend(service_diffs((old or {}).get("Services"), (new or {}).get("Services"), contextual))
    return {"Type": _kind(old, new), "Name": name,
            "Fields": field_diffs(primitive_fields(old, exclude) if old else {},
                                  primitive_fields(new, exclude) if new else {}, False),
            "Objects": _sorted_objects(objects), "Annotations": None}


def _resources(task):
    if task is None or task.get("Resources") is None:
        return None
    resources = task["Resources"]
    return {key: resources.get(key, 0) for key in RESOURCE_FIELDS}


# --- annotations (scheduler/annotate.go) -----------------------------------------------------------------------------
def annotate(diff: dict, desired: dict) -> None:
    """Group `Updates`, Count annotations and task annotations from the scheduler's DesiredTGUpdates."""
    for group in diff.get("TaskGroups") or ():
        updates = desired.get(group["Name"])
        if updates:
            group["Updates"] = {label: updates[key] for key, label in UPDATE_NAMES if updates.get(key)} or None
        for field in group.get("Fields") or ():
            if field["Name"] == "Count" and field["Type"] == EDITED:
                grows = int(field["New"] or 0) > int(field["Old"] or 0)
                field["Annotations"] = ["forces create" if grows else "forces destroy"]
        for task in group.get("Tasks") or ():
            task["Annotations"] = task_annotations(group["Type"], task)


def task_annotations(group_kind: str, task: dict):
    if task["Type"] == NONE:
        return None
    if group_kind == ADDED:
        return ["forces create"]
    if group_kind == DELETED:
        return ["forces destroy"]
    if task["Type"] in (ADDED, DELETED):
        return ["forces create" if task["Type"] == ADDED else "forces destroy"]
    if is_destructive(task):
        return ["forces create/destroy update"]
    return ["forces in-place update"]


def is_destructive(task: dict) -> bool:
    for field in task.get("Fields") or ():
        if field["Type"] != NONE and field["Name"] != "KillTimeout":
            return True
    for obj in task.get("Objects") or ():
        if obj["Type"] == NONE or obj["Name"] in IN_PLACE_OBJECTS:
            if obj["Name"] == "LogConfig" and _disabled_changed(obj):
                return True
            continue
        return True
    return False


def _disabled_changed(obj: dict) -> bool:
    return any(field["Name"] == "Disabled" and field["Type"] != NONE for field in obj.get("Fields") or ())


def tasks_need_destructive_update(old_group: dict, new_group: dict) -> bool:
    """The scheduler's `tasksUpdated` for the fields the emulator carries: any task change but KillTimeout,
    services, constraints and LogConfig (except Disabled) replaces the allocation."""
    diff = group_diff(old_group, new_group, contextual=False)
    return any(task["Type"] in (ADDED, DELETED) or (task["Type"] == EDITED and is_destructive(task))
               for task in diff["Tasks"] or ())
