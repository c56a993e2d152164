# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The stream frame decoder and the tail/follow helpers of module_utils/allocations/logs.py, and the file copy of _alloc_files.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import files as _alloc_files
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import logs as _fs
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs import (
    FrameDecoder,
    LineMatcher,
    NomadStreamError,
    TailBuffer,
    decode_frames,
    last_lines,
    split_lines,
)


def frame_bytes(data, offset=0, file="alloc/logs/web.stdout.0", event=None, sort=False):
    obj = {"Data": base64.b64encode(data).decode("ascii"), "File": file, "Offset": offset}
    if event:
        obj["FileEvent"] = event
    if not data:
        del obj["Data"]
    return json.dumps(obj, sort_keys=sort, separators=(",", ":")).encode("ascii")


def body(payloads, heartbeat_every=2):
    parts, offset = [], 0
    for index, payload in enumerate(payloads):
        offset += len(payload)
        parts.append(frame_bytes(payload, offset, sort=index % 2 == 0))
        if index % heartbeat_every == 0:
            parts.append(b"{}")
    return b"".join(parts)


def split_at(raw, cuts):
    cuts = sorted(set(c for c in cuts if 0 < c < len(raw)))
    edges = [0] + cuts + [len(raw)]
    return [raw[a:b] for a, b in zip(edges, edges[1:])]


def data_of(chunks):
    return b"".join(frame.data for frame in decode_frames(chunks))


PAYLOADS = [b"hello\nworld\n", bytes(range(256)), b"\x00\xff{}\"\\\n", b"bye\n"]


def test_split_at_every_byte_offset_loses_and_repeats_nothing():
    raw = body(PAYLOADS)
    expected = b"".join(PAYLOADS)
    for cut in range(len(raw) + 1):
        assert data_of([raw[:cut], raw[cut:]]) == expected, cut


def test_one_byte_chunks():
    raw = body(PAYLOADS)
    assert data_of([raw[i:i + 1] for i in range(len(raw))]) == b"".join(PAYLOADS)


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.binary(max_size=300), max_size=8), cuts=st.lists(st.integers(0, 4000), max_size=30),
       heartbeat_every=st.integers(1, 4))
def test_property_any_split_any_content(payloads, cuts, heartbeat_every):
    raw = body(payloads, heartbeat_every)
    assert data_of(split_at(raw, cuts)) == b"".join(payloads)


def test_heartbeats_and_file_events_are_frames_without_data():
    raw = b'{}' + frame_bytes(b"", 16, event="file truncated") + b'\n{}' + frame_bytes(b"new\n", 4, event="file truncated")
    frames = list(decode_frames([raw]))
    assert [f.is_heartbeat for f in frames] == [True, False, True, False]
    assert frames[1].event == "file truncated" and frames[1].data == b""
    assert frames[3].data == b"new\n" and frames[3].offset == 4


def test_error_text_after_frames_is_raised_not_returned():
    raw = frame_bytes(b"ok\n", 3) + b"{}failed to list entries: open /opt/nomad/data/alloc/x/alloc/logs: no such file or directory"
    decoder = FrameDecoder("/v1/client/fs/logs/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c")
    with pytest.raises(NomadStreamError, match="failed to list entries") as caught:
        for cut in (10, len(raw)):
            decoder.feed(raw[:cut] if cut == 10 else raw[10:])
        decoder.close()
    assert "\n" not in str(caught.value)


def test_error_text_split_in_the_first_character_still_raises():
    raw = frame_bytes(b"ok\n", 3) + b"Permission denied"
    with pytest.raises(NomadStreamError, match="Permission denied"):
        data_of(split_at(raw, [len(raw) - 17]))


def test_stream_cut_mid_frame_is_an_error_not_a_short_result():
    raw = frame_bytes(b"abcdef", 6) + frame_bytes(b"ghij", 10)
    with pytest.raises(NomadStreamError, match="middle of a frame"):
        data_of([raw[:-5]])


def test_an_unending_brace_is_bounded():
    decoder = FrameDecoder()
    decoder.feed(b'{"Data":"')
    with pytest.raises(NomadStreamError):
        for _attempt in range(40):
            decoder.feed(b"A" * 8192)


def test_invalid_base64_is_an_error():
    with pytest.raises(NomadStreamError, match="base64"):
        data_of([b'{"Data":"!!!","Offset":1}'])


def test_non_object_json_is_an_error():
    with pytest.raises(NomadStreamError):
        data_of([b'{"Data":""}[1,2]'])


def test_empty_body_is_empty():
    assert data_of([]) == b""
    assert data_of([b"", b"  "]) == b""


@pytest.mark.parametrize("data, lines", [
    (b"", []), (b"a\n", [b"a"]), (b"a\nb", [b"a", b"b"]), (b"a\n\n", [b"a", b""]), (b"\n", [b""]),
])
def test_split_lines(data, lines):
    assert split_lines(data) == lines


def test_last_lines_needs_one_more_line_when_the_window_may_start_mid_line():
    assert last_lines(b"rtial\nb\nc\n", 2, whole=False) == b"b\nc\n"
    assert last_lines(b"b\nc\n", 2, whole=False) is None
    assert last_lines(b"b\nc\n", 2, whole=True) == b"b\nc\n"
    assert last_lines(b"a\nb\nc", 2, whole=True) == b"b\nc"


class FakeClient:
    """Serves a log as Nomad's logs endpoint would for origin=end&offset=N (frames of 7 bytes), recording requests."""

    def __init__(self, log):
        self.log = log
        self.requests = []

    def stream(self, path, params, timeout=None):
        self.requests.append(dict(params))
        start = max(len(self.log) - params["offset"], 0)
        data = self.log[start:]
        for index in range(0, len(data), 7):
            yield frame_bytes(data[index:index + 7], start + index + 7)


def test_tail_lines_widens_the_window_only_as_needed():
    log = b"".join(f"line {n}\n".encode() for n in range(5000))
    client = FakeClient(log)
    data, truncated = _fs.tail_log(client, "a" * 36, "web", "stdout", tail_lines=5)
    assert data == b"".join(f"line {n}\n".encode() for n in range(4995, 5000))
    assert not truncated
    assert [r["offset"] for r in client.requests] == [600]
    assert all(r["origin"] == "end" for r in client.requests)


def test_tail_lines_with_long_lines_widens():
    log = b"x" * 1000 + b"\n" + b"y" * 1000 + b"\nlast\n"
    client = FakeClient(log)
    data, _offset = _fs.tail_log(client, "a" * 36, "web", "stdout", tail_lines=2)
    assert data == b"y" * 1000 + b"\nlast\n"
    assert len(client.requests) == 3
    assert client.requests[-1]["offset"] < len(log) * 4


def test_tail_lines_of_a_short_log_returns_all_of_it():
    client = FakeClient(b"one\ntwo\n")
    assert _fs.tail_log(client, "a" * 36, "web", "stdout", tail_lines=10) == (b"one\ntwo\n", False)


def test_whole_log_is_capped_by_max_bytes_from_the_end():
    client = FakeClient(b"0123456789")
    assert _fs.tail_log(client, "a" * 36, "web", "stdout", max_bytes=4) == (b"6789", True)
    assert client.requests[0]["offset"] == 5


def test_tail_bytes():
    client = FakeClient(b"0123456789")
    assert _fs.tail_log(client, "a" * 36, "web", "stdout", tail_bytes=3) == (b"789", False)


def test_line_matcher_sees_lines_split_across_chunks():
    matcher = LineMatcher(re.compile(r"^READY$"))
    assert not matcher.feed(b"starting\nREA")
    assert not matcher.feed(b"DY")
    assert matcher.feed(b"\nmore")
    assert matcher.matched == "READY"


def test_tail_buffer_keeps_the_end():
    buffer = TailBuffer(4)
    buffer.add(b"abc")
    assert not buffer.truncated
    buffer.add(b"def")
    assert (buffer.data, buffer.truncated) == (b"cdef", True)


# --------------------------------------------------------------------------------------------- NomadClient.stream
def _client(address):
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import ConnectionOptions

    return NomadClient(ConnectionOptions(address=address, retries=0, timeout=10, token="s3cr3t-token"))


def test_stream_sends_the_token_and_yields_the_body():
    from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import FakeNomad, Reply

    raw = body(PAYLOADS)
    with FakeNomad(lambda request: Reply(body=raw.decode("latin-1"), content_type="application/json")) as server:
        with _client(server.address) as client:
            chunks = list(client.stream("/v1/client/fs/logs/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", {"task": "web", "follow": False}))
        assert server.requests[0].headers.get("X-Nomad-Token") == "s3cr3t-token"
        assert server.requests[0].query["follow"] == "false"
    assert b"".join(chunks).decode("utf-8").encode("latin-1") == raw


def test_stream_maps_an_error_status_like_read():
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadNotFoundError
    from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import FakeNomad, Reply

    text = 'task "web" not started yet. No logs available'
    with FakeNomad(lambda request: Reply(status=404, body=text)) as server:
        with _client(server.address) as client, pytest.raises(NomadNotFoundError, match="not started yet") as caught:
            list(client.stream("/v1/client/fs/logs/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", {"task": "web"}))
    assert caught.value.status == 404 and caught.value.nomad_message == text
    assert caught.value.address == server.address


def test_a_body_with_a_content_length_is_streamed_in_bounded_chunks():
    """requests' chunk_size=None would hand over a Content-Length body in one piece (a whole fetched file)."""
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import STREAM_CHUNK_BYTES
    from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import FakeNomad, Reply

    text = "x" * (3 * STREAM_CHUNK_BYTES + 5)
    with FakeNomad(lambda request: Reply(body=text, content_type="application/octet-stream")) as server:
        with _client(server.address) as client:
            sizes = [len(chunk) for chunk in client.stream("/v1/client/fs/cat/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", {"path": "alloc/big"})]
    assert sum(sizes) == len(text) and max(sizes) <= STREAM_CHUNK_BYTES


def test_copy_file_writes_nothing_past_the_size_stat_reported():
    class Endless:
        def stream(self, path, params=None, timeout=None):
            while True:
                yield b"x" * 1000

    written = io.BytesIO()
    with pytest.raises(_alloc_files.AllocPathError, match="more than the 2500 bytes Nomad's stat reported"):
        _alloc_files.copy_file(Endless(), "0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", "f", written, 2500, hashlib.sha1())
    assert len(written.getvalue()) == 2000


class _Chunks:
    def __init__(self, chunks):
        self.chunks = chunks

    def stream(self, path, params=None, timeout=None):
        yield from self.chunks


def test_copy_file_writes_and_hashes_every_chunk_in_order():
    chunks = [bytes([number]) * (1000 + number) for number in range(40)]
    written, digest = io.BytesIO(), hashlib.sha1()
    size = _alloc_files.copy_file(_Chunks(chunks), "0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", "f", written,
                                  sum(map(len, chunks)), digest)
    assert written.getvalue() == b"".join(chunks)
    assert size == len(written.getvalue()) and digest.hexdigest() == hashlib.sha1(b"".join(chunks)).hexdigest()


def test_copy_file_stops_at_a_failed_write_and_raises_it():
    class FullDisk(io.BytesIO):
        def write(self, data):
            if self.tell() >= 3000:
                raise OSError(28, "No space left on device")
            return super().write(data)

    chunks = [b"x" * 1000] * 50
    written = FullDisk()
    with pytest.raises(OSError, match="No space left on device"):
        _alloc_files.copy_file(_Chunks(chunks), "0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", "f", written, 50000,
                               hashlib.sha1())
    assert len(written.getvalue()) == 3000


def test_follow_ends_at_its_deadline_even_when_only_whitespace_arrives():
    consumed = []

    class Chatty:
        def stream(self, path, params=None, timeout=None):
            for _chunk in range(10000):
                consumed.append(1)
                yield b" "

    follow = _fs.Follow(time.monotonic() - 1, LineMatcher(None), lambda: False)
    _fs.follow_log(Chatty(), "0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", "web", "stdout", 10, TailBuffer(100), follow)
    assert len(consumed) == 1
