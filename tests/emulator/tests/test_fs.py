# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The client fs API (/v1/client/fs/*) over real task output, against the fs.yml scenario."""
from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import pytest
import requests
import urllib3

from tests.emulator.tests.conftest import Api
from tests.waiting import wait_until

MANAGEMENT = "00000000-0000-4000-8000-0000000000f1"
LOGS_ONLY = "00000000-0000-4000-8000-0000000000f2"
FS_ONLY = "00000000-0000-4000-8000-0000000000f3"
NO_FS = "00000000-0000-4000-8000-0000000000f4"


@pytest.fixture(scope="module")
def fs_emulator(module_emulators):
    # Nomad 1.6.5's fs/logs (nomad-fs-logs-checks-behaviour.md); test_versions.py checks rows 23-26 of the changes
    return module_emulators("fs.yml", nomad_version="1.6.5")


@pytest.fixture(scope="module")
def fs(fs_emulator) -> Api:
    return Api(fs_emulator, token=MANAGEMENT)


def alloc_of(fs: Api, job: str) -> str:
    return fs.by_job(job)[0]["ID"]


def frames(body: bytes) -> list:
    """Split concatenated JSON objects (no separator) into dicts."""
    decoder, text, found, pos = json.JSONDecoder(), body.decode(), [], 0
    while pos < len(text):
        value, pos = decoder.raw_decode(text, pos)
        found.append(value)
    return found


def frame_data(found: list) -> bytes:
    return b"".join(base64.b64decode(f["Data"]) for f in found if f.get("Data"))


@pytest.fixture(scope="module")
def chatty(fs):
    alloc_id = wait_until(lambda: fs.by_job("chatty") and alloc_of(fs, "chatty"), what="chatty alloc")
    # 2048-byte files, 3 kept: wait until rotation has dropped the first files
    wait_until(lambda: "talker.stdout.3" in names(fs, alloc_id, "alloc/logs"), timeout=30, what="rotation")
    return alloc_id


@pytest.fixture(scope="module")
def crashed(fs):
    alloc_id = wait_until(lambda: fs.by_job("crashed") and alloc_of(fs, "crashed"), what="crashed alloc")
    wait_until(lambda: fs.allocation(alloc_id)["ClientStatus"] == "failed", what="crashed to fail")
    return alloc_id


def names(fs: Api, alloc_id: str, path: str) -> list:
    response = fs.get(f"/v1/client/fs/ls/{alloc_id}", params={"path": path})
    return [entry["Name"] for entry in response.json()] if response.status_code == 200 else []


def test_rotation_keeps_max_files_of_max_size(fs, chatty):
    entries = fs.get(f"/v1/client/fs/ls/{chatty}", params={"path": "alloc/logs"}).json()
    stdout = sorted((e for e in entries if e["Name"].startswith("talker.stdout.")),
                    key=lambda e: int(e["Name"].rsplit(".", 1)[1]))
    assert len(stdout) == 3 and stdout[0]["Name"] != "talker.stdout.0"
    assert all(e["Size"] <= 2048 for e in stdout) and all(e["FileMode"] == "-rw-r--r--" for e in stdout[:2])
    assert "talker.stderr.0" in [e["Name"] for e in entries]


def test_logs_whole_history_is_consecutive_lines(fs, chatty):
    response = fs.get(f"/v1/client/fs/logs/{chatty}", params={"task": "talker", "type": "stdout"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    found = frames(response.content)
    lines = frame_data(found).decode().splitlines()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and numbers[0] > 1
    assert {f["File"] for f in found} <= {f"alloc/logs/talker.stdout.{n}" for n in range(100)}
    assert all(set(f) <= {"Data", "File", "Offset"} for f in found)


def test_logs_origin_end_offset_zero_is_whole_latest_file(fs, chatty):
    response = fs.get(f"/v1/client/fs/logs/{chatty}",
                      params={"task": "talker", "type": "stdout", "origin": "end", "offset": "0", "plain": "true"})
    assert response.headers["Content-Type"] == "text/plain"
    first = response.content.splitlines()[0]
    assert first.startswith(b"line ")
    tail = fs.get(f"/v1/client/fs/logs/{chatty}",
                  params={"task": "talker", "type": "stdout", "origin": "end", "offset": "20", "plain": "true"})
    assert 0 < len(tail.content) <= 20 + 2048


def test_logs_follow_sees_new_lines_and_heartbeats(fs, chatty):
    with fs.get(f"/v1/client/fs/logs/{chatty}", stream=True,
                params={"task": "talker", "type": "stdout", "origin": "end", "offset": "1", "follow": "true"}) as r:
        body = b""
        deadline = time.monotonic() + 10
        for chunk in r.iter_content(chunk_size=None):
            body += chunk
            if b"{}" in body and len(frame_data(frames(body)).splitlines()) > 5 or time.monotonic() > deadline:
                break
    found = frames(body)
    assert {} in found
    assert len(frame_data(found).splitlines()) > 5


@pytest.mark.parametrize("endpoint, job, params", [
    ("logs", "chatty", {"task": "talker", "type": "stdout", "origin": "end", "offset": "1", "follow": "true"}),
    ("stream", "crashed", {"path": "alloc/logs/oneshot.stdout.0", "follow": "true"}),
])
def test_a_client_closing_a_followed_stream_is_one_line_not_a_traceback(
        fs_emulator, fs, chatty, crashed, endpoint, job, params):
    alloc_id = chatty if job == "chatty" else crashed
    with fs.get(f"/v1/client/fs/{endpoint}/{alloc_id}", stream=True, params=params) as response:
        next(response.iter_content(chunk_size=None))
    # the stream's next heartbeat (at most a second later) finds the connection closed
    closed = f"client closed GET /v1/client/fs/{endpoint}/{alloc_id}"
    wait_until(lambda: closed in fs_emulator.stderr, timeout=10, what="the closed stream to be noticed")
    assert "Traceback" not in fs_emulator.stderr and "Error handling request" not in fs_emulator.stderr


def test_follow_on_dead_task_never_ends(fs, crashed):
    with fs.get(f"/v1/client/fs/logs/{crashed}", stream=True, timeout=5,
                params={"task": "oneshot", "type": "stdout", "follow": "true"}) as r:
        body = b""
        for chunk in r.iter_content(chunk_size=None):
            body += chunk
            if body.count(b"{}") >= 2:
                break
    assert frame_data(frames(body)) == b"out 1\nout 2\nout 3\nout 4\nout 5\n"


def test_stderr_and_dead_task(fs, crashed):
    response = fs.get(f"/v1/client/fs/logs/{crashed}", params={"task": "oneshot", "type": "stderr", "plain": "1"})
    assert response.content == b"boom\n"


def test_ls_stat_cat_readat(fs, crashed):
    root = fs.get(f"/v1/client/fs/ls/{crashed}").json()
    assert [e["Name"] for e in root] == ["alloc", "oneshot"]
    assert list(root[0]) == ["Name", "IsDir", "Size", "FileMode", "ModTime", "ContentType"]
    stat = fs.get(f"/v1/client/fs/stat/{crashed}", params={"path": "alloc/data/blob.bin"}).json()
    assert stat["Size"] == 256 and stat["ContentType"] == "application/octet-stream" and not stat["IsDir"]
    assert fs.get(f"/v1/client/fs/stat/{crashed}", params={"path": "/"}).json()["Name"] == crashed
    blob = fs.get(f"/v1/client/fs/cat/{crashed}", params={"path": "alloc/data/blob.bin"})
    assert blob.content == bytes(range(256)) and blob.headers["X-Content-Type-Options"] == "nosniff"
    part = fs.get(f"/v1/client/fs/readat/{crashed}", params={"path": "alloc/data/blob.bin", "offset": 10, "limit": 5})
    assert part.content == bytes(range(10, 15))
    note = fs.get(f"/v1/client/fs/cat/{crashed}", params={"path": "oneshot/local/note.txt"})
    assert note.text == "hello\n" and note.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "token" in names(fs, crashed, "oneshot/secrets")


@pytest.mark.parametrize(("path", "params", "status", "text"), [
    ("ls/{id}", {"path": "nope"}, 404, "open {root}/nope: no such file or directory"),
    ("ls/{id}", {"path": "../.."}, 500, "Path escapes the alloc directory"),
    ("ls/{id}", {"path": "alloc/data/blob.bin"}, 500, "readdirent {root}/alloc/data/blob.bin: not a directory"),
    ("stat/{id}", {}, 400, "must provide a file name"),
    ("stat/{id}", {"path": "nope"}, 404, "stat {root}/nope: no such file or directory"),
    ("cat/{id}", {"path": "alloc"}, 200, 'file "alloc" is a directory'),
    ("cat/{id}", {"path": "nope"}, 200, "stat {root}/nope: no such file or directory"),
    ("cat/{id}", {"path": "oneshot/secrets/token"}, 200, "Reading secret file prohibited: oneshot/secrets/token"),
    ("readat/{id}", {"path": "alloc/data/blob.bin"}, 200,
     'error parsing offset: strconv.ParseInt: parsing "": invalid syntax'),
    ("stream/{id}", {"path": "alloc"}, 400, 'file "alloc" is a directory'),
    ("stream/{id}", {"path": "oneshot/secrets/token"}, 500, "Reading secret file prohibited: oneshot/secrets/token"),
    ("stream/{id}", {"path": "x", "follow": "maybe"}, 500,
     'failed to parse follow field to boolean: strconv.ParseBool: parsing "maybe": invalid syntax'),
    ("logs/{id}", {"type": "stdout"}, 400, "must provide task name"),
    ("logs/{id}", {"task": "oneshot"}, 400, "must provide log type (stdout/stderr)"),
    ("logs/{id}", {"task": "oneshot", "type": "stdout", "origin": "middle"}, 400, "origin must be start or end"),
    ("logs/{id}", {"task": "oneshot", "type": "stdout", "offset": "abc"}, 400,
     'error parsing offset: strconv.ParseInt: parsing "abc": invalid syntax'),
    ("logs/{id}", {"task": "nope", "type": "stdout"}, 400, 'unknown task name "nope"'),
    ("logs/00000000-0000-4000-8000-00000000dead", {"task": "x", "type": "stdout"}, 404,
     'Unknown allocation "00000000-0000-4000-8000-00000000dead"'),
    ("logs/abc", {"task": "x", "type": "stdout"}, 500,
     "alloc lookup failed: index error: UUID must be 36 characters"),
    ("logs/", {"task": "x", "type": "stdout"}, 400, "must provide a valid alloc id"),
    ("foo/{id}", {}, 404, "Invalid method"),
])
def test_refusals(fs, crashed, path, params, status, text):
    response = fs.get("/v1/client/fs/" + path.format(id=crashed), params=params)
    assert response.status_code == status
    if "{root}" in text:  # the host path of the allocation dir, as Nomad leaks its data_dir
        before, after = text.split("{root}")
        assert response.text.startswith(before + "/") and response.text.endswith(f"/{crashed}{after}")
    else:
        assert response.text == text


def test_stream_file_and_origin_end(fs, crashed):
    response = fs.get(f"/v1/client/fs/stream/{crashed}",
                      params={"path": "alloc/logs/oneshot.stdout.0", "follow": "false", "origin": "end", "offset": 6})
    assert frames(response.content) == [{"Data": base64.b64encode(b"out 5\n").decode(),
                                         "File": "alloc/logs/oneshot.stdout.0", "Offset": 30}]


def test_plain_follow_delivers_late_output(fs):
    alloc_id = alloc_of(fs, "slow")
    response = fs.get(f"/v1/client/fs/logs/{alloc_id}", params={"task": "sleeper", "type": "stdout", "plain": "true",
                                                                "follow": "true"},
                      stream=True, timeout=10)
    with response:
        body = b""
        for chunk in response.iter_content(chunk_size=None):
            body += chunk
            if b"READY" in body:
                break
    assert b"READY" in body


def test_task_not_started_yet(fs):
    alloc_id = wait_until(lambda: fs.by_job("ghost") and alloc_of(fs, "ghost"), what="ghost alloc")
    response = fs.get(f"/v1/client/fs/logs/{alloc_id}", params={"task": "ghost", "type": "stdout"})
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"
    assert response.text == 'task "ghost" not started yet. No logs available'


@pytest.mark.parametrize(("token", "op", "status", "text"), [
    (LOGS_ONLY, "logs", 200, None), (FS_ONLY, "logs", 200, None), (NO_FS, "logs", 500, "Permission denied"),
    (LOGS_ONLY, "ls", 403, "Permission denied"), (FS_ONLY, "ls", 200, None),
    (LOGS_ONLY, "cat", 200, "Permission denied"), (LOGS_ONLY, "stream", 403, "Permission denied"),
    ("00000000-0000-4000-8000-00000000ffff", "logs", 500, "Permission denied"),
])
def test_acl(fs, crashed, token, op, status, text):
    path = "alloc/logs" if op == "ls" else "alloc/logs/oneshot.stderr.0"
    params = {"task": "oneshot", "type": "stderr", "path": path, "follow": "false"}
    response = fs.get(f"/v1/client/fs/{op}/{crashed}", params=params, token=token)
    assert response.status_code == status
    if text is not None:
        assert response.text == text
    else:
        assert response.content


def test_faults_cut_and_stall_streams(fs, fs_emulator, crashed):
    path = f"/v1/client/fs/logs/{crashed}"
    rule = {"action": "drop_mid_body", "path": "^/v1/client/fs/logs/", "count": 1, "after_bytes": 10}
    assert fs.session.post(fs_emulator.address + "/_emulator/faults", json=rule).status_code in (200, 201)
    with pytest.raises(requests.exceptions.RequestException):
        fs.get(path, params={"task": "oneshot", "type": "stdout"}).content  # noqa: B018
    rule = dict(rule, action="stall")
    assert fs.session.post(fs_emulator.address + "/_emulator/faults", json=rule).status_code in (200, 201)
    with fs.get(path, params={"task": "oneshot", "type": "stdout"}, stream=True, timeout=2) as response:
        assert response.status_code == 200
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            response.raw.read(100)  # 10 bytes arrived, then nothing while the connection stays open


def test_error_after_first_payload_is_appended(fs, fs_emulator):
    """Destroys the pair allocation's logs: keep this test last."""
    alloc_id = alloc_of(fs, "pair")
    wait_until(lambda: fs.get(f"/v1/client/fs/logs/{alloc_id}", params={"task": "left", "type": "stdout"}).content,
               what="pair output")
    task_dir = fs_emulator.control.tasks(alloc_id)["left"]["task_dir"]
    logs = task_dir.rsplit("/", 1)[0] + "/alloc/logs"
    with fs.get(f"/v1/client/fs/logs/{alloc_id}", stream=True, timeout=10,
                params={"task": "left", "type": "stdout", "follow": "true"}) as response:
        chunks = response.iter_content(chunk_size=None)
        body = next(chunks)
        shutil.rmtree(logs)
        for chunk in chunks:
            body += chunk
    assert body.endswith(f"failed to list entries: open {logs}: no such file or directory".encode())
    assert frames(body[:body.index(b"failed")])[0]["File"] == "alloc/logs/left.stdout.0"


def test_stream_follow_ends_with_file_deleted(fs, fs_emulator):
    """Writes and removes a file in the pair allocation's data dir."""
    alloc_id = alloc_of(fs, "pair")
    task_dir = fs_emulator.control.tasks(alloc_id)["right"]["task_dir"]
    note = Path(task_dir).parent / "alloc" / "data" / "note.txt"
    note.write_bytes(b"first\n")
    with fs.get(f"/v1/client/fs/stream/{alloc_id}", stream=True, timeout=10,
                params={"path": "alloc/data/note.txt"}) as response:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        chunks = response.iter_content(chunk_size=None)
        body = next(chunks)
        note.unlink()
        for chunk in chunks:
            body += chunk
    found = frames(body)
    assert found[0] == {"Data": base64.b64encode(b"first\n").decode(), "File": "alloc/data/note.txt", "Offset": 6}
    assert found[-1] == {"File": "alloc/data/note.txt", "FileEvent": "file deleted", "Offset": 6}
