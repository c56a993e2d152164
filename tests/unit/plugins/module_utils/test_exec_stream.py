# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pure pieces of the streaming exec session (used by the nomad_exec connection plugin)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.exec import (
    HEARTBEAT_INTERVAL,
    STDIN_CHUNK_SIZE,
    STDIN_CLOSE_DELAY,
    ExecError,
    ExecRequest,
    ExecSourceError,
    StreamingExecSession,
    file_chunks,
    output_of_frame,
    stdin_data_frame,
)


def frame(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@given(st.binary(max_size=2048), st.sampled_from(["stdout", "stderr"]))
def test_data_frames_decode_byte_exact(data, stream):
    payload = frame({stream: {"data": base64.b64encode(data).decode()}})
    pieces, exit_code = output_of_frame(payload)
    assert exit_code is None
    assert {name for name, _chunk in pieces} <= {stream}
    assert b"".join(chunk for _name, chunk in pieces) == data


def test_escaped_json_takes_the_decoder_path():
    pieces, exit_code = output_of_frame(b'{"stdout":{"data":"aGk\\u003d"}}')
    assert pieces == (("stdout", b"hi"),) and exit_code is None


@pytest.mark.parametrize("payload, code", [
    (b'{"exited":true,"result":{}}', 0),
    (b'{"exited":true,"result":{"exit_code":7}}', 7),
    (b'{"stdout":{"close":true}}', None),
])
def test_exit_frames(payload, code):
    pieces, exit_code = output_of_frame(payload)
    assert pieces == () and exit_code == code


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b'{"stdout":{"data":"QQ"}}'])
def test_broken_frames_are_exec_errors(payload):
    with pytest.raises(ExecError):
        output_of_frame(payload)


def test_stdin_data_frame_is_what_nomad_decodes():
    assert json.loads(stdin_data_frame(b"\x00\xff")) == {"stdin": {"data": "AP8="}}


def test_file_chunks_reads_lazily_in_chunks(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"abcdefghij")
    assert list(file_chunks(str(path), 4)) == [b"abcd", b"efgh", b"ij"]


def session(stdin):
    request = ExecRequest(allocation_id="a", task="t", argv=["cat"])
    return StreamingExecSession("ws://127.0.0.1:1/x", [], None, request, stdin=stdin)


def test_source_chunks_are_cut_to_frame_size():
    chunks = list(session([b"x" * (STDIN_CHUNK_SIZE * 2 + 5), b"", b"y"])._stdin_chunks())
    assert [len(chunk) for chunk in chunks] == [STDIN_CHUNK_SIZE, STDIN_CHUNK_SIZE, 5, 1]


def test_a_failing_source_is_one_source_error():
    def source():
        yield b"first"
        raise PermissionError(13, "Permission denied")

    chunks = session(source())._stdin_chunks()
    assert next(chunks) == b"first"
    with pytest.raises(ExecSourceError, match="cannot read the data to send: Permission denied"):
        next(chunks)


def test_connection_refused_is_one_line():
    with pytest.raises(ExecError, match=r"^cannot connect to ws://127.0.0.1:1: "):
        session(None).run()


class _ScriptedStop:
    """wait() answers from a script (True: the session ended); records what it was asked to wait."""

    def __init__(self, answers):
        self.answers, self.waits = list(answers), []

    def wait(self, seconds):
        self.waits.append(seconds)
        return self.answers.pop(0)

    def is_set(self):
        return False


@pytest.mark.parametrize("stdin, silent_for, expected", [
    ([], 0.0, []),
    ([], 1.0, ['{"stdin":{"close":true}}']),
    ([b"data"], 0.0, ['{"stdin":{"data":"ZGF0YQ=="}}', '{"stdin":{"close":true}}']),
], ids=["no-input-exited-sooner", "no-input-silent-for-longer", "input-closes-at-once"])
def test_the_stdin_close_waits_only_without_input_and_never_follows_an_exit(stdin, silent_for, expected):
    """Nomad 1.8+ resets the connection when a frame reaches it after its close, dropping unread output."""
    import time

    streaming = session(stdin)
    streaming._stop = stop = _ScriptedStop([True])
    streaming._last_frame_at = time.monotonic() - silent_for
    sent = []
    streaming._ws = type("Socket", (), {"send": lambda _self, payload: sent.append(payload)})()
    streaming._send_client_frames()
    assert sent == expected
    assert len(stop.waits) == 1
    assert stop.waits[0] == HEARTBEAT_INTERVAL if expected else 0 < stop.waits[0] <= STDIN_CLOSE_DELAY


def test_a_command_that_reads_no_input_gets_only_heartbeats():
    request = ExecRequest(allocation_id="a", task="t", argv=["cat", "file"])
    streaming = StreamingExecSession("ws://127.0.0.1:1/x", [], None, request, reads_stdin=False)
    streaming._stop = stop = _ScriptedStop([True])
    sent = []
    streaming._ws = type("Socket", (), {"send": lambda _self, payload: sent.append(payload)})()
    streaming._send_client_frames()
    assert sent == [] and stop.waits == [HEARTBEAT_INTERVAL]
    with pytest.raises(ValueError, match="stdin given for a command that reads none"):
        StreamingExecSession("ws://127.0.0.1:1/x", [], None, request, stdin=[b"x"], reads_stdin=False)
