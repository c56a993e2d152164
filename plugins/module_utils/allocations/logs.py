# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where logs are decoded: Nomad's log stream (/v1/client/fs/logs) read through the one decoder of its streamed
frames, tailed from the end, or followed with a deadline until a pattern or the task's end.

Nomad streams concatenated JSON objects `{"Data": <base64>, "File": ..., "Offset": n}` (keys in any order, any
absent), `{}` heartbeats every second, and `FileEvent` frames ("file truncated", "file deleted"). Objects are split
anywhere across reads.  An error after the first frame is appended as raw text (no delimiter), and a broken
connection ends the body silently, so both must be told apart from data here.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import read_allocation, task_state
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line

# A frame holds at most 64 KiB of data (base64: 4/3 of it) plus its keys; anything longer is not a frame.
MAX_FRAME_CHARS = 256 * 1024
BYTES_PER_LINE_GUESS = 120
LOG_TYPES = ("stdout", "stderr")


class NomadStreamError(NomadError):
    """The stream carried an error text instead of frames, or ended in the middle of a frame."""


class Frame:
    __slots__ = ("data", "file", "offset", "event")

    def __init__(self, data=b"", file=None, offset=None, event=None):
        self.data = data
        self.file = file
        self.offset = offset
        self.event = event

    @property
    def is_heartbeat(self):
        return not self.data and self.file is None and self.event is None

    def __repr__(self):
        return f"Frame(data={self.data!r}, file={self.file!r}, offset={self.offset!r}, event={self.event!r})"


def _frame_from_object(obj, path):
    if not isinstance(obj, dict):
        raise NomadStreamError(f"GET {path}: the stream carried {type(obj).__name__} JSON instead of a frame")
    try:
        data = base64.b64decode(obj.get("Data") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise NomadStreamError(f"GET {path}: a frame's Data is not valid base64") from None
    return Frame(data, obj.get("File"), obj.get("Offset"), obj.get("FileEvent") or None)


class FrameDecoder:
    """Feed raw body chunks, get whole frames.  Memory is bounded by one frame (MAX_FRAME_CHARS)."""

    def __init__(self, path="stream"):
        self.path = path
        self._buffer = ""
        self._json = json.JSONDecoder()

    def feed(self, chunk: bytes) -> list:
        # latin-1 maps every byte to one character, so frame boundaries found in the text are byte boundaries.
        self._buffer += chunk.decode("latin-1")
        frames = []
        while True:
            text = self._buffer.lstrip()
            if not text:
                self._buffer = ""
                return frames
            if text[0] != "{":
                raise self._error_text(text)
            try:
                obj, end = self._json.raw_decode(text)
            except ValueError:
                if len(text) > MAX_FRAME_CHARS:
                    raise self._error_text(text) from None
                self._buffer = text
                return frames
            frames.append(_frame_from_object(obj, self.path))
            self._buffer = text[end:]

    def close(self) -> None:
        """The body ended: anything left over is an error, never data."""
        text = self._buffer.strip()
        self._buffer = ""
        if not text:
            return
        if text[0] == "{":
            raise NomadStreamError(f"GET {self.path}: the stream ended in the middle of a frame (the connection to Nomad broke; retry)")
        raise self._error_text(text)

    def _error_text(self, text):
        message = one_line(text.encode("latin-1").decode("utf-8", "replace"))[:400]
        return NomadStreamError(f"GET {self.path} failed while streaming: {message}", path=self.path, nomad_message=message)


def decode_frames(chunks, path="stream"):
    """Yield the frames of an iterable of raw chunks; raises NomadStreamError for error text or a cut frame."""
    decoder = FrameDecoder(path)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    decoder.close()


# --------------------------------------------------------------------------------------------- pure helpers
def split_lines(data: bytes) -> list:
    """Lines of `data` without their newline; a final line without newline counts, a final newline adds none."""
    if not data:
        return []
    pieces = data.split(b"\n")
    if data.endswith(b"\n"):
        pieces.pop()
    return pieces


def last_lines(data: bytes, count: int, whole: bool):
    """The last `count` lines of `data` (bytes, newlines kept), or None when `data` may start mid-line and does
    not hold enough lines to be sure (`whole` = data starts at the beginning of the log)."""
    lines = split_lines(data)
    if len(lines) <= count and not whole:
        return None
    if len(lines) <= count:
        return data
    keep = lines[-count:]
    text = b"\n".join(keep)
    return text + b"\n" if data.endswith(b"\n") else text


class LineMatcher:
    """Checks each complete line as bytes arrive against a compiled regex."""

    def __init__(self, pattern):
        self.pattern = pattern
        self._partial = b""
        self.matched = None

    def feed(self, data: bytes) -> bool:
        if self.pattern is None or self.matched is not None:
            return self.matched is not None
        pieces = (self._partial + data).split(b"\n")
        self._partial = pieces.pop()[-MAX_FRAME_CHARS:]
        for line in pieces:
            text = line.decode("utf-8", "replace")
            if self.pattern.search(text):
                self.matched = text
                return True
        return False


class TailBuffer:
    """Keeps the last `limit` bytes received and whether any were dropped."""

    def __init__(self, limit):
        self.limit = limit
        self.data = b""
        self.truncated = False

    def add(self, data: bytes):
        self.data += data
        if len(self.data) > self.limit:
            self.data = self.data[-self.limit:]
            self.truncated = True


# --------------------------------------------------------------------------------------------- requests
def logs_path(alloc_id):
    return f"/v1/client/fs/logs/{alloc_id}"


def read_log_window(client, alloc_id, task, log_type, offset, timeout=None) -> bytes:
    """The last `offset` bytes of a task's log (across rotated files), without following."""
    path = logs_path(alloc_id)
    params = dict(task=task, type=log_type, origin="end", offset=max(int(offset), 1), follow=False)
    chunks = client.stream(path, params, timeout=timeout)
    return b"".join(frame.data for frame in decode_frames(chunks, path))


def tail_log(client, alloc_id, task, log_type, tail_lines=None, tail_bytes=None, max_bytes=1048576):
    """(data, truncated): the end of a log, reading from the end and widening the window only as needed."""
    if tail_bytes is not None:
        window = min(tail_bytes, max_bytes)
        data = read_log_window(client, alloc_id, task, log_type, window)
        return data[-window:], window < tail_bytes and len(data) >= window
    if tail_lines is None:
        data = read_log_window(client, alloc_id, task, log_type, max_bytes + 1)
        return data[-max_bytes:], len(data) > max_bytes
    window = max(tail_lines, 1) * BYTES_PER_LINE_GUESS
    while True:
        capped = min(window, max_bytes + 1)
        data = read_log_window(client, alloc_id, task, log_type, capped)
        whole = len(data) < capped
        lines = last_lines(data, tail_lines, whole)
        if lines is not None:
            return lines[-max_bytes:], len(lines) > max_bytes
        if capped > max_bytes:
            return data[-max_bytes:], True
        window *= 4


class Follow:
    """State shared by the followed streams of one allocation: deadline, stop flag, until matcher."""

    def __init__(self, deadline, matcher, task_finished):
        self.deadline = deadline
        self.matcher = matcher
        self.task_finished = task_finished  # callable: True once the task is dead (rate-limited by the caller)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.finished = False

    def remaining(self):
        return self.deadline - time.monotonic()


def until_deadline(chunks, follow):
    """The raw chunks of a followed stream until the deadline passed or the follow was stopped, checked on every
    chunk: heartbeats and whitespace count, so an endpoint that keeps talking cannot hold the follow open."""
    for chunk in chunks:
        if follow.stop.is_set() or follow.remaining() <= 0:
            return
        yield chunk


def follow_log(client, alloc_id, task, log_type, start_offset, buffer, follow):
    """Follow one log into `buffer` until `until` matched, the task finished, or the deadline passed."""
    path = logs_path(alloc_id)
    params = dict(task=task, type=log_type, origin="end", offset=max(int(start_offset), 1), follow=True)
    finished_seen = False
    read_timeout = max(follow.remaining(), 0) + 5
    for frame in decode_frames(until_deadline(client.stream(path, params, timeout=read_timeout), follow), path):
        if frame.data:
            buffer.add(frame.data)
            with follow.lock:
                if follow.matcher.feed(frame.data):
                    follow.stop.set()
        if follow.stop.is_set() or follow.remaining() <= 0:
            return
        if frame.is_heartbeat:
            # A heartbeat means Nomad has sent all it had; after the task ended, nothing more will come.
            if finished_seen:
                follow.finished = True
                return
            finished_seen = follow.task_finished()
        if frame.event == "file deleted":
            return


# --------------------------------------------------------------------------------------------- logs of one allocation
class LogsRequest:
    """What nomad_alloc_logs was asked, checked once before any request."""

    def __init__(self, log_types, tail_lines=None, tail_bytes=None, follow=False, follow_timeout=60, until=None,
                 max_bytes=1048576):
        self.log_types = log_types
        self.tail_lines = tail_lines
        self.tail_bytes = tail_bytes
        self.follow = follow or until is not None
        self.follow_timeout = follow_timeout
        self.until = until
        self.max_bytes = max_bytes

    def start_window(self):
        """Bytes back from the end where a followed stream starts."""
        if self.tail_bytes is not None:
            return min(self.tail_bytes, self.max_bytes)
        if self.tail_lines is not None:
            return min(self.tail_lines * BYTES_PER_LINE_GUESS * 4, self.max_bytes)
        return self.max_bytes


class LogsResult:
    def __init__(self):
        self.data = {}
        self.truncated = False
        self.matched = None
        self.task_finished = False


def task_is_dead(client, alloc_id, task, every=1.0, namespace=None):
    """A callable telling whether the task has finished, asking Nomad at most once per `every` seconds."""
    state = {"next": 0.0, "dead": False}

    def check():
        now = time.monotonic()
        if not state["dead"] and now >= state["next"]:
            state["next"] = now + every
            allocation = read_allocation(client, alloc_id, namespace=namespace)
            state["dead"] = task_state(allocation, task).get("State") == "dead"
        return state["dead"]

    return check


def read_logs(client, alloc_id, task, request: LogsRequest, namespace=None) -> LogsResult:
    """The logs of one task, as asked: tailed, or followed until `until`, the deadline or the task's end
    (read from the allocation in `namespace`, else the options')."""
    result = LogsResult()
    if not request.follow:
        for log_type in request.log_types:
            data, truncated = tail_log(client, alloc_id, task, log_type, request.tail_lines, request.tail_bytes,
                                       request.max_bytes)
            result.data[log_type] = data
            result.truncated = result.truncated or truncated
        return result
    return _follow_logs(client, alloc_id, task, request, result, namespace)


def _follow_logs(client, alloc_id, task, request, result, namespace):
    follow = Follow(time.monotonic() + request.follow_timeout, LineMatcher(request.until),
                    task_is_dead(client, alloc_id, task, namespace=namespace))
    buffers = {log_type: TailBuffer(request.max_bytes) for log_type in request.log_types}
    errors = []

    def run(log_type):
        try:
            follow_log(client, alloc_id, task, log_type, request.start_window(), buffers[log_type], follow)
        except NomadError as error:
            errors.append(error)
            follow.stop.set()

    threads = [threading.Thread(target=run, args=(log_type,), daemon=True) for log_type in request.log_types[1:]]
    for thread in threads:
        thread.start()
    run(request.log_types[0])
    for thread in threads:
        thread.join(max(follow.remaining(), 0) + 10)
    if errors:
        raise errors[0]
    for log_type, buffer in buffers.items():
        data = buffer.data
        if request.tail_lines is not None:
            data = last_lines(data, request.tail_lines, whole=True)
        result.data[log_type] = data
        result.truncated = result.truncated or buffer.truncated
    result.matched = follow.matcher.matched
    result.task_finished = follow.finished
    return result
