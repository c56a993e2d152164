# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Virtual (process-less) allocations: shape and state-only lifecycle operations."""
from __future__ import annotations

import pytest

from conftest import Api


@pytest.fixture
def vapi(emulator_factory) -> Api:
    return Api(emulator_factory(virtual=500))


def virtual_allocs(api: Api) -> list:
    return [alloc for alloc in api.allocations() if alloc["JobID"].startswith("virtual-")]


def test_virtual_allocation_shape(vapi):
    allocs = virtual_allocs(vapi)
    assert len(allocs) == 500
    assert {a["JobID"] for a in allocs} == {f"virtual-{n}" for n in range(10)}
    assert len({a["ID"] for a in allocs}) == 500
    first = allocs[0]
    assert first["ClientStatus"] == "running" and first["DesiredStatus"] == "run"
    assert first["Name"] == "virtual-0.main[0]"
    assert set(first["TaskStates"]) == {"main"} and first["TaskStates"]["main"]["State"] == "running"
    assert first["DeploymentStatus"]["Healthy"] is True
    full = vapi.allocation(first["ID"])
    assert full["Job"]["ID"] == "virtual-0" and full["ModifyIndex"] == first["CreateIndex"]
    assert vapi.emulator.control.tasks(first["ID"])["main"]["pid"] is None


def test_virtual_stop_signal_restart_change_state_only(vapi):
    first, second, third = virtual_allocs(vapi)[:3]
    stop = vapi.post(f"/v1/allocation/{first['ID']}/stop")
    assert stop.status_code == 200
    stopped = vapi.allocation(first["ID"])
    assert stopped["DesiredStatus"] == "stop" and stopped["ClientStatus"] == "complete"
    assert stopped["NextAllocation"] == "" and stopped["TaskStates"]["main"]["State"] == "dead"
    listed = next(a for a in vapi.allocations() if a["ID"] == first["ID"])
    assert listed["ClientStatus"] == "complete" and listed["ModifyIndex"] > first["ModifyIndex"]

    signal = vapi.post(f"/v1/client/allocation/{second['ID']}/signal", json={"Signal": "SIGHUP"})
    assert signal.status_code == 200
    assert vapi.emulator.control.tasks(second["ID"])["main"]["signals"] == ["SIGHUP"]
    dead = vapi.post(f"/v1/client/allocation/{first['ID']}/signal", json={"Signal": "SIGHUP"})
    assert dead.status_code == 500 and "Task not running" in dead.text

    restart = vapi.post(f"/v1/client/allocation/{third['ID']}/restart")
    assert restart.status_code == 200
    assert vapi.allocation(third["ID"])["TaskStates"]["main"]["Restarts"] == 1


def test_scenario_virtual_block(emulator_factory, tmp_path):
    scenario = tmp_path / "virtual.yml"
    scenario.write_text("namespaces: [default, bench]\n"
                        "virtual:\n  count: 120\n  job: bulk\n  jobs: 4\n  namespace: bench\n")
    api = Api(emulator_factory(str(scenario)))
    allocs = api.allocations(namespace="bench")
    assert len(allocs) == 120
    assert {a["JobID"] for a in allocs} == {"bulk-0", "bulk-1", "bulk-2", "bulk-3"}
    assert min(a["CreateIndex"] for a in allocs) == 5
    assert api.allocations(namespace="default") == []
