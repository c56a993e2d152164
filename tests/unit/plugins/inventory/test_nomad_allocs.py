# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pure parts of the nomad_allocs inventory plugin: records, host names, exec targets, meta, host vars.
The plugin itself runs under real ansible-inventory in tests/integration/test_inventory.py."""

from __future__ import annotations

import re

from ansible_collections.nomadops.nomad.plugins.inventory import nomad_allocs
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import connection_options_from_params
from ansible_collections.nomadops.nomad.plugins.plugin_utils._inventory_base import connection_host_vars

PATTERN_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


def stub(alloc_id="5a22c1f3-0000-4000-8000-000000000001", name="web.frontend[0]", job="web", group="frontend",
         tasks=None, namespace="default"):
    states = {task: {"State": state} for task, state in (tasks or {"server": "running"}).items()}
    return {"ID": alloc_id, "Name": name, "Namespace": namespace, "JobID": job, "JobVersion": 3, "TaskGroup": group,
            "NodeID": "node-id", "NodeName": "node-1", "ClientStatus": "running", "TaskStates": states,
            "AllocatedResources": {"ignored": True}}


def test_record_keeps_only_what_the_inventory_needs():
    record = nomad_allocs.allocation_record(stub(tasks={"sidecar": "running", "server": "pending"}))
    assert record["Tasks"] == {"server": "pending", "sidecar": "running"}
    assert "AllocatedResources" not in record and "TaskStates" not in record
    assert nomad_allocs.allocation_record(dict(stub(), TaskStates=None))["Tasks"] == {}


def test_host_names_are_readable_and_safe_in_patterns():
    record = nomad_allocs.allocation_record(stub(job="my job:v2", group="front[end]", name="my job:v2.front[end][12]"))
    name = nomad_allocs.allocation_host_base(record)
    assert name == "my_job_v2-front_end_-12-5a22c1f3"
    assert PATTERN_SAFE.match(name)


def test_colliding_short_names_use_full_ids():
    first = nomad_allocs.allocation_record(stub(alloc_id="5a22c1f3-0000-4000-8000-000000000001"))
    second = nomad_allocs.allocation_record(stub(alloc_id="5a22c1f3-0000-4000-8000-000000000002"))
    other = nomad_allocs.allocation_record(stub(alloc_id="9f1c0000-0000-4000-8000-000000000003", name="web.frontend[1]"))
    names = nomad_allocs.allocation_host_names([first, second, other])
    assert names[first["ID"]] == "web-frontend-0-5a22c1f3-0000-4000-8000-000000000001"
    assert names[second["ID"]] == "web-frontend-0-5a22c1f3-0000-4000-8000-000000000002"
    assert names[other["ID"]] == "web-frontend-1-9f1c0000"


def test_exec_target_given_only_task_only_running_task_or_none():
    record = nomad_allocs.allocation_record
    assert nomad_allocs.exec_target(record(stub(tasks={"a": "running", "b": "running"})), "b") == "b"
    assert nomad_allocs.exec_target(record(stub(tasks={"only": "dead"})), None) == "only"
    assert nomad_allocs.exec_target(record(stub(tasks={"migrate": "dead", "app": "running"})), None) == "app"
    assert nomad_allocs.exec_target(record(stub(tasks={"a": "running", "b": "running"})), None) is None


def test_hosts_per_task_one_host_per_task_or_only_the_given_one():
    record = nomad_allocs.allocation_record(stub(tasks={"server": "running", "sidecar": "running"}))
    assert nomad_allocs.host_targets(record, "task", None, "base") == [("base-server", "server"), ("base-sidecar", "sidecar")]
    assert nomad_allocs.host_targets(record, "task", "sidecar", "base") == [("base-sidecar", "sidecar")]
    assert nomad_allocs.host_targets(record, "task", "missing", "base") == []
    assert nomad_allocs.host_targets(record, "allocation", None, "base") == [("base", None)]


def test_meta_merges_job_group_and_task_like_nomad():
    job = {"Meta": {"team": "payments", "tier": "job"},
           "TaskGroups": [{"Name": "other", "Meta": {"tier": "other"}},
                          {"Name": "frontend", "Meta": {"tier": "edge"},
                           "Tasks": [{"Name": "server", "Meta": {"tier": "task", "role": "http"}}, {"Name": "sidecar"}]}]}
    meta = nomad_allocs.merged_meta(job, "frontend")
    assert meta == {"group": {"team": "payments", "tier": "edge"},
                    "tasks": {"server": {"tier": "task", "role": "http"}, "sidecar": {}}}
    record = dict(nomad_allocs.allocation_record(stub()), Meta=meta)
    options = connection_options_from_params({"address": "http://nomad:4646"})
    host_vars = nomad_allocs.host_vars_of(record, "server", connection_host_vars(options, ()), True)
    assert host_vars["nomad_meta"] == {"team": "payments", "tier": "task", "role": "http"}


def test_host_vars_never_carry_secrets_and_use_the_allocations_namespace():
    options = connection_options_from_params({"address": "https://ops:hunter22@nomad:4646", "token": "s3cr3t-token-value",
                                              "namespace": "*", "region": "eu", "validate_certs": False})
    connection_vars = connection_host_vars(options, ())
    record = nomad_allocs.allocation_record(stub(namespace="prod"))
    host_vars = nomad_allocs.host_vars_of(record, None, connection_vars, False)
    text = repr(host_vars)
    assert "s3cr3t-token-value" not in text and "hunter22" not in text
    assert host_vars["ansible_nomad_address"] == "https://nomad:4646"
    assert host_vars["ansible_nomad_namespace"] == "prod" and host_vars["nomad_namespace"] == "prod"
    assert host_vars["ansible_nomad_region"] == "eu" and host_vars["ansible_nomad_validate_certs"] is False
    assert "ansible_nomad_task" not in host_vars and host_vars["nomad_task"] is None
    assert "nomad_meta" not in host_vars


def test_default_groups_and_listing_order():
    record = nomad_allocs.allocation_record(stub())
    assert nomad_allocs.default_groups(record) == (
        "nomad_namespace_default", "nomad_job_web", "nomad_task_group_web_frontend", "nomad_node_node-1",
        "nomad_client_status_running")
    records = [nomad_allocs.allocation_record(stub(alloc_id=f"{n:08x}-0000-4000-8000-000000000000", name=f"web.frontend[{n}]"))
               for n in (10, 2, 1)]
    assert [r["Name"] for r in sorted(records, key=nomad_allocs.listing_order)] == [
        "web.frontend[1]", "web.frontend[2]", "web.frontend[10]"]
