# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nomad_allocs inventory plugin: Nomad allocations (or allocation tasks) as Ansible hosts."""

from __future__ import annotations

DOCUMENTATION = r"""
name: nomad_allocs
short_description: Nomad allocations (or allocation tasks) as inventory hosts
version_added: 0.1.0
description:
  - Lists the allocations the selector matches with one server-side filter (every page followed) and adds one
    host per allocation (O(hosts_per=allocation)) or per allocation task (O(hosts_per=task)), with
    C(ansible_connection=nomadops.nomad.nomad_exec), so that plays run modules inside the tasks over Nomad's exec API.
  - The inventory source is a YAML file whose name ends in C(nomad_allocs.yml) or C(nomad_allocs.yaml) and whose
    O(plugin) key is C(nomadops.nomad.nomad_allocs). Other files are left to other inventory plugins.
  - Unlike an inventory of every pod or container, only the selected allocations are transferred; the default
    selects the running allocations of O(namespace).
  - "Host names are C(<job>-<task group>-<index>-<first 8 characters of the allocation ID>), for example
    C(web-frontend-0-5a22c1f3), and with O(hosts_per=task) the task name is appended (C(web-frontend-0-5a22c1f3-server)).
    They are stable for the life of an allocation, unique (when two allocations of the same name share the first
    8 characters of their IDs, their full IDs are used) and safe in host patterns: every character other than
    letters, digits, C(_), C(.) and C(-) becomes C(_)."
  - "Host variables: C(nomad_alloc_id), C(nomad_alloc_name), C(nomad_job), C(nomad_task_group), C(nomad_namespace),
    C(nomad_node_id), C(nomad_node_name), C(nomad_client_status), C(nomad_task) (the exec target, or V(null) when
    an allocation has several running tasks and O(task) is not set), C(ansible_connection), C(ansible_nomad_alloc_id),
    C(ansible_nomad_task) (only when the task is known), and the non-secret connection options of this source as
    C(ansible_nomad_address), C(ansible_nomad_namespace) (the allocation's own namespace), C(ansible_nomad_region),
    C(ansible_nomad_tls_server_name) (each only when set), C(ansible_nomad_ca_cert), C(ansible_nomad_ca_path),
    C(ansible_nomad_client_cert), C(ansible_nomad_client_key) (only when set in the file, ini or extra variables;
    paths from E(NOMAD_CACERT) and the like are left to the environment of the play, where AWX writes those
    files anew for each job) and C(ansible_nomad_validate_certs) (only when V(false)).
    With O(meta=true) also C(nomad_meta)."
  - The token and O(http_auth) are never written to hosts, the cache or the output of C(ansible-inventory);
    the connection plugin reads them from its own E(NOMAD_TOKEN) or C(ansible_nomad_token).
  - "Default groups: C(nomad_namespace_<namespace>), C(nomad_job_<job>), C(nomad_task_group_<job>_<group>),
    C(nomad_node_<node name>) and C(nomad_client_status_<status>), sanitised like every inventory plugin's group
    names (see the C(TRANSFORM_INVALID_GROUP_CHARS) setting). With O(namespace=*), jobs of the same name in
    different namespaces share C(nomad_job_<job>); intersect with C(nomad_namespace_<namespace>) in patterns."
  - All data read from Nomad is untrusted, so text in a job's meta or names is never evaluated as a template.
author:
  - nomadops.nomad developers (@nomadops)
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.connection.plugins
  - nomadops.nomad.selector
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: The name of this plugin; must be V(nomadops.nomad.nomad_allocs) for the file to be used.
    type: str
    required: true
    choices: [nomadops.nomad.nomad_allocs]
  hosts_per:
    description:
      - V(allocation) adds one host per allocation; its exec target is O(task), else the allocation's only task,
        else its only running task (a prestart task that has finished does not count), else none
        (C(nomad_task) is V(null) and the connection plugin asks for C(ansible_nomad_task)).
      - V(task) adds one host per task of each allocation (every task in its C(TaskStates)), or only O(task).
    type: str
    choices: [allocation, task]
    default: allocation
  task:
    description:
      - Only allocations that have a task of this name, and that task as the exec target (C(ansible_nomad_task)).
      - Added to the server-side filter, so other allocations are not transferred.
    type: str
  meta:
    description:
      - Add C(nomad_meta), the meta data of the allocation's job merged with that of its task group and task
        (task wins over group, group over job, like Nomad's C(NOMAD_META_*) variables), for example for
        O(keyed_groups).
      - It is read from the job version each allocation runs, with one extra request per job version
        (C(GET /v1/allocation/:id) of one of its allocations), not one per allocation.
    type: bool
    default: false
  client_status:
    description:
      - Only allocations whose client status is one of these. Set it to V([]) to select every status.
    type: list
    elements: str
    choices: [pending, running, complete, failed, lost, unknown]
    default: [running]
notes:
  - >-
    Connection options come, highest first, from this file, then the Ansible variables C(ansible_nomad_<option>)
    (for an inventory only extra variables, C(-e), exist at this point), then the C([nomadops_nomad]) ini entries,
    then the C(NOMAD_*) environment variables, then the defaults.
  - >-
    C(ansible-inventory) and C(ansible-playbook) only warn when an inventory source fails and go on with the others,
    printing this plugin's one-line message in that warning. Set E(ANSIBLE_INVENTORY_UNPARSED_FAILED=true) (ini
    C(unparsed_is_failed) in C([inventory])) or E(ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true) to make the
    failure fatal, as AWX does for inventory updates. Enabling only this plugin
    (E(ANSIBLE_INVENTORY_ENABLED=nomadops.nomad.nomad_allocs,auto)) keeps the YAML and ini plugins from adding their own
    messages.
  - >-
    With O(cache=true) the allocations (not the hosts) are cached, so changed O(compose), O(groups), O(keyed_groups)
    or O(hosts_per) apply on a cache hit; a changed selector, address, namespace, region, token or http_auth is a cache
    miss (each token has its own cache entry, keyed by a salted hash of it, never the token itself). A refresh
    that fails leaves the cache as it was. C(--flush-cache) forces a refresh.
  - Selecting nothing is not an error; the source then has no hosts and a warning says what was asked.
seealso:
  - module: nomadops.nomad.nomad_alloc_info
  - plugin: nomadops.nomad.nomad_alloc
    plugin_type: lookup
  - ref: inventory_plugins
    description: How inventory plugins and their YAML files work.
"""

EXAMPLES = r"""
# web.nomad_allocs.yml -- the running allocations of job web, one host each.
# ansible-inventory -i web.nomad_allocs.yml --graph
# ansible-playbook -i web.nomad_allocs.yml play.yml   (hosts: nomad_job_web)
plugin: nomadops.nomad.nomad_allocs
address: https://nomad.example.com:4646
ca_cert: /etc/nomad.d/ca.pem
job: web
task: server

---
# Groups by job meta: a job with meta { team = "payments" } puts its hosts in team_payments.
plugin: nomadops.nomad.nomad_allocs
meta: true
keyed_groups:
  - key: nomad_meta.team | default('none')
    prefix: team
compose:
  nomad_version: nomad_meta.version | default('unknown')
groups:
  canaries: nomad_alloc_name.endswith('[0]')

---
# Every namespace the token may read, one host per task, cached for five minutes in JSON files.
plugin: nomadops.nomad.nomad_allocs
namespace: "*"
hosts_per: task
filter: 'JobType == "service"'
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/nomad_allocs
cache_timeout: 300

---
# An AWX inventory source ("Sourced from a project", file nomad/prod.nomad_allocs.yml) with a credential of the
# "HashiCorp Nomad" type (extensions/awx/nomad_credential_type.yml): its injectors set NOMAD_ADDR, NOMAD_TOKEN,
# NOMAD_CACERT... for the inventory update, so the file names no connection option at all. Job templates that
# use this inventory need the same credential, since the token is never stored with the hosts.
plugin: nomadops.nomad.nomad_allocs
namespace: prod
client_status: [running]
keyed_groups:
  - key: nomad_task_group
    prefix: group

# A playbook over any of these sources (ansible-playbook -i web.nomad_allocs.yml release.yml --forks 3):
# every module runs inside the allocation's task through the nomadops.nomad.nomad_exec connection plugin,
# which takes the allocation and task from the host variables and the token from NOMAD_TOKEN (or a vaulted
# ansible_nomad_token variable).
#
# - name: Write the release marker into every web allocation
#   hosts: nomad_job_web
#   gather_facts: false
#   tasks:
#     - name: Find the task directory
#       ansible.builtin.raw: printf %s "$NOMAD_TASK_DIR"
#       register: task_dir
#       changed_when: false
#     - name: Write the marker
#       ansible.builtin.copy:
#         dest: "{{ task_dir.stdout }}/release.txt"
#         content: "{{ inventory_hostname }} {{ nomad_alloc_id }}\n"
#         mode: "0644"
"""

import re

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import read_allocation, task_group_of
from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.concurrency import concurrent_map
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import select
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import (
    SELECTOR_ARGUMENT_SPEC,
    SELECTOR_KEYS,
    bexpr_quote,
    selector_filter,
)
from ansible_collections.nomadops.nomad.plugins.plugin_utils._inventory_base import NomadInventoryBase, name_part
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import (
    explicit_option_values,
    validated_option_values,
)

CONNECTION_PLUGIN = "nomadops.nomad.nomad_exec"
SHORT_ID_LENGTH = 8
_ALLOC_INDEX = re.compile(r"\[(\d+)\]$")


# --------------------------------------------------------------------------------------------- records
def allocation_record(stub: dict) -> dict:
    """The part of a list stub the inventory needs (what the cache keeps): names, placement and task states."""
    states = stub.get("TaskStates") or {}
    return {
        "ID": stub["ID"], "Name": stub.get("Name") or "", "Namespace": stub.get("Namespace") or "default",
        "JobID": stub.get("JobID") or "", "JobVersion": stub.get("JobVersion"), "TaskGroup": stub.get("TaskGroup") or "",
        "NodeID": stub.get("NodeID") or "", "NodeName": stub.get("NodeName") or "",
        "ClientStatus": stub.get("ClientStatus") or "",
        "Tasks": {name: (state or {}).get("State") for name, state in sorted(states.items())},
    }


def merged_meta(job: dict, group_name: str) -> dict:
    """{"group": job meta < group meta, "tasks": {task: its own meta}} from a job document."""
    group = task_group_of({"Job": job, "TaskGroup": group_name}) or {}
    meta = dict(job.get("Meta") or {}, **(group.get("Meta") or {}))
    tasks = {task.get("Name"): dict(task.get("Meta") or {}) for task in group.get("Tasks") or ()}
    return {"group": meta, "tasks": tasks}


def attach_meta(client: NomadClient, records: list) -> None:
    """Add "Meta" to each record, reading one full allocation per job version (its embedded Job)."""
    representatives = {}
    for record in records:
        representatives.setdefault((record["Namespace"], record["JobID"], record["JobVersion"]), record["ID"])

    def job_of(key):
        namespace, _job, _version = key
        try:
            return read_allocation(client, representatives[key], namespace=namespace).get("Job") or {}
        except NomadNotFoundError:  # garbage-collected since it was listed
            return {}

    jobs = dict(zip(representatives, concurrent_map(job_of, representatives)))
    for record in records:
        job = jobs[(record["Namespace"], record["JobID"], record["JobVersion"])]
        record["Meta"] = merged_meta(job, record["TaskGroup"])


# --------------------------------------------------------------------------------------------- hosts
def allocation_host_base(record: dict, id_length: int = SHORT_ID_LENGTH) -> str:
    """<job>-<group>-<index>-<short id>: readable, stable for the allocation, safe in host patterns."""
    found = _ALLOC_INDEX.search(record["Name"])
    index = found.group(1) if found else "x"
    parts = (record["JobID"], record["TaskGroup"], index, record["ID"][:id_length])
    return "-".join(name_part(part) for part in parts)


def allocation_host_names(records: list) -> dict:
    """{allocation ID: host name}; allocations whose short names collide get their full IDs instead."""
    names = {record["ID"]: allocation_host_base(record) for record in records}
    seen = {}
    for alloc_id, name in names.items():
        seen.setdefault(name, []).append(alloc_id)
    for record in records:
        if len(seen[names[record["ID"]]]) > 1:
            names[record["ID"]] = allocation_host_base(record, id_length=len(record["ID"]))
    return names


def listing_order(record: dict) -> tuple:
    """Hosts in a stable, readable order (namespace, job, group, index) whatever order Nomad listed them in."""
    found = _ALLOC_INDEX.search(record["Name"])
    return (record["Namespace"], record["JobID"], record["TaskGroup"], int(found.group(1)) if found else -1, record["ID"])


def exec_target(record: dict, task: str | None) -> str | None:
    """The task a host execs into: the given one, the only task, the only running task, or None."""
    if task:
        return task
    tasks = record["Tasks"]
    if len(tasks) == 1:
        return next(iter(tasks))
    running = [name for name, state in tasks.items() if state == "running"]
    return running[0] if len(running) == 1 else None


def host_targets(record: dict, hosts_per: str, task: str | None, base_name: str) -> list:
    """[(host name, task)] of one allocation."""
    if hosts_per == "allocation":
        return [(base_name, exec_target(record, task))]
    tasks = [task] if task else list(record["Tasks"])
    return [(f"{base_name}-{name_part(name)}", name) for name in tasks if name in record["Tasks"]]


def host_vars_of(record: dict, task: str | None, connection_vars: dict, with_meta: bool) -> dict:
    host_vars = {
        "nomad_alloc_id": record["ID"], "nomad_alloc_name": record["Name"], "nomad_job": record["JobID"],
        "nomad_task_group": record["TaskGroup"], "nomad_namespace": record["Namespace"],
        "nomad_node_id": record["NodeID"], "nomad_node_name": record["NodeName"],
        "nomad_client_status": record["ClientStatus"], "nomad_task": task,
        "ansible_connection": CONNECTION_PLUGIN, "ansible_nomad_alloc_id": record["ID"],
    }
    if task:
        host_vars["ansible_nomad_task"] = task
    host_vars.update(connection_vars)
    host_vars["ansible_nomad_namespace"] = record["Namespace"]
    if with_meta:
        meta = record.get("Meta") or {"group": {}, "tasks": {}}
        host_vars["nomad_meta"] = dict(meta["group"], **meta["tasks"].get(task, {}))
    return host_vars


def default_groups(record: dict) -> tuple:
    return (
        f"nomad_namespace_{record['Namespace']}",
        f"nomad_job_{record['JobID']}",
        f"nomad_task_group_{record['JobID']}_{record['TaskGroup']}",
        f"nomad_node_{record['NodeName'] or record['NodeID']}",
        f"nomad_client_status_{record['ClientStatus']}",
    )


# --------------------------------------------------------------------------------------------- plugin
class InventoryModule(NomadInventoryBase):

    NAME = "nomadops.nomad.nomad_allocs"
    FILE_SUFFIXES = ("nomad_allocs.yml", "nomad_allocs.yaml")
    CACHE_FORMAT = 2
    CACHE_RECORDS_KEY = "allocations"
    IDENTITY_SALT = b"nomadops.nomad.nomad_allocs cache identity\0"
    RECORD_NOUN = "allocation"

    def _selector(self) -> dict:
        values = explicit_option_values(self, SELECTOR_KEYS)
        values["client_status"] = self.get_option("client_status")
        selector = validated_option_values(values, SELECTOR_ARGUMENT_SPEC)
        task = self.get_option("task")
        if task:
            task_clause = f"{bexpr_quote(task)} in TaskStates"
            selector["filter"] = task_clause if not selector.get("filter") else f"{task_clause} and ({selector['filter']})"
        return selector

    def _described(self, options, selector: dict) -> str:
        expression = selector_filter(selector) or "(no filter)"
        return f'{expression} in namespace "{options.namespace}" at {options.address}'

    def _fingerprint_extras(self) -> dict:
        return {"meta": self.get_option("meta")}

    def _fetch_records(self, options, selector: dict) -> list:
        with NomadClient(options, warn=self.display.warning) as client:
            selection = select(client, selector)
            records = [allocation_record(stub) for stub in selection.allocations]
            self._why_empty = selection.why_empty
            if self.get_option("meta") and records:
                attach_meta(client, records)
        return records

    def _populate(self, records: list, options) -> None:
        connection_vars = self._connection_host_vars(options)
        names = allocation_host_names(records)
        hosts_per, task, with_meta = self.get_option("hosts_per"), self.get_option("task"), self.get_option("meta")
        group = self._group_adder()
        for record in sorted(records, key=listing_order):
            groups = [group(name) for name in default_groups(record)]
            for host, host_task in host_targets(record, hosts_per, task, names[record["ID"]]):
                self._add_host(host, host_vars_of(record, host_task, connection_vars, with_meta), groups)
