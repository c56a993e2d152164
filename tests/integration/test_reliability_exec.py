# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Exec robustness: 50 concurrent sessions (the collection's ExecSession in threads, plus a smaller
ansible run), byte-exact output, a socket closed early, a server that never sends the exit frame, and
heartbeats keeping a quiet 30 s command alive through an intermediary with an idle timeout."""

from __future__ import annotations

import base64
import os
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import collection_module

EXEC = "nomadops.nomad.nomad_alloc_exec"
SESSIONS = 50


collection = collection_module


def client_for(address, **options):
    options = collection("common.options").connection_options_from_params(dict(address=address, **options))
    return collection("common.client").NomadClient(options, pool_size=SESSIONS)


def exec_in(client, alloc_id, task, argv, stdin=None, timeout=60.0):
    exec_module = collection("allocations.exec")
    request = exec_module.ExecRequest(allocation_id=alloc_id, task=task, argv=list(argv), stdin=stdin,
                                      timeout=float(timeout))
    return exec_module.run_exec(client, request)


@pytest.fixture(scope="module")
def web(integration_emulator):
    deadline = time.monotonic() + 20
    while True:
        allocs = [a for a in integration_emulator.allocations("*")
                  if a["JobID"] == "web" and a["ClientStatus"] == "running"]
        if len(allocs) == 3:
            return sorted(allocs, key=lambda a: a["Name"])
        assert time.monotonic() < deadline, "web did not start"
        time.sleep(0.1)


def exec_requests(emulator):
    return sum(count for key, count in emulator.control.requests().items() if key.endswith("/exec"))


def test_fifty_concurrent_sessions_are_byte_exact(integration_emulator, web):
    """Each session sends its own random bytes (every byte value, NULs, invalid UTF-8) and must get
    exactly those back on stdout, and its own marker on stderr."""
    payloads = [os.urandom(48 * 1024 + index) for index in range(SESSIONS)]
    argv = ["/bin/sh", "-c", 'cat; printf "%s/%s" "$NOMAD_ALLOC_ID" "$NOMAD_TASK_NAME" >&2']
    targets = [(web[index % 3]["ID"], ("server", "sidecar")[index % 2]) for index in range(SESSIONS)]
    integration_emulator.control.reset_requests()
    with client_for(integration_emulator.address) as client:
        with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
            futures = [pool.submit(exec_in, client, alloc_id, task, argv, payloads[index])
                       for index, (alloc_id, task) in enumerate(targets)]
            outcomes = [future.result() for future in futures]
    wrong = []
    for index, outcome in enumerate(outcomes):
        alloc_id, task = targets[index]
        if outcome.exit_code != 0 or outcome.stdout != payloads[index] or outcome.stderr != f"{alloc_id}/{task}".encode():
            wrong.append((index, outcome.exit_code, len(outcome.stdout), outcome.stderr[:80]))
    assert wrong == []
    assert exec_requests(integration_emulator) == SESSIONS


def test_concurrent_sessions_through_ansible_with_base64_output(ansible_runner, integration_emulator, web,
                                                                tmp_path):
    hosts = [f"rel{index:02d}" for index in range(8)]
    inventory = tmp_path / "hosts.ini"
    lines = ["[all:vars]", "ansible_connection=local", "ansible_python_interpreter={{ ansible_playbook_python }}",
             "[all]"] + [f"{host} alloc_id={web[index % 3]['ID']}" for index, host in enumerate(hosts)]
    inventory.write_text("\n".join(lines) + "\n")
    # Every byte value, then the host name: base64 output must give back exactly these bytes.
    argv = ["/bin/sh", "-c", "printf '%b' \"$(i=0; while [ $i -lt 256 ]; do printf '\\\\0%03o' $i; "
            "i=$((i+1)); done)\"; printf '%s' \"$1\"", "sh", "{{ inventory_hostname }}"]
    playbook = [dict(hosts="all", gather_facts=False, tasks=[
        {"name": "bytes", EXEC: dict(id="{{ alloc_id }}", task="server", argv=argv, output_encoding="base64",
                                     strip_empty_ends=False)}])]
    integration_emulator.control.reset_requests()
    run = ansible_runner.playbook(playbook, args=("-i", str(inventory), "--forks", str(len(hosts)))).assert_ok()
    results = {entry["host"]: entry["result"] for entry in run.results if entry["task"] == "bytes"}
    assert sorted(results) == hosts
    for host in hosts:
        assert base64.b64decode(results[host]["stdout"]) == bytes(range(256)) + host.encode(), host
    assert exec_requests(integration_emulator) == len(hosts)


def test_socket_closed_early_is_an_error_with_the_output_so_far(integration_emulator, web):
    integration_emulator.control.add_fault(method="GET", path="/exec$", count=1, action="exec_close_early")
    try:
        with client_for(integration_emulator.address) as client:
            with pytest.raises(collection("allocations.exec").ExecClosedError) as closed:
                exec_in(client, web[0]["ID"], "server", ["/bin/sh", "-c", "echo partial; sleep 10; echo never"])
    finally:
        integration_emulator.control.clear_faults()
    message = str(closed.value)
    assert "closed before the command exited" in message and "\n" not in message
    assert "connection dropped without a close frame" in message   # Nomad 1.8+ (row 8); 1.6.5: test_nomad_versions


def test_a_session_without_exit_frame_ends_at_the_timeout(integration_emulator, web):
    """The command closes its output and keeps running: no more frames, no exit frame.  The session must
    end at its timeout with a one-line timeout error instead of hanging."""
    with client_for(integration_emulator.address) as client:
        with pytest.raises(collection("allocations.exec").ExecTimeoutError) as timed_out:
            exec_in(client, web[1]["ID"], "server", ["/bin/sh", "-c", "exec >&- 2>&- ; sleep 60"], timeout=3)
    assert str(timed_out.value) == "command did not finish within 3 s"


class IdleTimeoutProxy:
    """A TCP relay that, like a load balancer, closes a connection after `idle` seconds without traffic
    in either direction.  Records the sizes of client -> server chunks with their times."""

    def __init__(self, upstream_port, idle):
        self.upstream_port = upstream_port
        self.idle = idle
        self.client_chunks = []
        self.idle_closes = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _peer = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._relay, args=(conn, upstream), daemon=True).start()

    def _relay(self, client, upstream):
        last = time.monotonic()
        with client, upstream:
            while True:
                ready = select.select([client, upstream], [], [], 0.2)[0]
                if not ready:
                    if time.monotonic() - last > self.idle:
                        self.idle_closes += 1
                        return
                    continue
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
                    last = time.monotonic()
                    if source is client:
                        self.client_chunks.append((last, len(data)))

    def close(self):
        self.listener.close()


def test_heartbeats_keep_a_quiet_thirty_second_command_alive(integration_emulator, web):
    port = int(integration_emulator.address.rsplit(":", 1)[1])
    proxy = IdleTimeoutProxy(port, idle=15)
    try:
        with client_for(f"http://127.0.0.1:{proxy.port}") as client:
            started = time.monotonic()
            outcome = exec_in(client, web[2]["ID"], "server", ["/bin/sh", "-c", "sleep 30; echo awake"], timeout=90)
    finally:
        proxy.close()
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (0, b"awake\n", b"")
    assert proxy.idle_closes == 0
    # After the upgrade and the stdin close frame, only heartbeats travel to the server: small masked
    # frames, at least two of them in 30 quiet seconds.
    quiet = [size for when, size in proxy.client_chunks if when - started > 5]
    assert len(quiet) >= 2 and all(size <= 16 for size in quiet), quiet


@pytest.mark.parametrize("rule", [
    dict(action="status", status=500, body="No cluster leader"),
    dict(action="status", status=429, body="Too many requests", retry_after=1),
    dict(action="drop"),
], ids=["500", "429", "reset"])
def test_a_failed_upgrade_is_one_clear_line_and_runs_nothing(integration_emulator, web, rule):
    """A fault on the WebSocket upgrade: one-line error, and the command never ran (not even on a retry,
    since a second upgrade would run it)."""
    task_dir = integration_emulator.control.tasks(web[0]["ID"])["server"]["task_dir"]
    marker = f"upgrade-{rule['action']}-{rule.get('status', 0)}"
    integration_emulator.control.add_fault(method="GET", path="/exec$", count=1, **rule)
    try:
        with client_for(integration_emulator.address, retries=3) as client:
            with pytest.raises(collection("allocations.exec").ExecError) as failed:
                exec_in(client, web[0]["ID"], "server", ["/bin/sh", "-c", f'touch "$NOMAD_TASK_DIR/{marker}"'],
                        timeout=20)
    finally:
        integration_emulator.control.clear_faults()
    message = str(failed.value)
    assert "\n" not in message and message, message
    if rule["action"] == "status":
        assert str(rule["status"]) in message, message
    time.sleep(0.5)
    assert not os.path.exists(os.path.join(task_dir, marker))
