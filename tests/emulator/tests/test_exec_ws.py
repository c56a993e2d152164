# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The exec WebSocket of the emulator against a running emulator (reference §6), with real processes."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import requests
import websocket
from conftest import pid_alive

from tests.emulator import exec_ws
from tests.emulator.harness import EmulatorProcess
from tests.waiting import wait_until

EXEC_SCENARIO = Path(__file__).parent / "data" / "exec.yml"
ACL_SCENARIO = "tests/emulator/scenarios/acl.yml"
EXEC_TOKEN = "00000000-0000-4000-8000-000000000004"
EXEC_WITHOUT_NODE_EXEC_TOKEN = "00000000-0000-4000-8000-000000000005"
READ_ONLY_TOKEN = "00000000-0000-4000-8000-000000000002"
OPERATOR_TOKEN = "00000000-0000-4000-8000-000000000006"
MANAGEMENT_TOKEN = "00000000-0000-4000-8000-000000000001"
UNKNOWN_TOKEN = "00000000-0000-4000-8000-0000000000ff"
SOCKET_TIMEOUT = 60


# --- helpers ------------------------------------------------------------------------------------

@dataclass
class ExecOutcome:
    """Everything the server sent: text frames (raw and decoded) and the close frame."""
    raw_frames: list = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    @property
    def frames(self) -> list:
        return [json.loads(raw) for raw in self.raw_frames]

    def data_frames(self, stream: str) -> list:
        return [base64.b64decode(frame[stream]["data"]) for frame in self.frames
                if stream in frame and "data" in frame[stream]]

    def output(self, stream: str) -> bytes:
        return b"".join(self.data_frames(stream))

    @property
    def exit_frames(self) -> list:
        return [frame for frame in self.frames if frame.get("exited")]

    @property
    def exit_code(self) -> int:
        (frame,) = self.exit_frames
        return frame["result"].get("exit_code", 0)


def stdin_frame(data: bytes) -> dict:
    return {"stdin": {"data": base64.b64encode(data).decode("ascii")}}


STDIN_CLOSE = {"stdin": {"close": True}}


def exec_url(emu, alloc_id: str, command, task: str = "main", **params) -> str:
    query = {"task": task}
    if command is not None:
        query["command"] = command if isinstance(command, str) else json.dumps(command)
    query.update({key: value for key, value in params.items() if value is not None})
    base = emu.address.replace("http://", "ws://", 1)
    return f"{base}/v1/client/allocation/{alloc_id}/exec?{urllib.parse.urlencode(query)}"


def connect(url: str, token: str | None = None) -> websocket.WebSocket:
    header = [f"X-Nomad-Token: {token}"] if token else []
    return websocket.create_connection(url, header=header, timeout=SOCKET_TIMEOUT)


def read_until_close(ws: websocket.WebSocket, outcome: ExecOutcome | None = None) -> ExecOutcome:
    outcome = outcome or ExecOutcome()
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            if len(data) >= 2:
                outcome.close_code = int.from_bytes(data[:2], "big")
                outcome.close_reason = data[2:].decode("utf-8")
            ws.close()
            return outcome
        if opcode == websocket.ABNF.OPCODE_TEXT:
            outcome.raw_frames.append(data.decode("utf-8"))


def run_exec(url: str, send=(), token: str | None = None, first_text: str | None = None) -> ExecOutcome:
    ws = connect(url, token)
    if first_text is not None:
        ws.send(first_text)
    for frame in send:
        ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return read_until_close(ws)


def wait_for_stdout(ws: websocket.WebSocket, expected: bytes) -> None:
    received = b""
    while not received.endswith(expected):
        frame = json.loads(ws.recv())
        received += base64.b64decode(frame.get("stdout", {}).get("data", ""))


def alloc_of(emu, job: str) -> dict:
    return next(alloc for alloc in emu.allocations() if alloc["JobID"] == job)


def task_view(emu, alloc_id: str, task: str) -> dict:
    return emu.control.tasks(alloc_id)[task]


def wait_task_state(emu, alloc_id: str, task: str, state: str) -> dict:
    return wait_until(lambda: (view := task_view(emu, alloc_id, task))["state"] == state and view,
                      what=f"task {task} of {alloc_id} to be {state}")


# --- fixtures -----------------------------------------------------------------------------------
# These tests check Nomad 1.6.5's exec (the alloc API reference); test_versions.py checks what 1.8+ changed.
WRITTEN_FOR = "1.6.5"


def assert_no_server_errors(emulator: EmulatorProcess) -> None:
    """Sessions that end badly (peer gone, faults, bad frames) must not leave tracebacks in the log."""
    for marker in ("Traceback", "exception was never retrieved", "Error handling request"):
        assert marker not in emulator.stderr, emulator.stderr


def checked_emulator(scenario):
    """A module fixture's body (`yield from`): an emulator answering as WRITTEN_FOR whose log, once it has
    stopped, holds no server error."""
    with EmulatorProcess(scenario, nomad_version=WRITTEN_FOR) as emulator:
        yield emulator
    assert_no_server_errors(emulator)


def running_alloc_id(emu, job: str, task: str) -> str:
    alloc_id = alloc_of(emu, job)["ID"]
    wait_task_state(emu, alloc_id, task, "running")
    return alloc_id


@pytest.fixture(scope="module")
def emu():
    yield from checked_emulator(str(EXEC_SCENARIO))


@pytest.fixture(scope="module")
def shell_alloc(emu) -> str:
    return running_alloc_id(emu, "shell", "main")


@pytest.fixture(scope="module")
def acl_emu():
    yield from checked_emulator(ACL_SCENARIO)


@pytest.fixture(scope="module")
def acl_web_alloc(acl_emu) -> str:
    return running_alloc_id(acl_emu, "web", "server")


@pytest.fixture
def no_faults(emu):
    emu.control.clear_faults()
    yield
    emu.control.clear_faults()


# --- output, exit codes, stdin --------------------------------------------------------------------

def test_stdout_and_stderr_arrive_as_separate_streams_then_exit_and_normal_close(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", "echo out; echo err >&2"]))

    assert outcome.output("stdout") == b"out\n"
    assert outcome.output("stderr") == b"err\n"
    assert {"stdout": {"close": True}} in outcome.frames
    assert {"stderr": {"close": True}} in outcome.frames
    assert outcome.raw_frames[-1] == '{"exited":true,"result":{}}'
    assert (outcome.close_code, outcome.close_reason) == (1000, "")


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_code_is_reported_and_zero_is_omitted(emu, shell_alloc, code):
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", f"exit {code}"]))

    expected = '{"exited":true,"result":{}}' if code == 0 else f'{{"exited":true,"result":{{"exit_code":{code}}}}}'
    assert outcome.raw_frames[-1] == expected
    assert outcome.close_code == 1000


def test_killed_command_reports_128_plus_signal(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", "kill -9 $$"]))

    assert outcome.exit_code == 128 + 9


def test_command_runs_in_task_directory_with_task_environment(emu, shell_alloc):
    task_dir = task_view(emu, shell_alloc, "main")["task_dir"]
    script = 'pwd; echo "$NOMAD_ALLOC_ID $NOMAD_TASK_NAME $NOMAD_TASK_DIR"'
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", script]))

    cwd, env_line = outcome.output("stdout").decode().splitlines()
    assert os.path.realpath(cwd) == os.path.realpath(task_dir)
    assert env_line == f"{shell_alloc} main {task_dir}"


def test_stdin_is_delivered_and_close_gives_end_of_file(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["cat"]),
                       send=[stdin_frame(b"hello "), stdin_frame(b"world\n"), STDIN_CLOSE])

    assert outcome.output("stdout") == b"hello world\n"
    assert outcome.exit_code == 0


def test_stdin_in_many_frames_is_counted_whole(emu, shell_alloc):
    payload = bytes(range(256)) * 40   # 10240 bytes, binary
    frames = [stdin_frame(payload[start:start + 2048]) for start in range(0, len(payload), 2048)]
    outcome = run_exec(exec_url(emu, shell_alloc, ["wc", "-c"]), send=frames + [STDIN_CLOSE])

    assert outcome.output("stdout").strip() == b"10240"


def test_stdin_frame_larger_than_aiohttps_default_limit_is_accepted(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["wc", "-c"]), send=[stdin_frame(b"z" * 5_000_000), STDIN_CLOSE])

    assert outcome.output("stdout").strip() == b"5000000"


def test_heartbeats_and_unknown_keys_are_ignored(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["cat"]),
                       send=[{}, {"unknown": 1}, stdin_frame(b"x"), {}, STDIN_CLOSE])

    assert outcome.output("stdout") == b"x"
    assert outcome.close_code == 1000


def test_binary_output_is_byte_exact_in_frames_of_at_most_1024_bytes(emu, shell_alloc):
    task_dir = task_view(emu, shell_alloc, "main")["task_dir"]
    script = "head -c 5000000 /dev/urandom | tee random.bin; printf 'tail' >&2"
    try:
        outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", script]))
        written = Path(task_dir, "random.bin").read_bytes()
    finally:
        Path(task_dir, "random.bin").unlink(missing_ok=True)

    stdout = outcome.output("stdout")
    assert len(stdout) == 5_000_000
    assert hashlib.sha256(stdout).hexdigest() == hashlib.sha256(written).hexdigest()
    assert max(len(chunk) for chunk in outcome.data_frames("stdout")) == 1024
    assert outcome.output("stderr") == b"tail"
    assert outcome.exit_code == 0


async def count_output_slowly(url: str) -> tuple:
    """Read an exec session with aiohttp (websocket-client spends seconds per 64 MiB just parsing frames)."""
    received = 0
    largest = 0
    others = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=0) as ws:
            await asyncio.sleep(1)   # a slow reader at first: the server must hold back, not drop output
            async for message in ws:
                frame = json.loads(message.data)
                if "data" in frame.get("stdout", {}):
                    chunk = base64.b64decode(frame["stdout"]["data"])
                    largest = max(largest, len(chunk))
                    received += len(chunk)
                else:
                    others.append(frame)
            return received, largest, others, ws.close_code


def test_large_output_streams_completely_with_backpressure(emu, shell_alloc):
    size = 64 * 1024 * 1024
    url = exec_url(emu, shell_alloc, ["head", "-c", str(size), "/dev/zero"]).replace("ws://", "http://", 1)
    received, largest, others, close_code = asyncio.run(count_output_slowly(url))

    assert received == size
    assert largest == 1024
    closes = [{"stdout": {"close": True}}, {"stderr": {"close": True}}]
    assert sorted(others[:2], key=json.dumps) == sorted(closes, key=json.dumps)
    assert others[2:] == [{"exited": True, "result": {}}]
    assert close_code == 1000


# --- tty ----------------------------------------------------------------------------------------

def test_tty_size_sent_before_start_is_the_initial_size(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["stty", "size"], tty="true"),
                       send=[{"tty_size": {"height": 33, "width": 121}}])

    assert outcome.output("stdout") == b"33 121\r\n"
    assert outcome.exit_code == 0


def test_tty_resize_during_session_is_seen_by_the_command(emu, shell_alloc):
    ws = connect(exec_url(emu, shell_alloc, ["/bin/sh", "-c", "stty size; read line; stty size"], tty="true"))
    ws.send(json.dumps({"tty_size": {"height": 24, "width": 80}}))
    outcome = ExecOutcome()
    while b"24 80" not in outcome.output("stdout"):
        outcome.raw_frames.append(ws.recv())
    ws.send(json.dumps({"tty_size": {"height": 50, "width": 200}}))
    ws.send(json.dumps(stdin_frame(b"go\n")))
    read_until_close(ws, outcome)

    assert outcome.output("stdout").endswith(b"50 200\r\n")
    assert outcome.exit_code == 0


def test_tty_resize_after_the_command_ended_is_harmless(emu, shell_alloc):
    ws = connect(exec_url(emu, shell_alloc, ["echo", "done"], tty="true"))
    outcome = ExecOutcome()
    while not outcome.raw_frames or outcome.raw_frames[-1] != '{"stdout":{"close":true}}':
        outcome.raw_frames.append(ws.recv())
    ws.send(json.dumps({"tty_size": {"height": 10, "width": 10}}))
    read_until_close(ws, outcome)

    assert outcome.exit_code == 0
    assert outcome.close_code == 1000


def test_tty_gives_a_terminal_and_merges_stderr_into_stdout(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", "tty; echo err >&2; exit 3"], tty="true"))

    lines = outcome.output("stdout").decode().split("\r\n")
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "err"
    assert outcome.data_frames("stderr") == []
    assert {"stderr": {"close": True}} not in outcome.frames
    assert outcome.exit_code == 3


def test_tty_command_has_a_controlling_terminal_in_its_own_session(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", "exec 3</dev/tty && echo ctty"], tty="true"))

    assert outcome.output("stdout") == b"ctty\r\n"


def test_tty_stdin_close_ends_input(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["cat"], tty="true"),
                       send=[stdin_frame(b"partial line"), STDIN_CLOSE])

    assert outcome.output("stdout").count(b"partial line") == 2   # the terminal echo and cat's copy
    assert outcome.exit_code == 0


# --- client frames that end the session -----------------------------------------------------------

def test_setup_frame_is_an_unexpected_message_type(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["sleep", "30"]), send=[{"setup": {}}])

    assert outcome.close_code == 1011
    assert outcome.close_reason.startswith("unexpected message type: &proto.ExecTaskStreamingRequest{Setup:")
    assert outcome.exit_frames == []


@pytest.mark.parametrize("frame, reason", [
    ("not json", "invalid character 'o' in literal null (expecting 'u')"),
    ("[1]", "json: cannot unmarshal array into Go value of type proto.ExecTaskStreamingRequest"),
    ('{"stdin":{"data":"***"}}', "illegal base64 data at input byte 0"),
])
def test_undecodable_client_frame_closes_with_the_decode_error(emu, shell_alloc, frame, reason):
    outcome = run_exec(exec_url(emu, shell_alloc, ["sleep", "30"]), send=[frame])

    assert (outcome.close_code, outcome.close_reason) == (1011, reason)


# --- errors before the upgrade --------------------------------------------------------------------

def plain_get(emu, alloc_id: str, params: dict, headers=None, method="GET") -> requests.Response:
    url = f"{emu.address}/v1/client/allocation/{alloc_id}/exec"
    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, url, params=params, headers=headers or {}, timeout=30)


WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@pytest.mark.parametrize("command, error", [
    (None, "unexpected end of JSON input"),
    ("ls", "invalid character 'l' looking for beginning of value"),
    ('["ls",]', "invalid character ']' looking for beginning of value"),
    ('["ls" "-l"]', "invalid character '\"' after array element"),
    ('{"a":1}', "json: cannot unmarshal object into Go value of type []string"),
    ('"ls"', "json: cannot unmarshal string into Go value of type []string"),
    ("[1]", "json: cannot unmarshal number into Go value of type string"),
    ('["ls"] x', "invalid character 'x' after top-level value"),
])
def test_command_must_be_a_json_array_of_strings(emu, shell_alloc, command, error):
    params = {"task": "main"} if command is None else {"task": "main", "command": command}
    response = plain_get(emu, shell_alloc, params, WS_HEADERS)

    assert response.status_code == 500
    assert response.text == f"failed to marshal command into json: {error}"


def test_tty_must_be_a_boolean(emu, shell_alloc):
    response = plain_get(emu, shell_alloc, {"task": "main", "command": '["true"]', "tty": "maybe"}, WS_HEADERS)

    assert response.status_code == 500
    assert response.text == 'tty value is not a boolean: strconv.ParseBool: parsing "maybe": invalid syntax'


def test_missing_upgrade_is_refused_like_gorilla(emu, shell_alloc):
    response = plain_get(emu, shell_alloc, {"task": "main", "command": '["true"]'})

    assert response.status_code == 400
    assert response.text == ("Bad Request\nfailed to upgrade connection: websocket: the client is not using the "
                             "websocket protocol: 'upgrade' token not found in 'Connection' header")


def test_non_get_upgrade_is_405(emu, shell_alloc):
    response = plain_get(emu, shell_alloc, {"task": "main", "command": '["true"]'}, WS_HEADERS, method="POST")

    assert response.status_code == 405
    assert response.text == ("Method Not Allowed\nfailed to upgrade connection: websocket: the client is not using "
                             "the websocket protocol: request method is not GET")


def test_cross_origin_upgrade_is_403(emu, shell_alloc):
    headers = dict(WS_HEADERS, Origin="http://elsewhere.example:4646")
    response = plain_get(emu, shell_alloc, {"task": "main", "command": '["true"]'}, headers)

    assert response.status_code == 403
    assert response.text == ("Forbidden\nfailed to upgrade connection: websocket: request origin not allowed by "
                             "Upgrader.CheckOrigin")


def test_same_origin_upgrade_is_accepted(emu, shell_alloc):
    host = emu.address.split("://", 1)[1]
    ws = websocket.create_connection(exec_url(emu, shell_alloc, ["true"]), origin=f"http://{host}",
                                     timeout=SOCKET_TIMEOUT)

    assert read_until_close(ws).exit_code == 0


# --- errors after the upgrade (close frames) -----------------------------------------------------

def test_session_errors_close_with_nomads_code_and_text(emu, shell_alloc):
    blocked = alloc_of(emu, "blocked")["ID"]
    wait_task_state(emu, blocked, "setup", "dead")
    finished = alloc_of(emu, "finished")["ID"]
    wait_task_state(emu, finished, "once", "dead")
    unknown = "8d3f3c57-0000-4000-8000-000000000000"
    cases = [
        (unknown, "main", ["true"], 1008, f'Unknown allocation "{unknown}"'),
        (shell_alloc[:8], "main", ["true"], 1011, "alloc lookup failed: index error: UUID must be 36 characters"),
        (shell_alloc, "", ["true"], 1008, "must provide task name"),
        (shell_alloc, "main", [], 1008, "command is not present"),
        (shell_alloc, "nope", ["true"], 1008, 'unknown task name "nope"'),
        (blocked, "app", ["true"], 1008, 'task "app" not started yet.'),
        (finished, "once", ["true"], 1008, 'task "once" is not running.'),
        (shell_alloc, "main", ["no-such-binary"], 1011, 'exec: "no-such-binary": executable file not found in $PATH'),
        (shell_alloc, "main", ["/no/such/binary"], 1011, "fork/exec /no/such/binary: no such file or directory"),
    ]
    for alloc_id, task, command, code, reason in cases:
        for tty in ("false", "true"):
            outcome = run_exec(exec_url(emu, alloc_id, command, task=task, tty=tty))
            assert (outcome.close_code, outcome.close_reason) == (code, reason), (alloc_id, task, command, tty)
            assert outcome.raw_frames == []


def test_other_region_has_no_path(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, ["true"], region="elsewhere"))

    assert (outcome.close_code, outcome.close_reason) == (1011, "No path to region")


def test_virtual_allocation_execs_in_a_task_directory_made_on_demand():
    with EmulatorProcess(str(EXEC_SCENARIO), virtual=2, nomad_version=WRITTEN_FOR) as emulator:
        virtual = next(alloc for alloc in emulator.allocations() if alloc["JobID"].startswith("virtual"))
        outcome = run_exec(exec_url(emulator, virtual["ID"], ["/bin/sh", "-c", 'pwd; echo "$NOMAD_ALLOC_ID"']))
    assert_no_server_errors(emulator)

    cwd, alloc_id = outcome.output("stdout").decode().splitlines()
    assert cwd.endswith(f"/{virtual['ID']}/main")
    assert alloc_id == virtual["ID"]
    assert outcome.exit_code == 0


def test_null_command_is_not_present(emu, shell_alloc):
    outcome = run_exec(exec_url(emu, shell_alloc, "null"))

    assert (outcome.close_code, outcome.close_reason) == (1008, "command is not present")


# --- ACL and the handshake ------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, READ_ONLY_TOKEN, EXEC_WITHOUT_NODE_EXEC_TOKEN, UNKNOWN_TOKEN])
def test_exec_needs_alloc_exec_and_alloc_node_exec(acl_emu, acl_web_alloc, token):
    outcome = run_exec(exec_url(acl_emu, acl_web_alloc, ["true"], task="server"), token=token)

    assert (outcome.close_code, outcome.close_reason) == (1011, "Permission denied")


@pytest.mark.parametrize("token", [EXEC_TOKEN, MANAGEMENT_TOKEN])
def test_exec_runs_with_both_capabilities(acl_emu, acl_web_alloc, token):
    outcome = run_exec(exec_url(acl_emu, acl_web_alloc, ["echo", "ok"], task="server"), token=token)

    assert outcome.output("stdout") == b"ok\n"
    assert outcome.close_code == 1000


@pytest.mark.parametrize("token, reason", [
    (READ_ONLY_TOKEN, "Permission denied"),                           # alloc-exec is checked before the task
    (EXEC_WITHOUT_NODE_EXEC_TOKEN, "must provide task name"),         # alloc-node-exec only after it
])
def test_capabilities_are_checked_in_nomads_order(acl_emu, acl_web_alloc, token, reason):
    outcome = run_exec(exec_url(acl_emu, acl_web_alloc, ["true"], task=""), token=token)

    assert outcome.close_reason == reason


def test_capabilities_are_checked_on_the_allocations_namespace(acl_emu):
    prod_alloc = alloc_of(acl_emu, "cache")["ID"]
    outcome = run_exec(exec_url(acl_emu, prod_alloc, ["true"], task="redis", namespace="prod"), token=OPERATOR_TOKEN)

    assert (outcome.close_code, outcome.close_reason) == (1011, "Permission denied")


def test_unknown_token_is_denied_before_the_allocation_lookup(acl_emu):
    unknown = "8d3f3c57-0000-4000-8000-000000000000"
    outcome = run_exec(exec_url(acl_emu, unknown, ["true"]), token=UNKNOWN_TOKEN)

    assert (outcome.close_code, outcome.close_reason) == (1011, "Permission denied")


def test_handshake_token_replaces_the_header_token(acl_emu, acl_web_alloc):
    url = exec_url(acl_emu, acl_web_alloc, ["echo", "ok"], task="server", ws_handshake="true")
    handshake = json.dumps({"version": 1, "auth_token": EXEC_TOKEN})
    outcome = run_exec(url, token=READ_ONLY_TOKEN, first_text=handshake)

    assert outcome.output("stdout") == b"ok\n"
    assert outcome.exit_code == 0


def test_empty_handshake_token_replaces_a_good_header_token(acl_emu, acl_web_alloc):
    url = exec_url(acl_emu, acl_web_alloc, ["true"], task="server", ws_handshake="true")
    outcome = run_exec(url, token=EXEC_TOKEN, first_text=json.dumps({"version": 1, "auth_token": ""}))

    assert (outcome.close_code, outcome.close_reason) == (1011, "Permission denied")


def test_handshake_false_keeps_the_header_token(acl_emu, acl_web_alloc):
    url = exec_url(acl_emu, acl_web_alloc, ["echo", "ok"], task="server", ws_handshake="false")

    assert run_exec(url, token=EXEC_TOKEN).output("stdout") == b"ok\n"


@pytest.mark.parametrize("ws_handshake, first_text, reason", [
    ("true", '{"version":2,"auth_token":""}', "unexpected handshake value: 2"),
    ("true", '{"auth_token":""}', "unexpected handshake value: 0"),
    ("true", '{"version":"1"}',
     "json: cannot unmarshal string into Go struct field wsHandshakeMessage.version of type int"),
    ("maybe", None, 'ws_handshake value is not a boolean: strconv.ParseBool: parsing "maybe": invalid syntax'),
])
def test_bad_handshake_closes_with_1008(acl_emu, acl_web_alloc, ws_handshake, first_text, reason):
    url = exec_url(acl_emu, acl_web_alloc, ["true"], task="server", ws_handshake=ws_handshake)
    outcome = run_exec(url, token=EXEC_TOKEN, first_text=first_text)

    assert (outcome.close_code, outcome.close_reason) == (1008, reason)


# --- the peer going away, faults, request counting ------------------------------------------------

def start_and_read_pid(emu, alloc_id: str) -> tuple:
    ws = connect(exec_url(emu, alloc_id, ["/bin/sh", "-c", "echo $$; exec sleep 300"]))
    first = json.loads(ws.recv())
    return ws, int(base64.b64decode(first["stdout"]["data"]))


def test_peer_vanishing_kills_the_command(emu, shell_alloc):
    ws, pid = start_and_read_pid(emu, shell_alloc)
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()

    wait_until(lambda: not pid_alive(pid), what=f"exec'd process {pid} to be killed")
    assert run_exec(exec_url(emu, shell_alloc, ["true"])).exit_code == 0


def test_peer_closing_early_kills_the_command(emu, shell_alloc):
    ws, pid = start_and_read_pid(emu, shell_alloc)
    ws.close()

    wait_until(lambda: not pid_alive(pid), what=f"exec'd process {pid} to be killed")


def test_abandoned_sessions_leave_no_open_files_in_the_server(emu, shell_alloc):
    def open_files() -> int:
        return len(os.listdir(f"/proc/{emu.process.pid}/fd"))

    run_exec(exec_url(emu, shell_alloc, ["true"], tty="true"))
    baseline = open_files()
    for tty in ("false", "true"):
        ws = connect(exec_url(emu, shell_alloc, ["cat"], tty=tty))
        ws.sock.close()
        run_exec(exec_url(emu, shell_alloc, ["sleep", "30"], tty=tty), send=[{"setup": {}}])
        run_exec(exec_url(emu, shell_alloc, ["no-such-binary"], tty=tty))

    wait_until(lambda: open_files() <= baseline, what=f"the server to close its files again (baseline {baseline})")


def test_exec_close_early_fault_closes_1011_after_first_output(emu, shell_alloc, no_faults):
    emu.control.add_fault(action="exec_close_early", path="/exec$", count=1)
    script = "echo first; sleep 0.5; echo second"
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", script]))

    assert outcome.output("stdout") == b"first\n"
    assert outcome.exit_frames == []
    assert outcome.close_code == 1011
    assert run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", script])).output("stdout") == b"first\nsecond\n"


def test_exec_close_early_fault_without_output_still_withholds_the_exit(emu, shell_alloc, no_faults):
    emu.control.add_fault(action="exec_close_early", path="/exec$", count=1)
    outcome = run_exec(exec_url(emu, shell_alloc, ["true"]))

    assert outcome.exit_frames == []
    assert outcome.close_code == 1011


def test_each_exec_request_is_counted_once(emu, shell_alloc):
    key = f"GET /v1/client/allocation/{shell_alloc}/exec"
    before = emu.control.requests().get(key, 0)
    run_exec(exec_url(emu, shell_alloc, ["true"]))
    plain_get(emu, shell_alloc, {"task": "main", "command": '["true"]'})

    assert emu.control.requests().get(key, 0) == before + 2


# --- Go's JSON error texts (pure functions of the handler) -----------------------------------------

@pytest.mark.parametrize("command, error", [
    ("", "unexpected end of JSON input"),
    ('["ls"', "unexpected end of JSON input"),
    ("[tru]", "invalid character ']' in literal true (expecting 'e')"),
    ('["a\x01"]', "invalid character '\\x01' in string literal"),
    ('["\\q"]', "invalid character 'q' in string escape code"),
    ('["\\u12"]', "invalid character '\"' in \\u hexadecimal character escape"),
    ("[01]", "invalid character '1' after array element"),
    ("[1.]", "invalid character ']' after decimal point in numeric literal"),
    ("[1e]", "invalid character ']' in exponent of numeric literal"),
    ("[-]", "invalid character ']' in numeric literal"),
    ('{"a" 1}', "invalid character '1' after object key"),
    ("{1:2}", "invalid character '1' looking for beginning of object key string"),
    ('{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
    ("['ls']", "invalid character '\\'' looking for beginning of value"),
    ("[true]", "json: cannot unmarshal bool into Go value of type string"),
    ('[["ls"]]', "json: cannot unmarshal array into Go value of type string"),
])
def test_command_errors_are_gos(command, error):
    with pytest.raises(exec_ws.ExecQueryError) as raised:
        exec_ws.parse_command(command)

    assert str(raised.value) == f"failed to marshal command into json: {error}"


@pytest.mark.parametrize("command, argv", [
    ("null", []),
    ("[]", []),
    ('[null, "a b", "\\u00e9"]', ["", "a b", "é"]),
    (' [ "ls" , "-l" ] ', ["ls", "-l"]),
])
def test_command_decodes_like_go(command, argv):
    assert exec_ws.parse_command(command) == argv


@pytest.mark.parametrize("frame, expected", [
    ("{}", exec_ws.ClientFrame()),
    ("null", exec_ws.ClientFrame()),
    ('{"STDIN":{"Data":"aGk="}}', exec_ws.ClientFrame(stdin_data=b"hi")),
    ('{"stdin":{"close":true},"tty_size":{"height":5,"width":7}}',
     exec_ws.ClientFrame(stdin_close=True, tty_size=(5, 7))),
])
def test_client_frames_decode_like_go(frame, expected):
    assert exec_ws.decode_client_frame(frame) == expected


@pytest.mark.parametrize("frame, error", [
    ('{"stdin":"x"}', "json: cannot unmarshal string into Go struct field ExecTaskStreamingRequest.stdin "
                      "of type proto.ExecTaskStreamingIOOperation"),
    ('{"tty_size":{"height":1.5}}', "json: cannot unmarshal number 1.5 into Go struct field "
                                    "ExecTaskStreamingRequest_TerminalSize.tty_size.height of type int32"),
    ('{"stdin":{"close":1}}', "json: cannot unmarshal number into Go struct field "
                              "ExecTaskStreamingIOOperation.stdin.close of type bool"),
])
def test_client_frame_type_errors_are_gos(frame, error):
    with pytest.raises(exec_ws.GoJSONError) as raised:
        exec_ws.decode_client_frame(frame)

    assert str(raised.value) == error


def test_close_reasons_fit_a_control_frame():
    reason = exec_ws.truncate_reason("é" * 100)

    assert len(reason.encode("utf-8")) <= 123
    assert reason == "é" * 61


# --- what the connection plugin relies on -------------------------------------------------------------

def test_home_and_tmpdir_are_inside_the_task_directory(emu, shell_alloc):
    task_dir = task_view(emu, shell_alloc, "main")["task_dir"]
    script = 'echo "$HOME"; echo "$TMPDIR"; test -d "$TMPDIR" && echo tmp-exists; mktemp'
    outcome = run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", script]))

    home, tmpdir, exists, made = outcome.output("stdout").decode().splitlines()
    assert home == task_dir and tmpdir == os.path.join(task_dir, "tmp") and exists == "tmp-exists"
    assert made.startswith(os.path.join(task_dir, "tmp") + "/")


def test_50_concurrent_sessions_each_get_their_own_bytes_back(emu, shell_alloc):
    payloads = [os.urandom(64 * 1024 + index) for index in range(50)]
    sockets = [connect(exec_url(emu, shell_alloc, ["cat"])) for _payload in payloads]
    for ws, payload in zip(sockets, payloads):
        ws.send(json.dumps(stdin_frame(payload)))
        ws.send(json.dumps(STDIN_CLOSE))
    outcomes = [read_until_close(ws) for ws in sockets]

    assert [outcome.output("stdout") for outcome in outcomes] == payloads
    assert all(outcome.exit_code == 0 and outcome.close_code == 1000 for outcome in outcomes)


def test_exec_drop_after_bytes_fault_cuts_output_without_a_close_frame(emu, shell_alloc, no_faults):
    emu.control.add_fault(action="exec_drop_after_bytes", after_bytes=4096, path="/exec$", count=1)
    ws = connect(exec_url(emu, shell_alloc, ["/bin/sh", "-c", "head -c 100000 /dev/zero"]))
    received = 0
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            assert opcode != websocket.ABNF.OPCODE_CLOSE, "the fault drops the connection, it does not close it"
            frame = json.loads(data)
            assert not frame.get("exited")
            received += len(base64.b64decode(frame.get("stdout", {}).get("data", "")))
    assert received == 4096
    assert run_exec(exec_url(emu, shell_alloc, ["/bin/sh", "-c", "echo whole"])).output("stdout") == b"whole\n"


def test_exec_drop_after_bytes_fault_cuts_stdin(emu, shell_alloc, no_faults):
    emu.control.add_fault(action="exec_drop_after_bytes", after_bytes=10000, path="/exec$", count=1)
    task_dir = task_view(emu, shell_alloc, "main")["task_dir"]
    target = os.path.join(task_dir, "cut-stdin.bin")
    # The command announces itself before stdin flows: a drop before the shell had created the file killed it first.
    ws = connect(exec_url(emu, shell_alloc, ["/bin/sh", "-c", f": > {target}; echo ready; exec cat >> {target}"]))
    wait_for_stdout(ws, b"ready\n")
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, BrokenPipeError)):
        for _frame in range(100):
            ws.send(json.dumps(stdin_frame(b"x" * 4096)))
        ws.send(json.dumps(STDIN_CLOSE))
        while True:
            opcode, _data = ws.recv_data(control_frame=True)
            assert opcode != websocket.ABNF.OPCODE_CLOSE
    assert os.path.getsize(target) <= 10000


def test_exec_drop_after_bytes_needs_a_byte_count(emu, no_faults):
    response = requests.post(f"{emu.address}/_emulator/faults", json={"action": "exec_drop_after_bytes"}, timeout=30)
    assert response.status_code == 400 and "after_bytes" in response.text
