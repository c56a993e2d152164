# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Blocking queries: index/wait parsing, return on change, return on timeout (reference §3)."""
from __future__ import annotations

import threading
import time

import pytest

from tests.waiting import wait_until


@pytest.fixture(scope="module", autouse=True)
def settled(shared_api):
    """Wait until the shared emulator stops changing on its own (health, the batch job finishing)."""
    def quiet():
        allocs = shared_api.allocations()
        services = [a for a in allocs if a["JobType"] == "service"]
        return all(a["DeploymentStatus"] for a in services) and all(
            a["ClientStatus"] != "pending" for a in allocs) and any(a["ClientStatus"] == "complete" for a in allocs)
    wait_until(quiet, what="the shared emulator to settle")


def test_invalid_index_and_wait(shared_api):
    for params, text in (({"index": "abc"}, "Invalid index"), ({"index": "-1"}, "Invalid index"),
                         ({"index": "1", "wait": "10"}, "Invalid wait time"),
                         ({"index": "1", "wait": "5x"}, "Invalid wait time"),
                         ({"index": "abc", "wait": "5x"}, "Invalid wait time")):
        for path in ("/v1/allocations", f"/v1/allocation/{shared_api.allocations()[0]['ID']}"):
            response = shared_api.get(path, params=params)
            assert (response.status_code, response.text) == (400, text), (path, params)


def test_empty_index_and_wait_are_ignored(shared_api):
    assert shared_api.get("/v1/allocations", params={"index": "", "wait": ""}).status_code == 200


def test_go_durations(shared_api):
    index = int(shared_api.get("/v1/allocations").headers["X-Nomad-Index"])
    for wait in ("0.2s", "200ms", ".2s", "200000us", "1h", "+100ms"):
        response = shared_api.get("/v1/allocations", params={"index": index - 1, "wait": wait})
        assert response.status_code == 200, wait


def test_emulator_exits_promptly_with_a_blocked_query(emulator_factory):
    emulator = emulator_factory()
    from conftest import Api
    api = Api(emulator)
    index = int(api.get("/v1/allocations").headers["X-Nomad-Index"])
    blocked = threading.Thread(target=lambda: _ignore_errors(
        lambda: api.get("/v1/allocations", params={"index": index + 1000, "wait": "5m"})))
    blocked.start()
    time.sleep(0.3)
    started = time.monotonic()
    emulator.stop()
    assert emulator.process.returncode == 0
    assert time.monotonic() - started < 9
    blocked.join(timeout=30)


def _ignore_errors(call):
    import requests
    try:
        call()
    except requests.RequestException:
        pass


def test_wait_alone_does_not_block(shared_api):
    started = time.monotonic()
    assert shared_api.get("/v1/allocations", params={"wait": "5s"}).status_code == 200
    assert time.monotonic() - started < 4


def test_list_blocks_until_timeout_without_change(shared_api):
    index = int(shared_api.get("/v1/allocations").headers["X-Nomad-Index"])
    started = time.monotonic()
    response = shared_api.get("/v1/allocations", params={"index": index, "wait": "700ms"})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.headers["X-Nomad-Index"] == str(index)
    assert elapsed >= 0.65


def test_index_below_current_returns_at_once(shared_api):
    index = int(shared_api.get("/v1/allocations").headers["X-Nomad-Index"])
    started = time.monotonic()
    assert shared_api.get("/v1/allocations", params={"index": index - 1, "wait": "10s"}).status_code == 200
    assert time.monotonic() - started < 5


def _later(action, delay: float) -> threading.Thread:
    def run():
        time.sleep(delay)
        action()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_list_returns_on_change(api):
    response = api.get("/v1/allocations")
    index = int(response.headers["X-Nomad-Index"])
    alloc_id = api.by_job("web")[0]["ID"]
    thread = _later(lambda: api.post(f"/v1/allocation/{alloc_id}/stop"), 0.5)
    started = time.monotonic()
    blocked = api.get("/v1/allocations", params={"index": index, "wait": "30s"})
    thread.join()
    assert time.monotonic() - started < 20
    assert int(blocked.headers["X-Nomad-Index"]) > index


def test_get_allocation_returns_on_its_change(api):
    alloc_id = api.by_job("web")[0]["ID"]
    first = api.get(f"/v1/allocation/{alloc_id}")
    index = int(first.headers["X-Nomad-Index"])
    thread = _later(lambda: api.post(f"/v1/client/allocation/{alloc_id}/restart", json={"TaskName": "sidecar"}), 0.5)
    blocked = api.get(f"/v1/allocation/{alloc_id}", params={"index": index, "wait": "30s"})
    thread.join()
    assert int(blocked.headers["X-Nomad-Index"]) > index
    assert blocked.json()["ModifyIndex"] > index


def test_services_blocking_query_times_out(shared_api):
    alloc_id = shared_api.by_job("web")[0]["ID"]
    response = shared_api.get(f"/v1/allocation/{alloc_id}/services")
    index = int(response.headers["X-Nomad-Index"])
    started = time.monotonic()
    blocked = shared_api.get(f"/v1/allocation/{alloc_id}/services", params={"index": index, "wait": "300ms"})
    assert blocked.status_code == 200 and time.monotonic() - started >= 0.25
