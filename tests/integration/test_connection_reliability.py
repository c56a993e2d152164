# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomadops.nomad.nomad_exec under load and faults: big files, cut sessions, many sessions at once.

Playbook runs where a user would see the behaviour; the connection plugin driven in-process (loaded by
Ansible's own plugin loader) where a fault must hit one exact transfer or 50 sessions must run at once.
"""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.conftest import AnsibleRunner, collection_loader_ready
from tests.integration.test_connection import (
    allocations,
    assert_one_line,
    host_line,
    host_play,
    part_files,
    result_of,
    task_dir,
    write_inventory,
)

MIB = 1024 * 1024
# The module's emulator runs the default Nomad version unless a test asks for another (indirect parameter).
EMULATOR_SCENARIO = "connection.yml"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def random_file(path: Path, size: int) -> Path:
    with open(path, "wb") as stream:
        for _mib in range(size // MIB):
            stream.write(os.urandom(MIB))
        stream.write(os.urandom(size % MIB))
    return path


@pytest.fixture(scope="module")
def apps(emulator):
    return [a["ID"] for a in allocations(emulator, "app")]


@pytest.fixture(scope="module")
def runner(emulator, apps, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("connection-reliability")
    runner = AnsibleRunner(emulator.address, workdir)
    runner.inventory = write_inventory(workdir / "hosts.ini", {"apps": [host_line("app0", apps[0])]})
    return runner


@pytest.fixture
def faults(emulator):
    yield emulator.control
    emulator.control.clear_faults()


def exec_path_of(alloc_id):
    return f"^/v1/client/allocation/{re.escape(alloc_id)}/exec$"


# ------------------------------------------------------------------------------------------- in-process plugin
@pytest.fixture(scope="module")
def connection_factory(emulator):
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    collection_loader_ready()
    opened = []

    def connect(alloc_id, **variables):
        connection = connection_loader.get("nomadops.nomad.nomad_exec", PlayContext())
        connection.set_options(var_options=dict(
            {"ansible_nomad_alloc_id": alloc_id, "ansible_nomad_address": emulator.address}, **variables))
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.close()


# ------------------------------------------------------------------------------------------- big files
def test_64_mib_up_and_down_byte_exact(runner, emulator, apps):
    local = random_file(runner.workdir / "big.bin", 64 * MIB)
    fetched = runner.workdir / "big.fetched"
    directory = task_dir(emulator, apps[0], "main")
    run = runner.playbook(host_play(
        "app0",
        {"name": "up", "ansible.builtin.copy": {"src": str(local), "dest": f"{directory}/big.bin"}},
        {"name": "down", "ansible.builtin.fetch": {"src": f"{directory}/big.bin", "dest": str(fetched), "flat": True}},
        vars={"ansible_pipelining": True},
    ), args=("-i", str(runner.inventory))).assert_ok()
    assert result_of(run, "up", "app0")["_status"] == "changed"
    expected = sha256_of(local)
    assert sha256_of(directory / "big.bin") == expected
    assert sha256_of(fetched) == expected
    (directory / "big.bin").unlink()


# ------------------------------------------------------------------------------------------- cut sessions
def test_cut_upload_fails_and_leaves_no_file(runner, emulator, apps, faults):
    local = random_file(runner.workdir / "eight.bin", 8 * MIB)
    directory = task_dir(emulator, apps[0], "main")
    # Only sessions that move more than 1 MiB are cut: the transfer, not the helper commands around it.
    faults.add_fault(method="GET", path=exec_path_of(apps[0]), action="exec_drop_after_bytes",
                     after_bytes=MIB, count=100)
    run = runner.playbook(host_play(
        "app0", {"name": "up", "ansible.builtin.copy": {"src": str(local), "dest": f"{directory}/eight.bin"}},
        vars={"ansible_pipelining": True},
    ), args=("-i", str(runner.inventory)))
    assert run.rc != 0
    result = result_of(run, "up", "app0")
    assert result["_status"] == "unreachable", result
    assert_one_line(result["msg"], apps[0][:8], "closed before the command exited")
    assert not (directory / "eight.bin").exists()
    assert not part_files(directory)


def test_cut_download_fails_and_leaves_no_file(runner, emulator, apps, faults):
    directory = task_dir(emulator, apps[0], "main")
    random_file(directory / "remote.bin", 8 * MIB)
    fetched = runner.workdir / "remote.fetched"
    faults.add_fault(method="GET", path=exec_path_of(apps[0]), action="exec_drop_after_bytes",
                     after_bytes=MIB, count=100)
    run = runner.playbook(host_play(
        "app0", {"name": "down", "ansible.builtin.fetch": {
            "src": f"{directory}/remote.bin", "dest": str(fetched), "flat": True}},
        vars={"ansible_pipelining": True},
    ), args=("-i", str(runner.inventory)))
    assert run.rc != 0
    result = result_of(run, "down", "app0")
    assert result["_status"] == "unreachable", result
    assert_one_line(result["msg"], "closed before the command exited")
    assert not fetched.exists()
    assert not part_files(runner.workdir)


def test_session_closed_before_exit_is_never_a_success(runner, apps, faults):
    faults.add_fault(method="GET", path=exec_path_of(apps[0]), action="exec_close_early", count=1)
    run = runner.playbook(host_play(
        "app0", {"name": "output", "ansible.builtin.raw": "seq 1 100000"},
    ), args=("-i", str(runner.inventory)))
    result = result_of(run, "output", "app0")
    assert result["_status"] == "unreachable", result
    # Nomad 1.8+ ends a session whose stream error names a closed pipe without a close frame (row 8 of the
    # 1.6-to-1.11 changes reference); 1.6.5's close 1011: test_nomad_versions.py
    assert_one_line(result["msg"], "closed before the command exited", "connection dropped without a close frame")


def test_put_and_fetch_refusals_in_process(connection_factory, emulator, apps, tmp_path, faults):
    from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound

    connection = connection_factory(apps[1])
    directory = task_dir(emulator, apps[1], "main")
    source = random_file(tmp_path / "two.bin", 2 * MIB)
    with pytest.raises(AnsibleError, match="directory .*/missing does not exist"):
        connection.put_file(str(source), f"{directory}/missing/two.bin")
    with pytest.raises(AnsibleError, match="cannot create a file in /proc"):
        connection.put_file(str(source), "/proc/two.bin")
    with pytest.raises(AnsibleError, match="is a directory"):
        connection.put_file(str(source), str(directory))
    with pytest.raises(AnsibleFileNotFound, match="no such file"):
        connection.fetch_file(f"{directory}/absent.bin", str(tmp_path / "absent.bin"))
    with pytest.raises(AnsibleFileNotFound, match="does not exist"):
        connection.put_file(str(tmp_path / "no-such-local-file"), f"{directory}/x")
    with pytest.raises(AnsibleError, match="cannot write .* on the controller: No such file or directory"):
        connection.fetch_file(f"{directory}/two.bin", str(tmp_path / "no/dir/x"))
    odd = f"{directory}/name with 'quotes' and $dollar\nnewline"
    connection.put_file(str(source), odd)
    connection.fetch_file(odd, str(tmp_path / "odd.back"))
    assert sha256_of(tmp_path / "odd.back") == sha256_of(source)
    faults.add_fault(method="GET", path=exec_path_of(apps[1]), action="exec_drop_after_bytes", after_bytes=MIB)
    with pytest.raises(AnsibleConnectionFailure, match="closed before the command exited"):
        connection.put_file(str(source), f"{directory}/two.bin")
    assert not (directory / "two.bin").exists() and not part_files(directory)
    connection.put_file(str(source), f"{directory}/two.bin")
    faults.add_fault(method="GET", path=exec_path_of(apps[1]), action="exec_close_early")
    with pytest.raises(AnsibleConnectionFailure, match="connection dropped without a close frame"):   # row 8
        connection.fetch_file(f"{directory}/two.bin", str(tmp_path / "back.bin"))
    assert not (tmp_path / "back.bin").exists() and not part_files(tmp_path)
    connection.fetch_file(f"{directory}/two.bin", str(tmp_path / "back.bin"))
    assert sha256_of(tmp_path / "back.bin") == sha256_of(source)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    connection.put_file(str(empty), f"{directory}/empty")
    connection.fetch_file(f"{directory}/empty", str(tmp_path / "empty.back"))
    assert (directory / "empty").stat().st_size == 0 and (tmp_path / "empty.back").read_bytes() == b""


# ------------------------------------------------------------------------------------------- many at once
# On the 1.8+ ending (TCP closed right after the exited frame) a fetch's stdin close could reach the emulator
# after its close, whose kernel then reset the connection and dropped the output not read yet: fetch_file's
# session now sends no stdin frame (reads_stdin=False in module_utils/allocations/exec.py).
def test_50_concurrent_sessions_lose_nothing(connection_factory, emulator, apps, tmp_path):
    def round_trip(index):
        alloc_id = apps[index % len(apps)]
        connection = connection_factory(alloc_id)
        payload = os.urandom(256 * 1024 + index)
        rc, stdout, stderr = connection.exec_command("cat; printf %s \"$NOMAD_ALLOC_ID\" >&2", in_data=payload)
        assert (rc, stdout, stderr) == (0, payload, alloc_id.encode())
        local = tmp_path / f"up-{index}.bin"
        local.write_bytes(os.urandom(MIB + index))
        remote = f"{task_dir(emulator, alloc_id, 'main')}/concurrent-{index}.bin"
        connection.put_file(str(local), remote)
        back = tmp_path / f"down-{index}.bin"
        connection.fetch_file(remote, str(back))
        assert back.read_bytes() == local.read_bytes()
        return index

    connection_factory(apps[0])  # the plugin's first load, not from 50 threads at once (the loader is not thread-safe)
    with ThreadPoolExecutor(max_workers=50) as pool:
        done = sorted(pool.map(round_trip, range(50)))
    assert done == list(range(50))
    for alloc_id in apps:
        assert not part_files(task_dir(emulator, alloc_id, "main"))
