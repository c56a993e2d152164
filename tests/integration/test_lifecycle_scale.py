# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One task stops 1,000 (virtual) allocations selected by job and reports every one of them."""

from __future__ import annotations

import pytest
import yaml

COUNT = 1000


@pytest.fixture
def fleet(start_emulator, tmp_path):
    scenario = tmp_path / "fleet.yml"
    scenario.write_text(yaml.safe_dump({
        "region": "global", "datacenter": "dc1", "acl": False, "namespaces": ["default"],
        "nodes": [{"name": "node-1"}], "jobs": [],
        "virtual": {"count": COUNT, "job": "fleet", "jobs": 1, "namespace": "default"},
    }))
    return start_emulator(str(scenario))


def test_stop_a_thousand_allocations_in_one_task(fleet, ansible_runner):
    ids = {a["ID"] for a in fleet.allocations("default")}
    assert len(ids) == COUNT
    fleet.control.reset_requests()

    run = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_stop", "job=fleet-0 parallelism=25 wait=true",
                               env={"NOMAD_ADDR": fleet.address}).assert_ok()

    result = run.results[-1]["result"]
    assert result["changed"] is True
    assert [a["ID"] for a in result["allocations"]] == [a["ID"] for a in fleet.allocations("default")]
    assert {a["ID"] for a in result["allocations"]} == ids
    assert all(a["changed"] and a["JobID"] == "fleet-0" and "error" not in a for a in result["allocations"])
    assert len(set(result["evaluation_ids"])) == COUNT
    counts = fleet.control.requests()
    assert sorted({n for path, n in counts.items() if path.endswith("/stop")}) == [1]
    assert sum(1 for path in counts if path.endswith("/stop")) == COUNT
    listed = fleet.allocations("default")
    assert {a["DesiredStatus"] for a in listed} == {"stop"}
    assert {a["ClientStatus"] for a in listed} == {"complete"}  # wait=true returned after all finished

    again = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_stop", "job=fleet-0 parallelism=25",
                                 env={"NOMAD_ADDR": fleet.address}).assert_ok()
    second = again.results[-1]["result"]
    assert second["changed"] is False
    assert len(second["allocations"]) == COUNT and second["evaluation_ids"] == []


def test_failures_among_a_thousand_are_all_listed_and_the_rest_still_stop(fleet, ansible_runner):
    listed = fleet.allocations("default")
    broken = [listed[10], listed[500], listed[999]]
    for alloc in broken:
        fleet.control.add_fault(method="POST", path=f"^/v1/allocation/{alloc['ID']}/stop$", count=1,
                                action="status", status=500, body="rpc error: No cluster leader")

    run = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_stop", "job=fleet-0 parallelism=25",
                               env={"NOMAD_ADDR": fleet.address})

    assert run.rc != 0
    result = run.results[-1]["result"]
    labels = ", ".join(f"{a['ID'][:8]} ({a['Name']})" for a in broken)
    assert result["msg"] == f"3 of {COUNT} allocations failed: {labels}: rpc error: No cluster leader"
    assert result["changed"] is True
    assert len(result["allocations"]) == COUNT and len(result["evaluation_ids"]) == COUNT - 3
    failed = {a["ID"] for a in result["allocations"] if "error" in a}
    assert failed == {a["ID"] for a in broken}
    desired = {a["ID"]: a["DesiredStatus"] for a in fleet.allocations("default")}
    assert {desired[alloc_id] for alloc_id in failed} == {"run"}
    assert sum(1 for status in desired.values() if status == "stop") == COUNT - 3
