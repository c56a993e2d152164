# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Exec into a Nomad task over the allocation exec WebSocket (websocket-client).

Private to the collection. The pure pieces (argv building, query parameters, frame decoding, task
selection, result shaping) are separate from ExecSession so that they can be tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
import ssl
import struct
import threading
import time
import traceback
import typing as t

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import (
    TERMINAL_CLIENT_STATUSES,
    allocation_label,
    read_allocation,
    task_names,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.concurrency import concurrent_map
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import NomadOptionError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_ARGUMENT_SPEC, SELECTOR_KEYS
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line, short_id

try:
    import websocket

    HAS_WEBSOCKET = True
    WEBSOCKET_IMPORT_ERROR = None
except ImportError:
    HAS_WEBSOCKET = False
    WEBSOCKET_IMPORT_ERROR = traceback.format_exc()

if HAS_WEBSOCKET:

    class _ExecWebSocket(websocket.WebSocket):
        """websocket-client's WebSocket, except that answering the server's close frame may fail.

        recv_data() answers a close frame before returning it; when the server has already dropped the
        connection (aiohttp and Nomad may), that answer fails and would hide the close code and reason.
        """

        def send_close(self, status=1000, reason=b""):
            try:
                super().send_close(status, reason)
            except (websocket.WebSocketConnectionClosedException, OSError):
                pass

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DEFAULT_EXEC_TIMEOUT = 300
# The exec action keeps at most this much of each of stdout and stderr in memory (the end of it): a command or a
# broken endpoint that sends output forever must not exhaust the controller's memory.
DEFAULT_MAX_OUTPUT_BYTES = 128 * 1024 * 1024
HEARTBEAT_INTERVAL = 10.0
# Without stdin, how long the server must have sent nothing before the command's standard input is closed: a
# command that exits before that gets no frame from us at all. Since Nomad 1.8 the server closes the TCP
# connection right after the exited frame, and a frame that reaches it after that makes its kernel reset the
# connection, which drops every byte of output (and the exited frame) that our side has not read yet.
STDIN_CLOSE_DELAY = 0.05
STDIN_CHUNK_SIZE = 32 * 1024
# After the exited frame, how long to wait for the server's close frame before dropping the socket.
CLOSE_GRACE = 2.0
TOKEN_HEADER = "x-nomad-token"

_OPCODE_TEXT = 0x1
_OPCODE_BINARY = 0x2
_OPCODE_CLOSE = 0x8
_NO_STATUS_CODE = 1005

OUTPUT_ENCODINGS = ("text", "base64")


class ExecError(OperationFailed):
    """An exec session could not run the command to its end. str() is one line, never the token.

    `partial` holds the output received before the failure (an ExecOutcome whose exit_code is None).
    """

    partial = None


class ExecArgumentError(ExecError, NomadOptionError):
    """The arguments cannot describe a command to run (an input check, so also a NomadOptionError)."""


class ExecTimeoutError(ExecError):
    """The command did not finish within the overall timeout."""


class ExecClosedError(ExecError):
    """The server ended the session before the exited frame."""


class ExecRequest(t.NamedTuple):
    """What to run, where, and how."""

    allocation_id: str
    task: str
    argv: list
    stdin: bytes | None = None
    tty: bool = False
    tty_size: tuple | None = None  # (height, width)
    ws_handshake: bool = False
    timeout: float = float(DEFAULT_EXEC_TIMEOUT)
    namespace: str | None = None  # the allocation's; None keeps the client's
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES  # per stream, kept in memory (the end of the output)


class ExecOutcome(t.NamedTuple):
    """Raw result of a command; exit_code is None when it did not finish."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    truncated: bool = False  # stdout or stderr lost its beginning to max_output_bytes


# The exec action's own options; the connection options (CONNECTION_ARGUMENT_SPEC) come on top, unchanged:
# the connection option `timeout` is the limit of each HTTP request, `command_timeout` the command's deadline.
EXEC_ARGUMENT_SPEC = dict(
    SELECTOR_ARGUMENT_SPEC,
    parallelism=dict(type="int", default=10),
    task=dict(type="str"),
    command=dict(type="str"),
    argv=dict(type="list", elements="str"),
    stdin=dict(type="str"),
    stdin_add_newline=dict(type="bool", default=True),
    tty=dict(type="bool", default=False),
    tty_size=dict(
        type="dict",
        options=dict(height=dict(type="int", required=True), width=dict(type="int", required=True)),
    ),
    command_timeout=dict(type="float", default=DEFAULT_EXEC_TIMEOUT),
    max_output_bytes=dict(type="int", default=DEFAULT_MAX_OUTPUT_BYTES),
    output_encoding=dict(type="str", default="text", choices=list(OUTPUT_ENCODINGS)),
    output_lines=dict(type="bool", default=True),
    strip_empty_ends=dict(type="bool", default=True),
    ws_handshake=dict(type="bool", default=False),
)
EXEC_MUTUALLY_EXCLUSIVE = [("command", "argv")]
EXEC_REQUIRED_ONE_OF = [("command", "argv"), SELECTOR_KEYS]


# ---------------------------------------------------------------------------------------------
# Pure pieces
# ---------------------------------------------------------------------------------------------


def build_argv(command: str | None, argv: Sequence[str] | None) -> list:
    """One non-empty argv from either `command` (split like a POSIX shell) or `argv`."""
    if command is not None and argv is not None:
        raise ExecArgumentError("parameters are mutually exclusive: command|argv")
    if command is not None:
        try:
            words = shlex.split(command)
        except ValueError as error:
            raise ExecArgumentError(f"cannot split command into words: {error}") from None
        if not words:
            raise ExecArgumentError("command must not be empty")
        return words
    if argv is None:
        raise ExecArgumentError("one of the following is required: command, argv")
    words = [str(word) for word in argv]
    if not words:
        raise ExecArgumentError("argv must not be empty")
    if not words[0]:
        raise ExecArgumentError("argv[0] (the program to run) must not be empty")
    return words


def stdin_bytes(stdin: str | None, add_newline: bool) -> bytes | None:
    """The bytes to feed the command, or None for no input (the stream is closed right away)."""
    if stdin is None:
        return None
    data = stdin.encode("utf-8", errors="surrogateescape")
    if add_newline:
        data += b"\n"
    return data


def tty_size_of(tty: bool, tty_size: Mapping | None) -> tuple | None:
    """(height, width) from the tty_size option, checked."""
    if tty_size is None:
        return None
    if not tty:
        raise ExecArgumentError("tty_size needs tty=true")
    height, width = tty_size.get("height"), tty_size.get("width")
    if height is None or width is None or height <= 0 or width <= 0:
        raise ExecArgumentError(f"tty_size height and width must be positive integers (got {height}x{width})")
    return height, width


def exec_timeout_of(timeout: float | None) -> float:
    if timeout is None:
        return float(DEFAULT_EXEC_TIMEOUT)
    if timeout <= 0:
        raise ExecArgumentError(f"command_timeout must be a positive number of seconds (got {format_seconds(timeout)})")
    return float(timeout)


def exec_request_from_params(params: Mapping, allocation_id: str, task: str) -> ExecRequest:
    """An ExecRequest from the validated action parameters (argv, stdin, tty checked here)."""
    tty = bool(params.get("tty"))
    return ExecRequest(
        allocation_id=allocation_id,
        task=task,
        argv=build_argv(params.get("command"), params.get("argv")),
        stdin=stdin_bytes(params.get("stdin"), params.get("stdin_add_newline", True)),
        tty=tty,
        tty_size=tty_size_of(tty, params.get("tty_size")),
        ws_handshake=bool(params.get("ws_handshake")),
        timeout=exec_timeout_of(params.get("command_timeout")),
        max_output_bytes=max_output_bytes_of(params.get("max_output_bytes")),
    )


def max_output_bytes_of(value: int | None) -> int:
    if value is None:
        return DEFAULT_MAX_OUTPUT_BYTES
    if value < 1:
        raise ExecArgumentError(f"max_output_bytes must be 1 or more (got {value})")
    return int(value)


def exec_path(allocation_id: str) -> str:
    return f"/v1/client/allocation/{allocation_id}/exec"


def exec_query(request: ExecRequest) -> dict:
    """Query parameters of the exec upgrade request."""
    query = {
        "task": request.task,
        "command": json.dumps(request.argv, separators=(",", ":")),
        "tty": "true" if request.tty else "false",
        "ws_handshake": "true" if request.ws_handshake else "false",
    }
    if request.namespace:
        query["namespace"] = request.namespace
    return query


def split_token_header(headers: Mapping[str, str] | Sequence[str], take_token: bool) -> tuple:
    """Headers for the upgrade request, and the token when it must travel in the handshake frame.

    Accepts a mapping or websocket-client's list of "Name: value" lines; returns a list of lines.
    """
    if hasattr(headers, "items"):
        pairs = list(headers.items())
    else:
        pairs = [tuple(part.strip() for part in line.split(":", 1)) for line in headers]
    token = ""
    lines = []
    for name, value in pairs:
        if take_token and name.lower() == TOKEN_HEADER:
            token = value
            continue
        lines.append(f"{name}: {value}")
    return lines, token


def handshake_frame(token: str) -> str:
    return json.dumps({"version": 1, "auth_token": token})


def tty_size_frame(height: int, width: int) -> str:
    return json.dumps({"tty_size": {"height": height, "width": width}})


STDIN_CLOSE_FRAME = '{"stdin":{"close":true}}'
HEARTBEAT_FRAME = "{}"


def stdin_frames(data: bytes, chunk_size: int = STDIN_CHUNK_SIZE) -> t.Iterator[str]:
    """Data frames for `data` in chunks, then the close frame (always, so that `cat` sees EOF)."""
    for start in range(0, len(data), chunk_size):
        encoded = base64.b64encode(data[start:start + chunk_size]).decode("ascii")
        yield '{"stdin":{"data":"' + encoded + '"}}'
    yield STDIN_CLOSE_FRAME


_STDOUT_DATA_PREFIX = b'{"stdout":{"data":"'
_STDERR_DATA_PREFIX = b'{"stderr":{"data":"'
_DATA_PREFIX_LENGTH = len(_STDOUT_DATA_PREFIX)
_DATA_SUFFIX = b'"}}'
_DATA_SUFFIX_LENGTH = len(_DATA_SUFFIX)


def decode_base64(data: bytes | str) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError) as error:
        raise ExecError(f"exec session sent output that is not base64: {error}") from None


class TailChunks:
    """The last `limit` bytes of a stream, appended chunk by chunk; `truncated` once more than that arrived."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list = []
        self.size = 0
        self.truncated = False

    def append(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > 2 * self.limit:
            self._compact()

    def _compact(self) -> None:
        kept = b"".join(self.chunks)[-self.limit:]
        self.truncated = True
        self.chunks = [kept]
        self.size = len(kept)

    def data(self) -> bytes:
        joined = b"".join(self.chunks)
        if len(joined) > self.limit:
            self.truncated = True
            return joined[-self.limit:]
        return joined

    def __bool__(self) -> bool:
        return bool(self.size)


class OutputCollector:
    """Collects server frames; `exit_code` is set once the exited frame arrived. Keeps the last `max_bytes` of
    each stream."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        self.stdout = TailChunks(max_bytes)
        self.stderr = TailChunks(max_bytes)
        self.exit_code: int | None = None

    def feed(self, payload: bytes) -> None:
        """Take one server text frame (JSON)."""
        pieces, exit_code = output_of_frame(payload)
        for stream, data in pieces:
            (self.stdout if stream == "stdout" else self.stderr).append(data)
        if exit_code is not None:
            self.exit_code = exit_code

    def outcome(self) -> ExecOutcome:
        stdout, stderr = self.stdout.data(), self.stderr.data()
        return ExecOutcome(self.exit_code, stdout, stderr, self.stdout.truncated or self.stderr.truncated)

    @property
    def has_output(self) -> bool:
        return bool(self.stdout or self.stderr)


def exit_code_of(message: Mapping) -> int:
    """Exit code of an exited frame; Nomad omits exit_code (omitempty) when it is 0."""
    result = message.get("result") or {}
    code = result.get("exit_code", 0) if isinstance(result, dict) else 0
    try:
        return int(code or 0)
    except (TypeError, ValueError):
        raise ExecError(f"exec session sent an exit code that is not a number: {code!r}") from None


def parse_close_payload(payload: bytes) -> tuple:
    """(code, reason) of a WebSocket close frame payload."""
    if len(payload) < 2:
        return _NO_STATUS_CODE, ""
    code = struct.unpack("!H", payload[:2])[0]
    return code, payload[2:].decode("utf-8", errors="replace")


def closed_before_exit_message(code: int | None, reason: str) -> str:
    if code is None:
        detail = "connection dropped without a close frame"
    elif reason.endswith("Permission denied"):
        detail = f"close code {code}: {one_line(reason)}; the token needs alloc-exec, and alloc-node-exec for " \
            "drivers without filesystem isolation such as raw_exec, in the allocation's namespace"
    elif reason:
        detail = f"close code {code}: {one_line(reason)}"
    else:
        detail = f"close code {code}"
    return f"exec session closed before the command exited ({detail})"


def choose_task(allocation: Mapping, task: str | None) -> str:
    """The task to exec into: the given one (checked), else the group's only task."""
    names = [name for name in task_names(allocation) if name]
    alloc = short_id(allocation.get("ID"))
    if task:
        if names and task not in names:
            raise ExecArgumentError(f"allocation {alloc} has no task named {task!r}; its tasks are: {', '.join(names)}")
        return task
    if len(names) == 1:
        return names[0]
    if not names:
        raise ExecArgumentError(f"allocation {alloc} reports no tasks; set task")
    raise ExecArgumentError(f"allocation {alloc} has several tasks ({', '.join(names)}); set task to one of them")


def check_task_runs(allocation: Mapping, task: str) -> None:
    """Fail early, like the server would, when the task is known not to run."""
    state = ((allocation.get("TaskStates") or {}).get(task) or {}).get("State")
    if state == "dead":
        raise ExecError(f"task {task!r} of allocation {short_id(allocation.get('ID'))} is not running (dead)")


def strip_trailing_newlines(text: str) -> str:
    return text.rstrip("\r\n")


# Empty *_lines where no lines are wanted: ansible-core 2.21 splits the stdout of every result that has no
# stdout_lines itself, which would copy a large output (or one long base64 line) a second time.
NO_LINES = {"stdout_lines": [], "stderr_lines": []}


def shape_output(outcome: ExecOutcome, output_encoding: str, strip_empty_ends: bool, output_lines: bool = True) -> dict:
    """rc/stdout/stderr and *_lines (empty in base64 mode or without `output_lines`) as returned to the user;
    no rc for unfinished commands."""
    shaped = {} if outcome.exit_code is None else {"rc": outcome.exit_code}
    shaped["truncated"] = outcome.truncated
    if output_encoding == "base64":
        shaped.update(
            stdout=base64.b64encode(outcome.stdout).decode("ascii"),
            stderr=base64.b64encode(outcome.stderr).decode("ascii"),
            **NO_LINES,
        )
        return shaped
    stdout = outcome.stdout.decode("utf-8", errors="replace")
    stderr = outcome.stderr.decode("utf-8", errors="replace")
    if strip_empty_ends:
        stdout = strip_trailing_newlines(stdout)
        stderr = strip_trailing_newlines(stderr)
    shaped.update(stdout=stdout, stderr=stderr)
    if output_lines:
        shaped.update(stdout_lines=stdout.splitlines(), stderr_lines=stderr.splitlines())
    else:
        shaped.update(NO_LINES)
    return shaped


def netloc_of(url: str) -> str:
    """scheme://host:port of a URL, for messages (no path, no query)."""
    scheme, separator, rest = url.partition("://")
    return scheme + separator + rest.split("/", 1)[0].split("?", 1)[0]


def redirect_status(ws) -> int | None:
    """The status of a redirect that ended the handshake of `ws` (not followed), else None."""
    response = getattr(ws, "handshake_response", None)
    status = getattr(response, "status", None)
    if status is not None and 300 <= int(status) < 400:
        return int(status)
    return None


def redirect_refused_message(status: int, url: str) -> str:
    return (
        f"Nomad answered {status} to the exec request at {netloc_of(url)}: redirects are not followed, so the token "
        "goes nowhere else (set address to the Nomad agent itself)"
    )


def handshake_failure_message(status: int, body: bytes | None) -> str:
    text = one_line((body or b"").decode("utf-8", errors="replace"))
    return f"exec request rejected with HTTP {status}" + (f": {text}" if text else "")


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------


class _ExecTransport:
    """What both exec sessions share: the WebSocket's life from handshake to goodbye, one line for what broke.

    A sender thread writes every client frame (subclasses define `_send_client_frames()`) so that a command
    reading stdin while writing output never deadlocks with us; the calling thread only reads, handing each
    output frame to `_on_output_frame()`, which returns the session's result once the exited frame came. A
    watchdog timer aborts the socket when the session's deadline expires. Subclasses also define `_connect()`
    and `_timeout_message()`.
    """

    SENDER_THREAD_NAME = "nomad-exec-sender"

    def __init__(self, url: str, headers, sslopt: dict | None, request: ExecRequest,
                 ended: threading.Event | None = None) -> None:
        self.url = url
        self.request = request
        self.sslopt = dict(sslopt or {})
        self.headers, self.handshake_token = split_token_header(headers or {}, request.ws_handshake)
        self._ws = None
        # Set once the session is over (or being aborted); a sender or a source that waits can watch it.
        self._stop = ended if ended is not None else threading.Event()
        self._timed_out = threading.Event()
        self._last_frame_at = time.monotonic()

    def abort(self) -> None:
        """End the session from another thread (the reader then fails with ExecClosedError)."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.abort()

    def _start_watchdog(self, seconds: float | None) -> threading.Timer | None:
        if not seconds:
            return None
        watchdog = threading.Timer(seconds, self._on_deadline)
        watchdog.daemon = True
        watchdog.start()
        return watchdog

    def _on_deadline(self) -> None:
        self._timed_out.set()
        self.abort()

    def _end(self, watchdog: threading.Timer | None) -> None:
        if watchdog is not None:
            watchdog.cancel()
        self._stop.set()
        if self._ws is not None:
            self._ws.shutdown()

    def _run_until_exit(self):
        self._connect()
        self._last_frame_at = time.monotonic()
        if self.request.ws_handshake:
            self._ws.send(handshake_frame(self.handshake_token))
        sender = threading.Thread(target=self._send_client_frames, name=self.SENDER_THREAD_NAME, daemon=True)
        sender.start()
        try:
            result = self._receive_until_exit()
        finally:
            self._stop.set()
            sender.join(timeout=CLOSE_GRACE)
        if not sender.is_alive():
            self._close_politely()
        return result

    def _receive_until_exit(self):
        recv_data = self._ws.recv_data
        on_output_frame = self._on_output_frame
        monotonic = time.monotonic
        while True:
            opcode, payload = recv_data()
            self._last_frame_at = monotonic()
            if opcode == _OPCODE_TEXT or opcode == _OPCODE_BINARY:
                result = on_output_frame(payload)
                if result is not None:
                    return result
            elif opcode == _OPCODE_CLOSE:
                raise self._closed_before_exit(payload)

    def _closed_before_exit(self, payload: bytes) -> ExecError:
        if self._timed_out.is_set():
            return ExecTimeoutError(self._timeout_message())
        code, reason = parse_close_payload(payload)
        return ExecClosedError(closed_before_exit_message(code, reason))

    def _send_heartbeats_while_idle(self, ws) -> None:
        """A heartbeat after each HEARTBEAT_INTERVAL in which the server sent nothing, until the session ends.

        Output in flight keeps the connection alive by itself. And since Nomad 1.8 the server closes the TCP
        connection right after the exited frame: a heartbeat that reaches it then makes its kernel reset the
        connection and drop the output (and the exited frame) it has not delivered yet."""
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            if time.monotonic() - self._last_frame_at >= HEARTBEAT_INTERVAL:
                ws.send(HEARTBEAT_FRAME)

    def _exited_before_stdin_close(self) -> bool:
        """Without input, stdin is closed once no output frame has arrived for STDIN_CLOSE_DELAY (a command that
        waits for the end of its input is silent); True when the session ended first, and nothing was sent that
        could reach Nomad after its close. Output still arriving means the command runs, or we are behind it."""
        while True:
            silent_for = time.monotonic() - self._last_frame_at
            if silent_for >= STDIN_CLOSE_DELAY:
                return False
            if self._stop.wait(STDIN_CLOSE_DELAY - silent_for):
                return True

    def _close_politely(self) -> None:
        """Answer/await the server's close after the exited frame (Nomad sends 1000 right away)."""
        try:
            self._ws.close(timeout=CLOSE_GRACE)
        except (websocket.WebSocketException, OSError):
            # The command has exited and its result is complete; a failed goodbye changes nothing.
            return

    def _open_websocket(self, timeout: float, timeout_message: str):
        ws = _ExecWebSocket(sslopt=self.sslopt, skip_utf8_validation=True, enable_multithread=True)
        ws.settimeout(timeout)
        try:
            # redirect_limit=0: websocket-client would otherwise follow a 3xx to any Location (also from wss:// to
            # ws://) and send the token and the Basic credentials there again.
            ws.connect(self.url, header=self.headers, suppress_origin=True, redirect_limit=0)
        except websocket.WebSocketBadStatusException as error:
            if 300 <= error.status_code < 400:
                raise ExecError(redirect_refused_message(error.status_code, self.url)) from None
            raise ExecError(handshake_failure_message(error.status_code, error.resp_body)) from None
        except websocket.WebSocketTimeoutException:
            raise ExecTimeoutError(timeout_message) from None
        except ssl.SSLError as error:
            raise ExecError(tls_failure_message(netloc_of(self.url), error)) from None
        except websocket.WebSocketAddressException as error:
            raise ExecError(f"cannot resolve {netloc_of(self.url)}: {one_line(str(error))}") from None
        except websocket.WebSocketException:
            status = redirect_status(ws)
            if status is None:
                raise
            raise ExecError(redirect_refused_message(status, self.url)) from None
        except OSError as error:
            if self._timed_out.is_set():
                raise ExecTimeoutError(self._timeout_message()) from None
            raise ExecError(f"cannot connect to {netloc_of(self.url)}: {os_reason(error)}") from None
        # Reads block until data, the close frame, or the watchdog's abort; the deadline is the watchdog's job.
        ws.settimeout(None)
        if self._timed_out.is_set():
            raise ExecTimeoutError(self._timeout_message())
        return ws

    def _transport_error(self, error: Exception) -> ExecError:
        if self._timed_out.is_set():
            return ExecTimeoutError(self._timeout_message())
        if isinstance(error, ssl.SSLError):
            return ExecError(tls_failure_message(netloc_of(self.url), error))
        if isinstance(error, (websocket.WebSocketConnectionClosedException, OSError)):
            return ExecClosedError(closed_before_exit_message(None, ""))
        return ExecError(f"exec session failed: {one_line(str(error)) or type(error).__name__}")


class ExecSession(_ExecTransport):
    """One exec WebSocket session: connect, feed stdin, collect output until the exited frame.

    The sender writes the tty size, the stdin chunks and the stdin close frame (without stdin, only once no
    output has arrived for STDIN_CLOSE_DELAY), then a heartbeat after every 10 s without output;
    `request.timeout` bounds the whole session.
    """

    def __init__(self, url: str, headers, sslopt: dict | None, request: ExecRequest) -> None:
        super().__init__(url, headers, sslopt, request)
        self._collector = OutputCollector(request.max_output_bytes)
        self._deadline = 0.0

    def run(self) -> ExecOutcome:
        self._deadline = time.monotonic() + self.request.timeout
        watchdog = self._start_watchdog(self.request.timeout)
        try:
            return self._run_until_exit()
        except ExecError as error:
            raise self._with_partial_output(error)
        except websocket.WebSocketException as error:
            raise self._with_partial_output(self._transport_error(error)) from None
        except OSError as error:  # includes ssl.SSLError
            raise self._with_partial_output(self._transport_error(error)) from None
        finally:
            self._end(watchdog)

    def _connect(self) -> None:
        self._ws = self._open_websocket(max(self._deadline - time.monotonic(), 0.001), self._timeout_message())

    def _timeout_message(self) -> str:
        return f"command did not finish within {format_seconds(self.request.timeout)} s"

    def _send_client_frames(self) -> None:
        ws = self._ws
        try:
            if self.request.tty and self.request.tty_size:
                height, width = self.request.tty_size
                ws.send(tty_size_frame(height, width))
            stdin = self.request.stdin or b""
            if not stdin and self._exited_before_stdin_close():
                return
            for frame in stdin_frames(stdin):
                if self._stop.is_set():
                    return
                ws.send(frame)
            self._send_heartbeats_while_idle(ws)
        except (websocket.WebSocketException, OSError):
            # A broken connection ends the reader too, which reports it (or already has the exit code, when
            # the command exited without reading all of its input).
            return

    def _on_output_frame(self, payload: bytes) -> ExecOutcome | None:
        collector = self._collector
        collector.feed(payload)
        return collector.outcome() if collector.exit_code is not None else None

    def _with_partial_output(self, error: ExecError) -> ExecError:
        if self._collector.has_output:
            error.partial = self._collector.outcome()
        return error


def tls_failure_message(where: str, error: ssl.SSLError) -> str:
    reason = one_line(getattr(error, "verify_message", None) or getattr(error, "reason", None) or str(error))
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS verification failed for {where}: {reason} (set ca_cert or ca_path to the CA that signed Nomad's "
            "certificate, tls_server_name if the certificate names another host, or validate_certs=false)"
        )
    return f"TLS handshake with {where} failed: {reason}"


def os_reason(error: OSError) -> str:
    return one_line(error.strerror or str(error) or type(error).__name__)


def format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def run_exec(client, request: ExecRequest) -> ExecOutcome:
    """Run `request` through `client` (a NomadClient: same address, TLS settings and token)."""
    url, headers, sslopt = client.websocket_target(exec_path(request.allocation_id), exec_query(request))
    return ExecSession(url, headers, sslopt, request).run()


# ---------------------------------------------------------------------------------------------
# Streaming sessions: stdin from a source, output to sinks as it arrives (the connection plugin)
# ---------------------------------------------------------------------------------------------


def output_of_frame(payload: bytes) -> tuple:
    """((stream, data), ...) and the exit code (None unless exited) of one server text frame."""
    if payload.endswith(_DATA_SUFFIX):
        stream = "stdout" if payload.startswith(_STDOUT_DATA_PREFIX) else \
            "stderr" if payload.startswith(_STDERR_DATA_PREFIX) else None
        if stream is not None:
            data = payload[_DATA_PREFIX_LENGTH:-_DATA_SUFFIX_LENGTH]
            if b'"' not in data and b"\\" not in data:
                return ((stream, decode_base64(data)),), None
    try:
        message = json.loads(payload)
    except ValueError as error:
        raise ExecError(f"exec session sent a frame that is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ExecError("exec session sent a frame that is not a JSON object")
    pieces = []
    for stream in ("stdout", "stderr"):
        operation = message.get(stream)
        if isinstance(operation, dict) and operation.get("data"):
            pieces.append((stream, decode_base64(operation["data"])))
    return tuple(pieces), exit_code_of(message) if message.get("exited") else None


def stdin_data_frame(chunk: bytes) -> str:
    return '{"stdin":{"data":"' + base64.b64encode(chunk).decode("ascii") + '"}}'


class ExecSourceError(ExecError):
    """Reading the data to send on stdin failed (for example a local file); `cause` is the original error."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


class StreamingExecSession(_ExecTransport):
    """One exec session that streams both ways, for transfers of any size in bounded memory.

    `stdin` is an iterable of byte chunks (read lazily by a sender thread, sent in frames of at most
    STDIN_CHUNK_SIZE bytes, then the close frame, which without input waits for STDIN_CLOSE_DELAY of silence;
    with `reads_stdin=False`, for a command that reads no input, nothing is sent but heartbeats); `on_stdout` /
    `on_stderr` receive each output chunk as its frame arrives, in the calling thread. run() returns the exit
    code, or raises ExecError (ExecClosedError when the session ends before the exited frame, ExecTimeoutError
    after `deadline` seconds, ExecSourceError when reading the stdin source failed, or the ExecError the source
    raised itself). An exception raised by a sink ends the session and propagates unchanged.
    """

    SENDER_THREAD_NAME = "nomad-exec-stream-sender"

    def __init__(self, url: str, headers, sslopt: dict | None, request: ExecRequest, *,
                 stdin: t.Iterable[bytes] | None = None, on_stdout=None, on_stderr=None,
                 connect_timeout: float = 30.0, deadline: float | None = None,
                 ended: threading.Event | None = None, reads_stdin: bool = True) -> None:
        super().__init__(url, headers, sslopt, request, ended=ended)
        if stdin is not None and not reads_stdin:
            raise ValueError("stdin given for a command that reads none")
        self.stdin = stdin if stdin is not None else ()
        self.reads_stdin = reads_stdin
        self.sinks = {"stdout": on_stdout or _discard, "stderr": on_stderr or _discard}
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self._source_error: ExecError | None = None

    def run(self) -> int:
        watchdog = self._start_watchdog(self.deadline)
        try:
            return self._run_until_exit()
        except _SinkFailure as failure:
            raise failure.cause from None
        except ExecError as error:
            raise (self._source_error or error) from None
        except (websocket.WebSocketException, OSError) as error:  # OSError includes ssl.SSLError
            raise (self._source_error or self._transport_error(error)) from None
        finally:
            self._end(watchdog)

    def _connect(self) -> None:
        timeout = min(self.connect_timeout, self.deadline) if self.deadline else self.connect_timeout
        self._ws = self._open_websocket(timeout, f"no answer from {netloc_of(self.url)} within {format_seconds(timeout)} s")

    def _timeout_message(self) -> str:
        return f"command did not finish within {format_seconds(self.deadline)} s"

    def _send_client_frames(self) -> None:
        ws = self._ws
        try:
            if self.reads_stdin and not self._send_stdin(ws):
                return
            self._send_heartbeats_while_idle(ws)
        except ExecError as error:  # from the source: ExecSourceError, or its own (a conversation's timeout)
            self._source_error = error
            self.abort()
        except (websocket.WebSocketException, OSError):
            return  # the reader reports the broken connection (or already has the exit code)

    def _send_stdin(self, ws) -> bool:
        """The source's chunks, then the stdin close frame; False when the session ended first."""
        sent_input = False
        for chunk in self._stdin_chunks():
            if self._stop.is_set():
                return False
            ws.send(stdin_data_frame(chunk))
            sent_input = True
        if not sent_input and self._exited_before_stdin_close():
            return False
        ws.send(STDIN_CLOSE_FRAME)
        return True

    def _stdin_chunks(self) -> t.Iterator[bytes]:
        """The source's chunks, cut to frame size; a failing source becomes ExecSourceError."""
        source = iter(self.stdin)
        while True:
            try:
                chunk = next(source)
            except StopIteration:
                return
            except OSError as error:
                raise ExecSourceError(f"cannot read the data to send: {os_reason(error)}", error) from None
            for start in range(0, len(chunk), STDIN_CHUNK_SIZE):
                yield chunk[start:start + STDIN_CHUNK_SIZE]

    def _on_output_frame(self, payload: bytes) -> int | None:
        pieces, exit_code = output_of_frame(payload)
        sinks = self.sinks
        for stream, data in pieces:
            try:
                sinks[stream](data)
            except OSError as error:  # a sink's own failure (a full disk), not the connection's
                raise _SinkFailure(error) from error
        return exit_code


class _SinkFailure(Exception):
    """Carries an OSError raised by an output sink past the transport error handling of run()."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _discard(_data: bytes) -> None:
    return None


def stream_exec(client, request: ExecRequest, **session_options) -> int:
    """Run `request` through `client` as a StreamingExecSession (keyword arguments as its constructor's)."""
    url, headers, sslopt = client.websocket_target(exec_path(request.allocation_id), exec_query(request))
    session_options.setdefault("connect_timeout", client.options.timeout)
    return StreamingExecSession(url, headers, sslopt, request, **session_options).run()


def file_chunks(path: str, chunk_size: int = 256 * 1024) -> t.Iterator[bytes]:
    """The bytes of a local file in chunks, read as they are needed."""
    with open(path, "rb") as stream:
        while True:
            chunk = stream.read(chunk_size)
            if not chunk:
                return
            yield chunk


# ---------------------------------------------------------------------------------------------
# Many allocations
# ---------------------------------------------------------------------------------------------


def is_single_allocation(params: Mapping) -> bool:
    """One ID and no other selector option: the result keeps the one-allocation shape."""
    ids = params.get("id") or []
    return len(ids) == 1 and not any(params.get(key) for key in SELECTOR_KEYS if key != "id")


class AllocationExec(t.NamedTuple):
    """What happened in one allocation: the request run (None when it could not be prepared) and its end."""

    allocation: dict
    request: ExecRequest | None
    outcome: ExecOutcome | None = None
    error: Exception | None = None
    skipped: str | None = None  # why an allocation reached through the selector was left alone

    @property
    def failed(self) -> bool:
        if self.skipped:
            return False
        return self.error is not None or self.outcome is None or self.outcome.exit_code != 0


def prepare_exec(client, allocation: Mapping, base: ExecRequest, task: str | None, explicit: bool) -> AllocationExec:
    """The request for one selected allocation (its task chosen and checked), or the reason it cannot run.

    A finished allocation reached through the selector (not named by `id`) is skipped, not a failure."""
    status = allocation.get("ClientStatus")
    if not explicit and status in TERMINAL_CLIENT_STATUSES:
        return AllocationExec(dict(allocation), None, skipped=f"allocation is {status}; its tasks no longer run")
    try:
        full = read_allocation(client, allocation)
        chosen = choose_task(full, task)
        check_task_runs(full, chosen)
    except (ExecError, NomadOptionError) as error:
        return AllocationExec(dict(allocation), None, error=error)
    request = base._replace(allocation_id=full["ID"], task=chosen, namespace=full.get("Namespace"))
    return AllocationExec(dict(allocation), request)


def exec_in_allocations(client, allocations: Sequence[Mapping], base: ExecRequest, task: str | None,
                        parallelism: int, explicit_ids: Sequence[str] = ()) -> list:
    """Run `base`'s command in every allocation, at most `parallelism` at a time; one AllocationExec each, in order.

    Nomad errors (NomadError) and session errors are kept per allocation; every allocation is tried.
    """
    if parallelism < 1:
        raise NomadOptionError(f"parallelism must be at least 1, got {parallelism}")
    prepared = [prepare_exec(client, allocation, base, task, allocation.get("ID") in explicit_ids)
                for allocation in allocations]

    def run(entry: AllocationExec) -> AllocationExec:
        if entry.request is None:
            return entry
        try:
            return entry._replace(outcome=run_exec(client, entry.request))
        except ExecError as error:
            return entry._replace(outcome=error.partial, error=error)
        except NomadOptionError as error:
            return entry._replace(error=error)

    return concurrent_map(run, prepared, parallelism)


def allocation_exec_result(entry: AllocationExec, **output) -> dict:
    """One entry of the `allocations` result: ID, Name, task, rc/stdout/stderr, and `msg` when it failed."""
    result = {"ID": entry.allocation.get("ID"), "Name": entry.allocation.get("Name"),
              "task": entry.request.task if entry.request else None, "failed": entry.failed}
    if entry.skipped:
        return dict(result, skipped=True, msg=entry.skipped)
    if entry.outcome is not None:
        result.update(shape_output(entry.outcome, **output))
    if entry.error is not None:
        result["msg"] = one_line(entry.error)
    elif entry.failed:
        result["msg"] = "non-zero return code"
    return result


def failures_message(entries: Sequence[AllocationExec]) -> str:
    """`the command failed in 2 of 3 allocations: 5a1f3c2e (web[0]): rc 1; ...`."""
    failed = [entry for entry in entries if entry.failed]
    reasons = []
    for entry in failed:
        label = allocation_label(entry.allocation)
        reason = one_line(entry.error) if entry.error is not None else f"rc {entry.outcome.exit_code}"
        reasons.append(f"{label}: {reason}")
    return f"the command failed in {len(failed)} of {len(entries)} allocations: {'; '.join(reasons)}"
