# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pure pieces of the exec session: argv, query, client frames, server frame decoding, task choice, results."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.exec import (
    ExecArgumentError,
    ExecError,
    ExecOutcome,
    ExecRequest,
    OutputCollector,
    build_argv,
    check_task_runs,
    choose_task,
    closed_before_exit_message,
    exec_query,
    exec_request_from_params,
    exec_timeout_of,
    handshake_failure_message,
    handshake_frame,
    netloc_of,
    parse_close_payload,
    shape_output,
    split_token_header,
    stdin_bytes,
    stdin_frames,
    tty_size_of,
)


# ------------------------------------------------------------------------------------------- argv
@pytest.mark.parametrize(
    "command, expected",
    [
        ("echo hello", ["echo", "hello"]),
        ("  ls   -l  ", ["ls", "-l"]),
        ("sh -c 'echo a; echo b'", ["sh", "-c", "echo a; echo b"]),
        ('printf "%s\\n" "two words"', ["printf", "%s\\n", "two words"]),
        ("echo a\\ b", ["echo", "a b"]),
    ],
)
def test_command_is_split_like_a_posix_shell(command, expected):
    assert build_argv(command, None) == expected


def test_argv_is_passed_unchanged():
    assert build_argv(None, ["sh", "-c", "echo $HOME | wc -c"]) == ["sh", "-c", "echo $HOME | wc -c"]


@pytest.mark.parametrize(
    "command, argv, message",
    [
        ("", None, "command must not be empty"),
        ("   ", None, "command must not be empty"),
        (None, [], "argv must not be empty"),
        (None, ["", "x"], "argv[0] (the program to run) must not be empty"),
        ("ls", ["ls"], "parameters are mutually exclusive: command|argv"),
        (None, None, "one of the following is required: command, argv"),
        ("echo 'open", None, "cannot split command into words: No closing quotation"),
    ],
)
def test_unusable_commands_are_refused_with_one_line(command, argv, message):
    with pytest.raises(ExecArgumentError) as raised:
        build_argv(command, argv)
    assert str(raised.value) == message


# ------------------------------------------------------------------------------------------- stdin
def test_stdin_gets_a_newline_by_default_and_none_means_no_input():
    assert stdin_bytes("abc", True) == b"abc\n"
    assert stdin_bytes("abc", False) == b"abc"
    assert stdin_bytes("", True) == b"\n"
    assert stdin_bytes(None, True) is None
    assert stdin_bytes("grüße", False) == "grüße".encode()


def test_stdin_frames_carry_the_data_in_chunks_and_always_end_with_close():
    data = bytes(range(256)) * 40
    frames = [json.loads(frame) for frame in stdin_frames(data, chunk_size=1000)]
    assert frames[-1] == {"stdin": {"close": True}}
    chunks = [base64.b64decode(frame["stdin"]["data"]) for frame in frames[:-1]]
    assert [len(chunk) for chunk in chunks] == [1000] * 10 + [240]
    assert b"".join(chunks) == data


def test_no_stdin_still_sends_the_close_frame():
    assert list(stdin_frames(b"")) == ['{"stdin":{"close":true}}']


# ------------------------------------------------------------------------------------------- request
def test_query_parameters_as_nomad_reads_them():
    request = ExecRequest("a" * 36, "server", ["sh", "-c", "echo \"x\""], tty=True, ws_handshake=False)
    query = exec_query(request)
    assert query == {"task": "server", "command": '["sh","-c","echo \\"x\\""]', "tty": "true", "ws_handshake": "false"}
    assert json.loads(query["command"]) == ["sh", "-c", 'echo "x"']
    assert exec_query(request._replace(namespace="prod"))["namespace"] == "prod"


def test_token_moves_from_the_header_to_the_handshake_frame_only_when_asked():
    headers = ["X-Nomad-Token: s3cret", "Authorization: Basic dTpw"]
    assert split_token_header(headers, take_token=False) == (headers, "")
    lines, token = split_token_header(headers, take_token=True)
    assert lines == ["Authorization: Basic dTpw"] and token == "s3cret"
    assert split_token_header({"x-nomad-token": "t"}, take_token=True) == ([], "t")
    assert json.loads(handshake_frame("s3cret")) == {"version": 1, "auth_token": "s3cret"}


def test_request_from_action_parameters():
    params = dict(command="cat", argv=None, stdin="x", stdin_add_newline=True, tty=True,
                  tty_size={"height": 24, "width": 80}, ws_handshake=True, command_timeout=5,
                  timeout=30)
    request = exec_request_from_params(params, "id", "task")
    assert request == ExecRequest("id", "task", ["cat"], b"x\n", True, (24, 80), True, 5.0)


@pytest.mark.parametrize(
    "tty, size, message",
    [
        (False, {"height": 24, "width": 80}, "tty_size needs tty=true"),
        (True, {"height": 0, "width": 80}, "tty_size height and width must be positive integers (got 0x80)"),
        (True, {"height": 24, "width": -1}, "tty_size height and width must be positive integers (got 24x-1)"),
    ],
)
def test_bad_tty_sizes(tty, size, message):
    with pytest.raises(ExecArgumentError) as raised:
        tty_size_of(tty, size)
    assert str(raised.value) == message


def test_timeout_must_be_positive():
    assert exec_timeout_of(None) == 300.0
    assert exec_timeout_of(2) == 2.0
    with pytest.raises(ExecArgumentError, match=r"^command_timeout must be a positive number of seconds \(got 0\)$"):
        exec_timeout_of(0)


# ------------------------------------------------------------------------------------------- server frames
def frame(stream, data):
    return json.dumps({stream: {"data": base64.b64encode(data).decode("ascii")}}, separators=(",", ":")).encode()


def test_output_is_collected_per_stream_and_exit_code_zero_may_be_omitted():
    collector = OutputCollector()
    for payload in (frame("stdout", b"out1 "), frame("stderr", b"err"), frame("stdout", b"out2"),
                    b'{"stdout":{"close":true}}', b'{"stderr":{"close":true}}'):
        collector.feed(payload)
    assert collector.exit_code is None
    collector.feed(b'{"exited":true,"result":{}}')
    assert collector.outcome() == ExecOutcome(0, b"out1 out2", b"err")


@pytest.mark.parametrize(
    "payload, code",
    [
        (b'{"exited":true,"result":{"exit_code":42}}', 42),
        (b'{"exited":true}', 0),
        (b'{"exited":true,"result":null}', 0),
        (b'{"exited": true, "result": {"exit_code": 1}}', 1),
    ],
)
def test_exit_codes(payload, code):
    collector = OutputCollector()
    collector.feed(payload)
    assert collector.exit_code == code


def test_frames_that_do_not_match_the_fast_path_go_through_json():
    collector = OutputCollector()
    collector.feed(b'{"stdout":{"data":"YWI\\/"}}')  # "\/" is a legal JSON escape for "/"
    collector.feed(b'{ "stderr" : { "data" : "Yw==" } }')
    collector.feed(b'{"stdout":{"data":"ZA=="},"exited":true}')
    assert collector.outcome() == ExecOutcome(0, base64.b64decode("YWI/") + b"d", b"c")
    collector = OutputCollector()
    collector.feed(b"{}")  # a heartbeat
    assert collector.exit_code is None and not collector.has_output


@given(st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]), st.binary(max_size=1500)), max_size=30))
def test_any_split_of_the_output_is_reassembled_exactly(chunks):
    collector = OutputCollector()
    for stream, data in chunks:
        collector.feed(frame(stream, data))
    collector.feed(b'{"exited":true,"result":{"exit_code":3}}')
    expected_out = b"".join(data for stream, data in chunks if stream == "stdout")
    expected_err = b"".join(data for stream, data in chunks if stream == "stderr")
    assert collector.outcome() == ExecOutcome(3, expected_out, expected_err)


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'{"exited":true,"result":{"exit_code":"x"}}'])
def test_broken_frames_are_errors(payload):
    with pytest.raises(ExecError):
        OutputCollector().feed(payload)


def test_close_payloads_and_messages():
    assert parse_close_payload(b"\x03\xf3Permission denied") == (1011, "Permission denied")
    assert parse_close_payload(b"") == (1005, "")
    assert closed_before_exit_message(1011, "io: read/write on closed pipe") == (
        "exec session closed before the command exited (close code 1011: io: read/write on closed pipe)"
    )
    assert closed_before_exit_message(1011, "Permission denied") == (
        "exec session closed before the command exited (close code 1011: Permission denied; the token needs "
        "alloc-exec, and alloc-node-exec for drivers without filesystem isolation such as raw_exec, in the "
        "allocation's namespace)"
    )
    assert closed_before_exit_message(1000, "") == "exec session closed before the command exited (close code 1000)"
    assert closed_before_exit_message(None, "") == (
        "exec session closed before the command exited (connection dropped without a close frame)"
    )


def test_rejected_upgrade_is_one_line_and_the_url_loses_its_query():
    message = handshake_failure_message(400, b"Bad Request\nfailed to upgrade connection: websocket: nope")
    assert message == "exec request rejected with HTTP 400: Bad Request failed to upgrade connection: websocket: nope"
    assert handshake_failure_message(502, None) == "exec request rejected with HTTP 502"
    assert netloc_of("wss://nomad.example:4646/v1/client/allocation/x/exec?command=%5B%5D") == "wss://nomad.example:4646"


# ------------------------------------------------------------------------------------------- task choice
ALLOCATION = {
    "ID": "0123abcd-0000-4000-8000-000000000000",
    "TaskGroup": "frontend",
    "Job": {"TaskGroups": [{"Name": "other", "Tasks": [{"Name": "x"}]},
                           {"Name": "frontend", "Tasks": [{"Name": "server"}, {"Name": "sidecar"}]}]},
    "TaskStates": {"server": {"State": "running"}, "sidecar": {"State": "dead"}},
}


def test_the_only_task_is_the_default():
    allocation = dict(ALLOCATION, TaskGroup="other")
    assert choose_task(allocation, None) == "x"
    assert choose_task({"ID": "ab", "TaskStates": {"main": {}}}, None) == "main"


def test_several_tasks_need_a_choice_and_the_message_lists_them():
    with pytest.raises(ExecArgumentError) as raised:
        choose_task(ALLOCATION, None)
    assert str(raised.value) == "allocation 0123abcd has several tasks (server, sidecar); set task to one of them"
    assert choose_task(ALLOCATION, "sidecar") == "sidecar"


def test_unknown_task_lists_the_tasks():
    with pytest.raises(ExecArgumentError) as raised:
        choose_task(ALLOCATION, "web")
    assert str(raised.value) == "allocation 0123abcd has no task named 'web'; its tasks are: server, sidecar"


def test_dead_task_is_refused_before_connecting():
    check_task_runs(ALLOCATION, "server")
    with pytest.raises(ExecError, match=r"^task 'sidecar' of allocation 0123abcd is not running \(dead\)$"):
        check_task_runs(ALLOCATION, "sidecar")


# ------------------------------------------------------------------------------------------- results
def test_text_output_is_stripped_and_split():
    shaped = shape_output(ExecOutcome(0, b"a\r\nb\n\n", b"oops\n"), "text", strip_empty_ends=True)
    assert shaped == {"rc": 0, "truncated": False, "stdout": "a\r\nb", "stderr": "oops", "stdout_lines": ["a", "b"], "stderr_lines": ["oops"]}
    kept = shape_output(ExecOutcome(0, b"a\n\n", b""), "text", strip_empty_ends=False)
    assert kept["stdout"] == "a\n\n" and kept["stdout_lines"] == ["a", ""]


def test_invalid_utf8_is_replaced_in_text_mode():
    assert shape_output(ExecOutcome(1, b"ok \xff", b""), "text", True)["stdout"] == "ok \ufffd"


def test_unfinished_commands_have_output_but_no_rc():
    assert shape_output(ExecOutcome(None, b"so far\n", b""), "text", True) == {
        "truncated": False, "stdout": "so far", "stderr": "", "stdout_lines": ["so far"], "stderr_lines": []}


def test_base64_output_is_byte_exact_and_has_no_lines():
    raw = bytes(range(256)) + b"\n\n"
    shaped = shape_output(ExecOutcome(0, raw, b"\x00"), "base64", strip_empty_ends=True)
    assert shaped == {"rc": 0, "truncated": False, "stdout": base64.b64encode(raw).decode(), "stderr": "AA==", "stdout_lines": [],
                      "stderr_lines": []}


def test_without_output_lines_the_lines_are_empty():
    shaped = shape_output(ExecOutcome(0, b"a\nb\n", b"c\n"), "text", True, output_lines=False)
    assert shaped == {"rc": 0, "truncated": False, "stdout": "a\nb", "stderr": "c", "stdout_lines": [],
                      "stderr_lines": []}


# ------------------------------------------------------------------------------------------- client frame order
class RecordingSocket:
    """Stands in for the WebSocket the sender thread writes to; stops the session after two heartbeats."""

    def __init__(self):
        self.sent = []
        self.session = None

    def send(self, payload):
        self.sent.append(payload)
        if self.sent.count("{}") == 2:
            self.session._stop.set()


def test_sender_writes_size_then_stdin_then_close_then_heartbeats(monkeypatch):
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import exec as _exec

    monkeypatch.setattr(_exec, "HEARTBEAT_INTERVAL", 0.01)
    request = ExecRequest("id", "task", ["cat"], stdin=b"x" * 70000, tty=True, tty_size=(24, 80))
    session = _exec.ExecSession("ws://127.0.0.1:1/v1/client/allocation/id/exec", [], {}, request)
    socket = RecordingSocket()
    socket.session = session
    session._ws = socket
    session._send_client_frames()
    frames = [json.loads(payload) for payload in socket.sent]
    assert frames[0] == {"tty_size": {"height": 24, "width": 80}}
    stdin = b"".join(base64.b64decode(frame["stdin"]["data"]) for frame in frames[1:-3])
    assert stdin == b"x" * 70000
    assert frames[-3:] == [{"stdin": {"close": True}}, {}, {}]


class ScriptedStop:
    """A stop event whose wait() answers from a script (False: the interval passed, True: the session ended)."""

    def __init__(self, answers):
        self.answers = list(answers)

    def wait(self, _seconds):
        return self.answers.pop(0)


def test_heartbeats_only_follow_a_silence_of_the_server():
    """Since Nomad 1.8 the server closes right after the exited frame; a heartbeat sent into that close makes the
    server's kernel reset the connection and drop undelivered output, so none is sent while output flows."""
    import time

    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import exec as _exec

    session = _exec.ExecSession("ws://127.0.0.1:1/v1/client/allocation/id/exec", [], {},
                                ExecRequest("id", "task", ["cat"]))
    sent = []
    socket = type("Socket", (), {"send": lambda _self, payload: sent.append(payload)})()
    session._stop = ScriptedStop([False, False, True])
    session._last_frame_at = time.monotonic() + 3600  # frames keep arriving
    session._send_heartbeats_while_idle(socket)
    assert sent == []
    session._stop = ScriptedStop([False, False, True])
    session._last_frame_at = time.monotonic() - 3600  # nothing for longer than the interval
    session._send_heartbeats_while_idle(socket)
    assert sent == ["{}", "{}"]


class _OutputWhileWaiting:
    """A stop event for the sender: each wait() sees `frames` more output frames arrive (then False), and the
    session ends (True) once they are used up; it records how long it was asked to wait."""

    def __init__(self, session, frames):
        self.session, self.frames, self.waits = session, frames, []

    def wait(self, seconds):
        import time

        self.waits.append(seconds)
        if self.frames == 0:
            return True
        self.frames -= 1
        self.session._last_frame_at = time.monotonic()
        return False

    def is_set(self):
        return False


@pytest.mark.parametrize("silent_for, frames, expected", [
    (0.0, 0, []),
    (0.0, 3, []),
    (1.0, 0, ['{"stdin":{"close":true}}']),
], ids=["exited-within-the-delay", "output-then-exit", "silent-for-longer"])
def test_without_stdin_the_close_waits_for_silence_and_never_follows_an_exit(silent_for, frames, expected):
    """Nomad 1.8+ closes TCP right after the exited frame: a stdin close that reaches it later resets the
    connection and drops the output not read yet. So a command that exits while output still arrives, or within
    STDIN_CLOSE_DELAY of silence, gets no frame; one that is silent longer (waiting for input) gets the close."""
    import time

    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import exec as _exec

    session = _exec.ExecSession("ws://127.0.0.1:1/v1/client/allocation/id/exec", [], {},
                                ExecRequest("id", "task", ["cat"]))
    sent = []
    session._ws = type("Socket", (), {"send": lambda _self, payload: sent.append(payload)})()
    session._stop = stop = _OutputWhileWaiting(session, frames)
    session._last_frame_at = time.monotonic() - silent_for
    session._send_client_frames()
    assert sent == expected
    if not expected:
        assert len(stop.waits) == frames + 1 and all(0 < wait <= _exec.STDIN_CLOSE_DELAY for wait in stop.waits)


def test_output_beyond_the_limit_keeps_its_end_and_says_it_was_truncated():
    collector = OutputCollector(max_bytes=10)
    for number in range(100):
        collector.feed(json.dumps({"stdout": {"data": base64.b64encode(b"%03d" % number).decode()}}).encode())
    collector.feed(b'{"exited": true}')
    outcome = collector.outcome()
    assert (outcome.stdout, outcome.stderr, outcome.truncated) == (b"6097098099", b"", True)
    assert len(b"".join(collector.stdout.chunks)) <= 20
    small = OutputCollector(max_bytes=10)
    small.feed(json.dumps({"stderr": {"data": base64.b64encode(b"0123456789").decode()}}).encode())
    assert small.outcome().truncated is False
