# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A Nomad job plan as text, in the words and layout `nomad job plan` prints (command/job_plan.go, reference
nomad-jobs-behaviour.md §3.6), and the scheduler's placement metrics in the words of the CLI monitor."""

from __future__ import annotations

MARKERS = {"Added": "+ ", "Deleted": "- ", "Edited": "+/- ", "None": ""}


def marker(diff_type):
    return MARKERS.get(diff_type or "None", "")


def updates_text(updates):
    """`(2 create, 1 create/destroy update)` from a group's Updates, sorted by name; "" without any."""
    parts = [f"{count} {name}" for name, count in sorted((updates or {}).items()) if count]
    return f" ({', '.join(parts)})" if parts else ""


def field_value(field):
    kind = field.get("Type")
    if kind == "Added":
        return f'"{field.get("New")}"'
    if kind == "Deleted":
        return f'"{field.get("Old")}"'
    if kind == "Edited":
        return f'"{field.get("Old")}" => "{field.get("New")}"'
    return f'"{field.get("New")}"'


def _annotations(items):
    return f" ({', '.join(items)})" if items else ""


def body_lines(fields, objects, indent):
    """Fields (names and markers padded so the values line up) and then objects, each at `indent` spaces."""
    fields, objects = fields or [], objects or []
    marker_width = max([len(marker(item.get("Type"))) for item in fields + objects] or [0])
    name_width = max([len(item.get("Name") or "") + 1 for item in fields] or [0])
    lines = []
    for item in fields:
        mark = marker(item.get("Type")).ljust(marker_width)
        name = ((item.get("Name") or "") + ":").ljust(name_width)
        lines.append(f"{' ' * indent}{mark}{name} {field_value(item)}{_annotations(item.get('Annotations'))}")
    for item in objects:
        mark = marker(item.get("Type")).ljust(marker_width)
        lines.append(f"{' ' * indent}{mark}{item.get('Name')} {{")
        lines.extend(body_lines(item.get("Fields"), item.get("Objects"), indent + 2))
        lines.append(f"{' ' * (indent + marker_width)}}}")
    return lines


def task_lines(task, indent, verbose):
    lines = [f"{' ' * indent}{marker(task.get('Type'))}Task: \"{task.get('Name')}\"{_annotations(task.get('Annotations'))}"]
    if task.get("Type") == "Edited" or verbose:
        lines.extend(body_lines(task.get("Fields"), task.get("Objects"), indent + 2))
    return lines


def group_lines(group, verbose):
    lines = [f"{marker(group.get('Type'))}Task Group: \"{group.get('Name')}\"{updates_text(group.get('Updates'))}"]
    if group.get("Type") == "Edited" or verbose:
        lines.extend(body_lines(group.get("Fields"), group.get("Objects"), 2))
    for task in group.get("Tasks") or []:
        lines.extend(task_lines(task, 2, verbose))
    return lines


def diff_lines(diff, job_id, verbose=False):
    diff = diff or {}
    lines = [f"{marker(diff.get('Type'))}Job: \"{diff.get('ID') or job_id}\""]
    if diff.get("Type") == "Edited" or verbose:
        lines.extend(body_lines(diff.get("Fields"), diff.get("Objects"), 0))
    for group in diff.get("TaskGroups") or []:
        lines.extend(group_lines(group, verbose))
    return lines


def metric_lines(metric):
    """The reasons of one group's AllocMetric, as command/monitor.go formats them (without the `* `)."""
    metric = metric or {}
    lines = []
    if not metric.get("NodesEvaluated") and not metric.get("NodesFiltered"):
        lines.append("No nodes were eligible for evaluation")
    for datacenter, available in sorted((metric.get("NodesAvailable") or {}).items()):
        if available == 0:
            lines.append(f'No nodes are available in datacenter "{datacenter}"')
    for name, count in sorted((metric.get("ClassFiltered") or {}).items()):
        lines.append(f'Class "{name}": {count} nodes excluded by filter')
    for name, count in sorted((metric.get("ConstraintFiltered") or {}).items()):
        lines.append(f'Constraint "{name}": {count} nodes excluded by filter')
    if metric.get("NodesExhausted"):
        lines.append(f"Resources exhausted on {metric['NodesExhausted']} nodes")
    for name, count in sorted((metric.get("ClassExhausted") or {}).items()):
        lines.append(f'Class "{name}" exhausted on {count} nodes')
    for name, count in sorted((metric.get("DimensionExhausted") or {}).items()):
        lines.append(f'Dimension "{name}" exhausted on {count} nodes')
    for quota in metric.get("QuotaExhausted") or []:
        lines.append(f'Quota limit hit "{quota}"')
    return lines


def failed_to_place_count(metric):
    return (metric or {}).get("CoalescedFailures", 0) + 1


def dry_run_lines(plan, job_type=None):
    failed = plan.get("FailedTGAllocs") or {}
    lines = ["Scheduler dry-run:"]
    if not failed:
        lines.append("- All tasks successfully allocated.")
    else:
        where = "allocations on all nodes" if job_type == "system" else "all allocations"
        lines.append(f"- WARNING: Failed to place {where}.")
        for group, metric in sorted(failed.items()):
            count = failed_to_place_count(metric)
            lines.append(f'  Task Group "{group}" (failed to place {count} allocation{"s" if count > 1 else ""}):')
            lines.extend(f"    * {line}" for line in metric_lines(metric))
    if any((evaluation or {}).get("TriggeredBy") == "rolling-update" for evaluation in plan.get("CreatedEvals") or []):
        lines.append("- Rolling update, next evaluation will be in the group's stagger.")
    return lines


def render_plan(plan, job_id, job_type=None, verbose=False):
    """The plan as `nomad job plan` prints it: the diff, the scheduler dry-run, warnings and the job modify index."""
    lines = diff_lines(plan.get("Diff"), job_id, verbose)
    lines += [""] + dry_run_lines(plan, job_type)
    if plan.get("Warnings"):
        lines += ["", "Job Warnings:", plan["Warnings"].strip()]
    lines += ["", f"Job Modify Index: {plan.get('JobModifyIndex') or 0}",
              f"To register only if nobody changed the job meanwhile, set check_index: {plan.get('JobModifyIndex') or 0}"]
    return "\n".join(lines) + "\n"
