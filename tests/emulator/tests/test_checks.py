# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Service checks the emulator runs for real (script / http / tcp) and GET /v1/allocation/:id/checks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import yaml
from conftest import MANAGEMENT, READ_ONLY, REPO_ROOT, Api

from tests.waiting import wait_until

LIFECYCLE_ONLY = "00000000-0000-4000-8000-000000000003"
SERVER = "import http.server, sys; http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scenario(tmp_path, port: int, closed_port: int) -> str:
    """A job whose task serves its task directory over HTTP on `port`, with one check of each kind."""
    data = {
        "acl": True,
        "tokens": [
            {"name": "management", "secret": MANAGEMENT, "type": "management"},
            {"name": "read-only", "secret": READ_ONLY, "type": "client", "namespaces": {"default": ["read-job"]}},
            {"name": "lifecycle-only", "secret": LIFECYCLE_ONLY, "type": "client",
             "namespaces": {"default": ["alloc-lifecycle"]}},
        ],
        "jobs": [{
            "id": "site", "type": "service",
            "groups": [{
                "name": "web", "count": 1,
                "tasks": [{"name": "server", "command": [sys.executable, "-c", SERVER, str(port)],
                           "kill_timeout": "2s"}],
                "services": [{"name": "site", "port": port, "checks": [
                    {"name": "page", "type": "http", "path": "/healthy", "interval": "200ms", "timeout": "1s"},
                    {"name": "socket", "type": "tcp", "interval": "200ms", "timeout": "1s"},
                    {"name": "closed", "type": "tcp", "port": closed_port, "interval": "200ms", "timeout": "1s"},
                    {"name": "file", "type": "script", "command": 'cat "$NOMAD_TASK_DIR/healthy"',
                     "interval": "200ms", "timeout": "1s"},
                    {"name": "slow", "type": "script", "command": "sleep 5", "interval": "200ms",
                     "timeout": "300ms", "mode": "readiness"},
                    {"name": "later", "type": "script", "command": "true", "interval": "1h"},
                ]}],
            }],
        }],
    }
    path = tmp_path / "checks.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture
def site(emulator_factory, tmp_path):
    port, closed_port = free_port(), free_port()
    emulator = emulator_factory(scenario(tmp_path, port, closed_port))
    api = Api(emulator, token=MANAGEMENT)
    alloc = api.by_job("site")[0]
    return api, alloc, closed_port


def by_name(body: dict) -> dict:
    return {result["Check"]: result for result in body.values()}


def results(api: Api, alloc_id: str) -> dict:
    response = api.get(f"/v1/allocation/{alloc_id}/checks")
    assert response.status_code == 200, response.text
    return by_name(response.json())


def settled(api: Api, alloc_id: str, **statuses):
    """Wait until the named checks have these statuses; returns all results."""
    def check():
        seen = results(api, alloc_id)
        return seen if all(seen[name]["Status"] == status for name, status in statuses.items()) else None
    return wait_until(check, timeout=15, what=f"checks {statuses}")


def test_results_have_nomads_shape(site):
    api, alloc, closed_port = site
    seen = settled(api, alloc["ID"], socket="success", closed="failure", slow="failure")
    assert set(seen) == {"page", "socket", "closed", "file", "slow", "later"}
    for result in seen.values():
        assert len(result["ID"]) == 32 and int(result["ID"], 16) >= 0
        assert result["Group"] == alloc["Name"] == "site.web[0]"
        assert result["Service"] == "site"
        assert "Task" not in result  # group-level service
        assert isinstance(result["Timestamp"], int) and result["Timestamp"] > 1_600_000_000
        assert list(result) == sorted(result)
    assert seen["socket"]["Output"] == "nomad: tcp ok"
    assert seen["closed"]["Output"] == f"dial tcp 127.0.0.1:{closed_port}: connect: connection refused"
    assert seen["slow"]["Output"] == "nomad: context deadline exceeded"
    assert seen["slow"]["Mode"] == "readiness" and seen["socket"]["Mode"] == "healthiness"
    assert seen["later"] == dict(seen["later"], Status="pending", Output="nomad: waiting to run")
    assert "StatusCode" not in seen["socket"]


def test_http_and_script_checks_follow_the_task(site):
    api, alloc, _closed = site
    # until the task's HTTP server listens, the check fails with a dial error, then with the 404 of the page
    seen = wait_until(lambda: (found := results(api, alloc["ID"]))["page"].get("StatusCode") == 404 and found,
                      timeout=15, what="the 404 of /healthy")
    assert seen["page"]["Status"] == "failure" and "404" in seen["page"]["Output"]
    assert seen["file"]["Status"] == "failure"
    assert "No such file" in seen["file"]["Output"]
    task_dir = api.emulator.control.tasks(alloc["ID"])["server"]["task_dir"]
    with open(os.path.join(task_dir, "healthy"), "w", encoding="utf-8") as handle:
        handle.write("all good\n")
    seen = settled(api, alloc["ID"], page="success", file="success")
    assert seen["page"]["Output"] == "nomad: http ok" and seen["page"]["StatusCode"] == 200
    assert seen["file"]["Output"] == "all good\n"
    os.remove(os.path.join(task_dir, "healthy"))
    settled(api, alloc["ID"], page="failure", file="failure")


def test_errors_acl_and_routes(site):
    api, alloc, _closed = site
    alloc_id = alloc["ID"]
    assert api.get(f"/v1/allocation/{alloc_id}/checks", token=READ_ONLY).status_code == 200
    denied = api.get(f"/v1/allocation/{alloc_id}/checks", token=LIFECYCLE_ONLY)
    assert (denied.status_code, denied.text) == (403, "Permission denied")
    unknown = "11111111-2222-4333-8444-555555555555"
    missing = api.get(f"/v1/allocation/{unknown}/checks")
    assert (missing.status_code, missing.text) == (404, f'Unknown allocation "{unknown}"')
    short = api.get(f"/v1/allocation/{alloc_id[:8]}/checks")
    assert (short.status_code, short.text) == (500, "alloc lookup failed: index error: UUID must be 36 characters")
    slash = api.get(f"/v1/allocation/{alloc_id}/checks/")
    assert (slash.status_code, slash.text) == (404, "resource not found")
    client_route = api.get(f"/v1/client/allocation/{alloc_id}/checks")
    assert client_route.status_code == 200 and set(by_name(client_route.json())) == set(results(api, alloc_id))
    assert api.post(f"/v1/allocation/{alloc_id}/checks").status_code == 200  # no method check
    bad_index = api.get(f"/v1/allocation/{alloc_id}/checks", params={"index": "abc"})
    assert bad_index.status_code == 400 and bad_index.text.startswith("Invalid index{")


def test_results_are_purged_when_the_allocation_stops(site):
    api, alloc, _closed = site
    assert api.post(f"/v1/allocation/{alloc['ID']}/stop").status_code == 200
    wait_until(lambda: api.allocation(alloc["ID"])["ClientStatus"] == "complete", what="the stop")
    response = api.get(f"/v1/allocation/{alloc['ID']}/checks")
    assert (response.status_code, response.text) == (200, "null")


def test_an_allocation_without_checks_answers_null(shared_api):
    report = shared_api.by_job("report")[0]
    response = shared_api.get(f"/v1/allocation/{report['ID']}/checks")
    assert (response.status_code, response.text) == (200, "null")


def test_a_check_the_emulator_cannot_run_is_a_scenario_error(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"jobs": [{"id": "x", "groups": [{
        "name": "g", "tasks": [{"name": "t"}],
        "services": [{"name": "s", "checks": [{"name": "c", "type": "grpc"}]}]}]}]}))
    run = subprocess.run([sys.executable, "-m", "tests.emulator", "--scenario", str(path), "--port", "0"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 2
    assert run.stderr.strip() == ("nomad emulator: job 'x' group 'g': service 's' check 'c': type must be one of "
                                  "script, http, tcp, got 'grpc'")
