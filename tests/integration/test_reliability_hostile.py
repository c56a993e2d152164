# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A broken or hostile endpoint, and the operator's credentials (RELIABILITY.md, "Hostile or broken endpoint").

Real ansible runs against the emulator, whose fault rules play the hostile endpoint: an exec upgrade answered
with a redirect, allocation IDs that are not UUIDs, listings whose next tokens never end. Also: a collection
module about to run inside an allocation never receives the token, a password in address never shows, whatever
its length, and the exec action keeps a bounded amount of output.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from tests.integration.conftest import VENV_BIN, AnsibleRunner
from tests.integration.test_connection import allocations, assert_one_line, host_line, host_play, result_of, write_inventory

TOKEN = "3f1c2b9e-7d4a-4e8b-9c0d-5a6b7c8d9e0f"
SHORT_PASSWORD = "Zq7"
FAILED = ("failed", "ignored")  # a failed task with ignore_errors is recorded as "ignored"
EMULATOR_SCENARIO = "connection.yml"


@pytest.fixture(scope="module")
def apps(emulator):
    return [a["ID"] for a in allocations(emulator, "app")]


@pytest.fixture
def runner(emulator, apps, tmp_path):
    runner = AnsibleRunner(emulator.address, tmp_path / "work")
    runner.inventory = write_inventory(tmp_path / "hosts.ini", {
        "apps": [host_line("app0", apps[0], ansible_nomad_token=TOKEN)],
        "local": ["localhost ansible_connection=local ansible_python_interpreter={{ ansible_playbook_python }}"],
    })
    return runner


@pytest.fixture
def faults(emulator):
    emulator.control.clear_faults()
    yield emulator.control
    emulator.control.clear_faults()


class Trap:
    """A TCP listener standing for the place a redirect points to: records every connection and byte."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, _peer = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    self.received.append(connection.recv(65536))
                except OSError:
                    self.received.append(b"")

    def close(self):
        self.server.close()
        self.thread.join(10)


def local_task(name, module, **args):
    return {"name": name, module: args, "ignore_errors": True}


def assert_no_secret(run, *secrets):
    text = run.output + json.dumps(run.results)
    for secret in secrets:
        assert secret not in text, [line for line in text.splitlines() if secret in line][:5]


# ------------------------------------------------------------------------------------------- A: redirects
def test_an_exec_upgrade_answered_with_a_redirect_is_refused_and_nothing_goes_there(emulator, apps, runner, faults):
    trap = Trap()
    try:
        location = f"ws://127.0.0.1:{trap.port}/v1/client/allocation/{apps[0]}/exec"
        faults.add_fault(path="/exec$", action="redirect", status=302, location=location, count=100)
        run = runner.playbook(
            host_play("localhost", local_task("exec", "nomadops.nomad.nomad_alloc_exec", id=apps[0], command="true",
                                              token=TOKEN, http_auth=f"ops:{SHORT_PASSWORD}"))
            + host_play("apps", {"name": "raw", "raw": "true"}, ignore_unreachable=True, ignore_errors=True),
            verbosity=4,
        )
    finally:
        trap.close()
    for message in (result_of(run, "exec", "localhost")["msg"], result_of(run, "raw", "app0")["msg"]):
        assert_one_line(message, "Nomad answered 302", "redirects are not followed", emulator.address.split("//")[1])
    assert trap.received == [], "the redirect was followed"
    assert_no_secret(run, TOKEN, SHORT_PASSWORD)


# ------------------------------------------------------------------------------------------- C: IDs
def test_an_allocation_id_that_is_not_a_uuid_is_never_used(emulator, apps, runner, faults, tmp_path):
    hostile = f"{apps[1]}/../../../evil"
    faults.add_fault(path="^/v1/allocations?(/|$)", action="rewrite_body", old=apps[1], new=hostile, count=1000)
    emulator.control.reset_requests()
    dest = tmp_path / "fetched" / "dest"
    dest.mkdir(parents=True)
    run = runner.playbook(host_play(
        "localhost",
        local_task("fetch", "nomadops.nomad.nomad_alloc_fetch", id=apps[1], src="alloc/logs/main.stdout.0",
                   dest=str(dest)),
        local_task("exec", "nomadops.nomad.nomad_alloc_exec", id=apps[1], command="true"),
        local_task("signal", "nomadops.nomad.nomad_alloc_signal", id=[apps[1][:8]], signal="SIGHUP"),
    ))
    for task in ("fetch", "exec", "signal"):
        result = result_of(run, task, "localhost")
        assert result["_status"] in FAILED, result
        assert_one_line(result["msg"], "is not a UUID")
    assert [path for path in (tmp_path / "fetched").rglob("*") if path != dest] == []
    used = [request for request in emulator.control.requests() if "evil" in request or "/fs/" in request
            or "/signal" in request]
    assert used == []


# ------------------------------------------------------------------------------------------- E: listings, output
def test_a_listing_whose_next_tokens_never_end_fails_clearly(emulator, runner, faults):
    faults.add_fault(path="^/v1/allocations$", action="endless_pages", count=1_000_000)
    run = runner.playbook(host_play(
        "localhost",
        local_task("info", "nomadops.nomad.nomad_alloc_info", job="app", per_page=2),
        local_task("info limited", "nomadops.nomad.nomad_alloc_info", job="app", per_page=1, limit=3),
        {"name": "lookup", "ignore_errors": True,
         "debug": {"msg": "{{ lookup('nomadops.nomad.nomad_alloc', job='app', per_page=2) }}"}},
    ), timeout=600)
    for task in ("info", "lookup"):
        result = result_of(run, task, "localhost")
        assert result["_status"] in FAILED, result
        assert_one_line(result["msg"], "new pagination tokens but no new item", "/v1/allocations")
    assert result_of(run, "info limited", "localhost")["_status"] in FAILED


def test_exec_output_beyond_max_output_bytes_is_cut_and_says_so(apps, runner):
    argv = ["/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; printf end"]
    run = runner.playbook(host_play(
        "localhost",
        local_task("capped", "nomadops.nomad.nomad_alloc_exec", id=apps[3], argv=argv, max_output_bytes=1000),
        local_task("whole", "nomadops.nomad.nomad_alloc_exec", id=apps[3], argv=argv),
    )).assert_ok()
    capped = result_of(run, "capped", "localhost")
    assert (len(capped["stdout"]), capped["stdout"].endswith("aend"), capped["truncated"]) == (1000, True, True)
    whole = result_of(run, "whole", "localhost")
    assert (len(whole["stdout"]), whole["truncated"]) == (300003, False)


# ------------------------------------------------------------------------------------------- D: address password
def test_a_short_password_in_address_never_shows_even_when_validation_fails(emulator, apps, runner, tmp_path):
    # The address comes from an extra variable: ansible-core itself quotes playbook source lines at -vvv.
    address = emulator.address.replace("://", f"://ops:{SHORT_PASSWORD}@")
    fetch = dict(id=apps[4], src="alloc/logs/main.stdout.0", dest=str(tmp_path / "out"), address="{{ hostile }}")
    run = runner.playbook(host_play(
        "localhost",
        local_task("exec", "nomadops.nomad.nomad_alloc_exec", id=apps[4], command="true", address="{{ hostile }}"),
        local_task("exec invalid", "nomadops.nomad.nomad_alloc_exec", id=apps[4], command="true",
                   address="{{ hostile }}", command_timeout="soon"),
        local_task("exec bad option", "nomadops.nomad.nomad_alloc_exec", id=apps[4], command="true",
                   address="{{ hostile }}", ca_cert=str(tmp_path / "missing.pem")),
        local_task("fetch", "nomadops.nomad.nomad_alloc_fetch", **fetch),
        local_task("fetch invalid", "nomadops.nomad.nomad_alloc_fetch", **dict(fetch, flat="maybe")),
        local_task("info invalid", "nomadops.nomad.nomad_alloc_info", job="app", per_page="many",
                   address="{{ hostile }}"),
        {"name": "lookup", "ignore_errors": True,
         "debug": {"msg": "{{ lookup('nomadops.nomad.nomad_alloc', job='app', address=hostile, timeout=-1) }}"}},
    ), extra_vars={"hostile": address}, verbosity=3, nomad_addr=False)
    assert result_of(run, "exec", "localhost")["_status"] == "changed"
    assert result_of(run, "fetch", "localhost")["_status"] in ("ok", "changed")
    for task in ("exec invalid", "exec bad option", "fetch invalid", "info invalid", "lookup"):
        assert result_of(run, task, "localhost")["_status"] in FAILED, task
    assert_no_secret(run, SHORT_PASSWORD)


# ------------------------------------------------------------------------------------------- B: the workload
@pytest.mark.parametrize("pipelining", ["0", "1"])
def test_a_module_about_to_run_inside_an_allocation_never_gets_the_token(emulator, apps, runner, pipelining):
    env = {"ANSIBLE_PIPELINING": pipelining}
    run = runner.playbook(host_play(
        "apps",
        {"name": "inside", "nomadops.nomad.nomad_alloc_info": {"job": "app"}, "ignore_errors": True},
        {"name": "delegated", "nomadops.nomad.nomad_alloc_info": {"job": "app"}, "delegate_to": "localhost"},
    ), env=env, verbosity=4)
    inside = result_of(run, "inside", "app0")
    assert inside["_status"] in FAILED, inside
    assert_one_line(inside["msg"], "inside the Nomad allocation", "token", "delegate_to: localhost")
    assert result_of(run, "delegated", "app0")["_status"] == "ok"
    assert_no_secret(run, TOKEN)
    task_dir = Path(emulator.control.tasks(apps[0])["main"]["task_dir"]).parent
    for path in task_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("verbosity", [0, 4])
def test_ad_hoc_module_on_an_allocation_host_says_to_delegate(runner, verbosity):
    argv = [str(VENV_BIN / "ansible"), "app0", "-i", str(runner.inventory), "-c", "nomadops.nomad.nomad_exec",
            "-m", "nomadops.nomad.nomad_alloc_info", "-a", "job=app"]
    if verbosity:
        argv.append("-" + "v" * verbosity)
    run = runner._run(argv, None, True, 300)
    assert run.rc != 0
    assert "delegate_to: localhost" in run.output, run.output
    assert "Traceback" not in run.output
    assert_no_secret(run, TOKEN)
