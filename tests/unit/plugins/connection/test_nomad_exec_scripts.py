# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shell scripts nomad_exec runs in the task for put_file and fetch_file, run here by a real /bin/sh with
the real tools. The transfers themselves run against the emulator in tests/integration/test_connection*.py."""

from __future__ import annotations

import os
import shutil
import subprocess

from ansible_collections.nomadops.nomad.plugins.connection import nomad_exec

PAYLOAD = os.urandom(300 * 1024)
TOOLS_WITHOUT_CKSUM = ("cat", "mv", "rm", "wc")


def run_put(tmp_path, payload=PAYLOAD, announced=None, env=None):
    dest = tmp_path / "dest.bin"
    local = tmp_path / "local.bin"
    local.write_bytes(PAYLOAD)
    size, crc = announced or nomad_exec.local_file_digest(str(local))
    argv = [nomad_exec.SHELL, "-c", nomad_exec.PUT_SCRIPT, "nomad_exec_put", str(dest),
            nomad_exec.part_name(str(dest)), str(size), str(crc)]
    completed = subprocess.run(argv, input=payload, capture_output=True, env=env, check=False)
    return completed, dest


def path_without_cksum(tmp_path):
    """A PATH whose only tools are links to the real cat, mv, rm and wc."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in TOOLS_WITHOUT_CKSUM:
        (directory / tool).symlink_to(shutil.which(tool))
    return {"PATH": str(directory)}


def leftovers(tmp_path):
    return sorted(path.name for path in tmp_path.iterdir() if path.name not in ("bin", "local.bin"))


def test_put_moves_the_file_into_place_after_size_and_crc_matched(tmp_path):
    completed, dest = run_put(tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b"verified size and CRC (cksum)\n"
    assert dest.read_bytes() == PAYLOAD and leftovers(tmp_path) == ["dest.bin"]


def test_put_refuses_a_file_whose_crc_differs(tmp_path):
    completed, dest = run_put(tmp_path, announced=(len(PAYLOAD), 12345))
    assert completed.returncode == 25
    assert completed.stderr == b"CRC (cksum) of the received file differs from the sent one\n"
    assert not dest.exists() and leftovers(tmp_path) == []


def test_put_refuses_a_short_file(tmp_path):
    completed, dest = run_put(tmp_path, payload=PAYLOAD[:1000])
    assert completed.returncode == 24
    assert completed.stderr == f"received 1000 of {len(PAYLOAD)} bytes\n".encode()
    assert not dest.exists() and leftovers(tmp_path) == []


def test_put_without_cksum_checks_the_size_and_says_so(tmp_path):
    completed, dest = run_put(tmp_path, announced=(len(PAYLOAD), 12345), env=path_without_cksum(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b"verified size (no cksum in the task)\n"
    assert dest.read_bytes() == PAYLOAD


def test_fetch_reports_size_and_crc_after_the_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    argv = [nomad_exec.SHELL, "-c", nomad_exec.FETCH_SCRIPT, "nomad_exec_fetch", str(source)]
    completed = subprocess.run(argv, capture_output=True, check=False)
    assert completed.returncode == 0 and completed.stdout == PAYLOAD
    size, crc = nomad_exec.local_file_digest(str(source))
    assert completed.stderr.decode().split() == [nomad_exec.VERIFY_MARKER, str(size), str(crc)]


def test_fetch_without_cksum_reports_a_dash(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    argv = [nomad_exec.SHELL, "-c", nomad_exec.FETCH_SCRIPT, "nomad_exec_fetch", str(source)]
    completed = subprocess.run(argv, capture_output=True, env=path_without_cksum(tmp_path), check=False)
    assert completed.returncode == 0 and completed.stdout == PAYLOAD
    assert completed.stderr.decode().split() == [nomad_exec.VERIFY_MARKER, str(len(PAYLOAD)), "-"]


def test_commands_have_a_deadline_by_default():
    import yaml

    options = yaml.safe_load(nomad_exec.DOCUMENTATION)["options"]
    assert options["command_timeout"]["default"] == 3600
