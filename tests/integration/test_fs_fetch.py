# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_fs_info and nomad_alloc_fetch against the real allocation directories of the emulator (fs.yml)."""

from __future__ import annotations

import os

import pytest

from tests.integration.conftest import AnsibleRunner
from tests.integration.fs_helpers import FS_ONLY, LOGS_ONLY, MANAGEMENT, allocation_of, fs_jobs_ready, result_of
from tests.integration.observe import play

FS_INFO = "nomadops.nomad.nomad_alloc_fs_info"
EMULATOR_SCENARIO = "fs.yml"
EMULATOR_READY = fs_jobs_ready
FETCH = "nomadops.nomad.nomad_alloc_fetch"
BLOB = bytes(range(256))


@pytest.fixture(scope="module")
def runner(emulator, tmp_path_factory):
    return AnsibleRunner(emulator.address, tmp_path_factory.mktemp("fs"), extra_env={"NOMAD_TOKEN": MANAGEMENT})


@pytest.fixture(scope="module")
def crashed(emulator):
    return allocation_of(emulator, "crashed")["ID"]


def failure(run):
    assert run.rc != 0, run.output
    message = result_of(run)["msg"]
    assert "\n" not in message and "Traceback" not in run.output
    return message


def test_fs_info_lists_the_logs_directory(runner, crashed):
    result = result_of(runner.adhoc(FS_INFO, dict(id=crashed[:8], path="alloc/logs")).assert_ok())
    names = [entry["Name"] for entry in result["files"]]
    assert "oneshot.stdout.0" in names and "oneshot.stderr.0" in names
    assert result["stat"]["IsDir"] is True and result["allocation_id"] == crashed
    stdout = next(entry for entry in result["files"] if entry["Name"] == "oneshot.stdout.0")
    assert stdout["Size"] == 30 and stdout["FileMode"] == "-rw-r--r--" and stdout["IsDir"] is False


def test_fs_info_stats_a_file(runner, crashed):
    result = result_of(runner.adhoc(FS_INFO, dict(id=crashed, path="alloc/data/blob.bin")).assert_ok())
    assert result["stat"]["Size"] == 256 and result["files"] == []


def test_fetch_is_byte_exact_and_idempotent(runner, crashed, tmp_path):
    first = result_of(runner.adhoc(FETCH, dict(id=crashed, src="alloc/data/blob.bin", dest=str(tmp_path))).assert_ok())
    path = tmp_path / crashed / "alloc" / "data" / "blob.bin"
    assert first["changed"] is True and first["dest"] == str(path) and path.read_bytes() == BLOB
    again = result_of(runner.adhoc(FETCH, dict(id=crashed, src="alloc/data/blob.bin", dest=str(tmp_path))).assert_ok())
    assert again["changed"] is False and again["checksum"] == first["checksum"]
    assert sorted(os.listdir(path.parent)) == ["blob.bin"]


def test_fetch_flat_replaces_different_content_and_check_mode_only_predicts(runner, crashed, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"old")
    args = dict(id=crashed, src="alloc/data/blob.bin", dest=str(dest), flat=True)
    predicted = result_of(runner.adhoc(FETCH, args, check=True).assert_ok())
    assert predicted["changed"] is True and dest.read_bytes() == b"old"
    assert result_of(runner.adhoc(FETCH, args).assert_ok())["changed"] is True
    assert dest.read_bytes() == BLOB and sorted(os.listdir(tmp_path)) == ["blob.bin"]


def test_fetch_in_a_playbook_with_a_fs_only_token(runner, crashed, tmp_path):
    run = runner.playbook(play(dict(name="fetch", **{FETCH: dict(id=crashed, src="oneshot/local/note.txt",
                                                                 dest=f"{tmp_path}/", flat=True)})),
                          env={"NOMAD_TOKEN": FS_ONLY}).assert_ok()
    assert (tmp_path / "note.txt").read_text() == "hello\n"
    assert FS_ONLY not in run.output


@pytest.mark.parametrize("src, expected", [
    ("alloc/data", "is a directory"),
    ("oneshot/secrets/token", "secrets directory"),
    ("../../../etc/passwd", "escapes the allocation directory"),
    ("alloc/data/nope.bin", "'alloc/data/nope.bin' does not exist"),
])
def test_fetch_refusals_leave_nothing_under_dest(runner, crashed, tmp_path, src, expected):
    assert expected in failure(runner.adhoc(FETCH, dict(id=crashed, src=src, dest=str(tmp_path / "out"))))
    assert not (tmp_path / "out").exists()


def test_fetch_into_an_unwritable_place(runner, crashed, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    message = failure(runner.adhoc(FETCH, dict(id=crashed, src="alloc/data/blob.bin", dest=str(blocker / "sub"), flat=True)))
    assert "cannot create the directory" in message


def test_fetch_with_a_logs_only_token_is_denied(runner, crashed, tmp_path):
    run = runner.adhoc(FETCH, dict(id=crashed, src="alloc/data/blob.bin", dest=str(tmp_path)), env={"NOMAD_TOKEN": LOGS_ONLY})
    assert "Permission denied: the token needs the read-fs capability" in failure(run)
    assert os.listdir(tmp_path) == []
    assert result_of(run)["status"] == 403 and result_of(run)["address"] == runner.address


@pytest.mark.parametrize("path, expected", [
    ("alloc/nope", "path 'alloc/nope' does not exist in allocation"),
    ("../x", "escapes the allocation directory"),
])
def test_fs_info_bad_paths(runner, crashed, path, expected):
    run = runner.adhoc(FS_INFO, dict(id=crashed, path=path))
    assert expected in failure(run)
    assert result_of(run)["address"] == runner.address
