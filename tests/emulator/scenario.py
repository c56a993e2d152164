# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Build the emulator's state from a scenario YAML file (format in CONTRIBUTING.md)."""
from __future__ import annotations

import gc
import uuid

import yaml

from .logcapture import LogSpecError, log_settings
from .nomadtime import now_ns, rfc3339
from .nomadversion import NomadVersion, UnsupportedVersion
from .state import Allocation, Emulator, FastIds, Task, duration_seconds, new_id

VIRTUAL_FIRST_CREATE_INDEX = 5  # so that create indexes of 1 to 6 digits occur (string-compare bug)


class ScenarioError(ValueError):
    """The scenario file is not usable; str() says what to fix."""


def load_scenario_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as err:
        raise ScenarioError(f"cannot read scenario {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ScenarioError(f"scenario {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {path} must be a mapping")
    return data


def scenario_version(scenario: dict, override=None) -> NomadVersion:
    """The Nomad version to answer as: the --nomad-version option, else the scenario's `nomad_version`."""
    try:
        return NomadVersion.parse(override if override is not None else scenario.get("nomad_version"))
    except UnsupportedVersion as err:
        raise ScenarioError(str(err)) from err


def node_entries(emulator: Emulator) -> list:
    """The scenario's `nodes:`; an entry with `count: N` stands for N nodes named `<name>-1` ... `<name>-N`."""
    entries = []
    for entry in emulator.scenario.get("nodes") or [{"name": "node-1"}]:
        if "count" not in entry:
            entries.append(entry)
            continue
        for number in range(1, int(entry["count"]) + 1):
            entries.append({**{k: v for k, v in entry.items() if k not in ("count", "id")},
                            "name": f"{entry['name']}-{number}"})
    return entries


def build_nodes(emulator: Emulator) -> None:
    from .nodes import init_node
    for entry in node_entries(emulator):
        node = {"ID": str(entry.get("id") or uuid.uuid4()), "Name": str(entry["name"]),
                "Datacenter": str(entry.get("datacenter", emulator.datacenter))}
        # optional, for the scheduler of registered jobs (scheduler.py): capacity and node pool
        for key, name, kind in (("cpu", "CPU", int), ("memory", "MemoryMB", int), ("node_pool", "NodePool", str)):
            if key in entry:
                node[name] = kind(entry[key])
        init_node(emulator, node, entry)
        if "nomad.version" not in (entry.get("attributes") or {}):
            node["Attributes"]["nomad.version"] = emulator.version.text
        emulator.nodes.append(node)


def node_named(emulator: Emulator, name):
    for node in emulator.nodes:
        if name in (None, node["Name"], node["ID"]):
            return node
    raise ScenarioError(f"unknown node {name!r}")


def task_from_spec(spec: dict) -> Task:
    command = spec.get("command") or ["/bin/sh", "-c", "while :; do sleep 1; done"]
    if isinstance(command, str):
        command = ["/bin/sh", "-c", command]
    task = Task(name=str(spec["name"]), command=[str(part) for part in command],
                lifecycle=spec.get("lifecycle"), kill_timeout=duration_seconds(spec.get("kill_timeout"), 5.0),
                healthy=bool(spec.get("healthy", True)))
    task.job_env = {str(key): str(value) for key, value in (spec.get("env") or {}).items()}
    try:
        task.log_settings = log_settings(spec.get("logs"))
    except LogSpecError as err:
        raise ScenarioError(f"task {task.name!r}: {err}") from err
    return task


def job_document(emulator: Emulator, spec: dict, index: int) -> dict:
    groups = []
    for group in spec.get("groups") or ():
        tasks = []
        for task in group.get("tasks") or ():
            built = task_from_spec(task)
            tasks.append({"Name": built.name, "Driver": "raw_exec",
                          "Config": {"command": built.command[0], "args": built.command[1:]},
                          "KillTimeout": int(built.kill_timeout * 1e9), "Lifecycle": built.lifecycle_dict(),
                          "Env": None, "Services": None, "Meta": dict(task.get("meta") or {}) or None})
        services = [{"Name": str(svc["name"]), "PortLabel": str(svc.get("port", "")), "Provider": "nomad",
                     "Tags": list(svc.get("tags") or [])} for svc in group.get("services") or ()]
        groups.append({"Name": str(group["name"]), "Count": int(group.get("count", 1)), "Tasks": tasks,
                       "Services": services or None, "Meta": dict(group.get("meta") or {}) or None})
        if group.get("migrate"):  # only then: the documents of scenarios without it stay as they were
            from .nodes import scenario_migrate
            groups[-1]["Migrate"] = scenario_migrate(group["migrate"])
    now = now_ns()
    return {
        "Region": emulator.region, "Namespace": str(spec.get("namespace", "default")), "ID": str(spec["id"]),
        "ParentID": "", "Name": str(spec.get("name", spec["id"])), "Type": str(spec.get("type", "service")),
        "Priority": int(spec.get("priority", 50)), "AllAtOnce": False, "Datacenters": [emulator.datacenter],
        "NodePool": "default", "Constraints": None, "Affinities": None, "Spreads": None, "TaskGroups": groups,
        "Update": None, "Multiregion": None, "Periodic": None, "ParameterizedJob": None, "Dispatched": False,
        "DispatchIdempotencyToken": "", "Payload": None, "Meta": dict(spec.get("meta") or {}) or None,
        "ConsulToken": "", "ConsulNamespace": "", "VaultToken": "", "VaultNamespace": "", "NomadTokenID": "",
        "Status": "running", "StatusDescription": "", "Stable": True, "Version": int(spec.get("version", 0)),
        "SubmitTime": now, "CreateIndex": index, "ModifyIndex": index, "JobModifyIndex": index, "Stop": False,
    }


def new_allocation(emulator: Emulator, job: dict, group_doc: dict, group_spec: dict, index_in_group: int,
                   node: dict, create_index: int, alloc_id: str | None = None) -> Allocation:
    tasks = [task_from_spec(task) for task in group_spec.get("tasks") or ()]
    alloc = Allocation(alloc_id=alloc_id or new_id(), job=job, group=group_doc, index_in_group=index_in_group,
                       namespace=job["Namespace"], node=node, tasks=tasks, create_index=create_index,
                       services=group_spec.get("services") or ())
    alloc.group_spec = group_spec
    return alloc


def service_registrations(emulator: Emulator, alloc: Allocation, index: int) -> list:
    registrations = []
    for spec in alloc.service_specs:
        port = int(spec.get("port", 0) or 0)
        registrations.append({
            "ID": f"_nomad-task-{alloc.id}-group-{alloc.task_group}-{spec['name']}-{port}",
            "ServiceName": str(spec["name"]), "Namespace": alloc.namespace, "NodeID": alloc.node["ID"],
            "Datacenter": emulator.datacenter, "JobID": alloc.job_id, "AllocID": alloc.id,
            "Tags": list(spec.get("tags") or []), "Address": "127.0.0.1", "Port": port,
            "CreateIndex": index, "ModifyIndex": index,
        })
    return registrations


def validate_checks(job_id: str, group_spec: dict) -> None:
    from .checks import CheckSpecError, validate_group
    try:
        validate_group(group_spec)
    except CheckSpecError as err:
        raise ScenarioError(f"job {job_id!r} group {group_spec.get('name')!r}: {err}") from err


def fixed_allocation_ids(emulator: Emulator, job_id: str, group_spec: dict) -> list:
    """A group's `ids`: fixed allocation IDs for its first allocations (README examples name them), else []."""
    ids = [str(value) for value in group_spec.get("ids") or ()]
    for value in ids:
        try:
            valid = str(uuid.UUID(value)) == value
        except ValueError:
            valid = False
        if not valid or value in emulator.allocs or ids.count(value) > 1:
            raise ScenarioError(f"job {job_id!r} group {group_spec.get('name')!r}: allocation id {value!r} is "
                                f"{'used twice' if valid else 'not a lowercase UUID'}")
    return ids


def build_jobs(emulator: Emulator) -> list:
    """Register the scenario's jobs and their allocations; returns the new (process-backed) allocations."""
    created = []
    for spec in emulator.scenario.get("jobs") or ():
        namespace = str(spec.get("namespace", "default"))
        if namespace not in emulator.namespaces:
            raise ScenarioError(f"job {spec.get('id')!r} uses namespace {namespace!r} not listed in namespaces")
        job = job_document(emulator, spec, emulator.bump())
        emulator.jobs[(namespace, job["ID"])] = {"doc": job, "spec": spec}
        placement = job_nodes(emulator, spec)
        create_index = emulator.bump()  # one plan: all allocations of the job share a create index
        for group_doc, group_spec in zip(job["TaskGroups"], spec.get("groups") or ()):
            validate_checks(job["ID"], group_spec)
            fixed_ids = fixed_allocation_ids(emulator, job["ID"], group_spec)
            for number in range(group_doc["Count"]):
                node = placement[number % len(placement)]
                alloc = new_allocation(emulator, job, group_doc, group_spec, number, node, create_index,
                                       fixed_ids[number] if number < len(fixed_ids) else None)
                emulator.add_alloc(alloc)
                created.append(alloc)
        emulator.allocs_index = create_index
    return created


def job_nodes(emulator: Emulator, spec: dict) -> list:
    """A job's `node` (one node) or `nodes` (a list: each group's allocations go round-robin over them)."""
    if spec.get("nodes"):
        return [node_named(emulator, name) for name in spec["nodes"]]
    return [node_named(emulator, spec.get("node"))]


def install_faults(emulator: Emulator) -> None:
    """The scenario's top-level `faults:` list: fault rules live from the start, as if POSTed to /_emulator/faults
    (a hostile endpoint for a whole demo or test run)."""
    from .faults import FaultRuleError
    for number, rule in enumerate(emulator.scenario.get("faults") or ()):
        try:
            emulator.faults.add(rule)
        except FaultRuleError as err:
            raise ScenarioError(f"faults entry {number + 1}: {err}") from err


def virtual_settings(emulator: Emulator, override_count):
    settings = dict(emulator.scenario.get("virtual") or {})
    if override_count is not None:
        settings["count"] = override_count
    return settings


def build_virtual(emulator: Emulator, settings: dict) -> None:
    """Process-less allocations, one create index each, starting low enough to cross digit boundaries."""
    # The cyclic GC would rescan the growing heap again and again while 100,000 objects are made;
    # afterwards they are frozen so that later collections skip them.
    gc.disable()
    try:
        _build_virtual(emulator, settings)
    finally:
        gc.freeze()
        gc.enable()


def _build_virtual(emulator: Emulator, settings: dict) -> None:
    count = int(settings.get("count", 0) or 0)
    if count <= 0:
        return
    namespace = str(settings.get("namespace", "default"))
    if namespace not in emulator.namespaces:
        emulator.namespaces.append(namespace)
    job_prefix = str(settings.get("job", "virtual"))
    job_count = max(1, int(settings.get("jobs", 10)))
    nodes = emulator.nodes if settings.get("spread_nodes") else emulator.nodes[:1]
    first_index = max(VIRTUAL_FIRST_CREATE_INDEX, emulator.index + 1) if emulator.allocs else VIRTUAL_FIRST_CREATE_INDEX
    emulator.index = max(emulator.index, first_index - 1)
    jobs = []
    for number in range(job_count):
        spec = {"id": f"{job_prefix}-{number}", "namespace": namespace, "type": "service",
                "groups": [{"name": "main", "count": 0, "tasks": [{"name": "main"}],
                            "migrate": settings.get("migrate")}]}
        job = job_document(emulator, spec, first_index - 1)
        emulator.jobs[(namespace, job["ID"])] = {"doc": job, "spec": spec}
        jobs.append(job)
    now = now_ns()
    healthy_since = rfc3339(now)
    ids = FastIds()
    templates = {}
    allocs = []
    for number in range(count):
        job = jobs[number % job_count]
        create_index = first_index + number
        task = Task(name="main", command=[], state="running", started=True, started_at=now)
        task.events = [{"Type": "Started", "Time": now, "Message": "", "DisplayMessage": "Task started by client",
                        "Details": {}, "FailsTask": False}]
        alloc = Allocation(alloc_id=ids(), job=job, group=job["TaskGroups"][0], index_in_group=number // job_count,
                           namespace=namespace, node=nodes[number % len(nodes)], tasks=[task],
                           create_index=create_index, virtual=True,
                           eval_id=ids())
        alloc.client_status = "running"
        alloc.client_description = "Tasks are running"
        alloc.deployment_status = {"Healthy": True, "Timestamp": healthy_since, "Canary": False,
                                   "ModifyIndex": create_index}
        alloc.create_time = alloc.modify_time = now
        template_key = (job["ID"], alloc.node["ID"])  # the template carries NodeID and NodeName
        if template_key not in templates:
            templates[template_key] = alloc.make_stub_template()
        alloc.stub_template = templates[template_key]
        allocs.append(alloc)
    emulator.index = first_index + count - 1
    emulator.allocs_index = emulator.index
    emulator.bulk_add(allocs)
