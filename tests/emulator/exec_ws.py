# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""`GET /v1/client/allocation/{alloc_id}/exec`: Nomad 1.6's exec WebSocket (reference §6) over real processes.

Before the upgrade the handler answers plain HTTP errors in the order Nomad's `allocExec` and gorilla/websocket
v1.5.0's `Upgrader.Upgrade` produce them; after the upgrade every failure is a close frame whose reason is the
error text. The command runs as a real local process (own session and process group) in the task directory with
the task's environment, through pipes or, with `tty=true`, a pseudo-terminal.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import struct
import termios
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from . import acl as acl_mod
from .nomadversion import DEFAULT as DEFAULT_NOMAD
from .nomadversion import NomadVersion
from .uuidindex import IndexError_, lookup_error, parse_uuid

OUTPUT_FRAME_BYTES = 1024      # bytes of output per stdout/stderr frame (execstreaming.go)
PIPE_READ_BYTES = 64 * 1024    # read bigger chunks from the pipe, then slice them into frames
CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
MAX_CLOSE_REASON_BYTES = 123   # RFC 6455: 125 bytes of control payload minus the 2-byte code
TTY_FIRST_FRAME_WAIT = 0.1     # seconds a tty session waits for the client's initial tty_size before starting
EXIT_SIGNAL_BASE = 128         # Nomad's executor reports a signalled process as 128 + signal number
EARLY_CLOSE_REASON = "io: read/write on closed pipe"   # the stream error seen in hashicorp/nomad#19164
CTRL_D = b"\x04"

# Nomad's client looks the task up for its driver capabilities before reading task states, so a real 1.6
# agent answers an unknown task with close 1011 "task not found"; the reference table (and the contract the
# other parts test against) lists the task-state message below, which the emulator keeps.
UNKNOWN_TASK_MESSAGE = 'unknown task name "{task}"'

GO_REQUEST_TYPE = "&proto.ExecTaskStreamingRequest"

_live_sessions: set = set()   # ExecSession objects whose process may be running


class ExecQueryError(ValueError):
    """A query parameter Nomad rejects before the upgrade (plain 500 with this text)."""


class SessionError(Exception):
    """An error after the upgrade; `code` is Nomad's internal HTTP code (None = uncoded)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def close_code(self) -> int:
        if self.code is None or self.code == 500:
            return CLOSE_INTERNAL_ERROR
        return CLOSE_POLICY_VIOLATION


class PeerGone(Exception):
    """The client closed or dropped the WebSocket."""


# --------------------------------------------------------------------------------------------------
# Go encoding/json error texts (syntax from the scanner, type errors from the decoder)
# --------------------------------------------------------------------------------------------------

class GoJSONError(ValueError):
    """str() is the message Go's encoding/json would return for the same input."""


def go_quote_char(byte: int) -> str:
    """Go's scanner quoteChar: the byte as a rune, quoted in single quotes."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    char = chr(byte)
    escapes = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 0x5c: "\\\\"}
    if byte in escapes:
        return f"'{escapes[byte]}'"
    if byte < 0x20 or byte == 0x7f:
        return f"'\\x{byte:02x}'"
    if not char.isprintable():
        return f"'\\u{byte:04x}'"
    return f"'{char}'"


class _GoScanner:
    """Validates JSON like Go's encoding/json scanner does before decoding, with its error texts."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def fail(self, context: str):
        if self.pos >= len(self.data):
            raise GoJSONError("unexpected end of JSON input")
        raise GoJSONError(f"invalid character {go_quote_char(self.data[self.pos])} {context}")

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def skip_space(self):
        while self.pos < len(self.data) and self.data[self.pos] in b" \t\r\n":
            self.pos += 1

    def check(self):
        self.skip_space()
        self.value("looking for beginning of value")
        self.skip_space()
        if self.pos < len(self.data):
            self.fail("after top-level value")

    def value(self, context: str):
        byte = self.peek()
        if byte == 0x7b:
            self.object()
        elif byte == 0x5b:
            self.array()
        elif byte == 0x22:
            self.string()
        elif byte is not None and (byte == 0x2d or 0x30 <= byte <= 0x39):
            self.number()
        elif byte is not None and chr(byte) in "tfn":
            self.literal({"t": b"true", "f": b"false", "n": b"null"}[chr(byte)])
        else:
            self.fail(context)

    def object(self):
        self.pos += 1
        self.skip_space()
        if self.peek() == 0x7d:
            self.pos += 1
            return
        while True:
            if self.peek() != 0x22:
                self.fail("looking for beginning of object key string")
            self.string()
            self.skip_space()
            if self.peek() != 0x3a:
                self.fail("after object key")
            self.pos += 1
            self.skip_space()
            self.value("looking for beginning of value")
            self.skip_space()
            if self.peek() == 0x2c:
                self.pos += 1
                self.skip_space()
                continue
            if self.peek() == 0x7d:
                self.pos += 1
                return
            self.fail("after object key:value pair")

    def array(self):
        self.pos += 1
        self.skip_space()
        if self.peek() == 0x5d:
            self.pos += 1
            return
        while True:
            self.value("looking for beginning of value")
            self.skip_space()
            if self.peek() == 0x2c:
                self.pos += 1
                self.skip_space()
                continue
            if self.peek() == 0x5d:
                self.pos += 1
                return
            self.fail("after array element")

    def string(self):
        self.pos += 1
        while True:
            byte = self.peek()
            if byte is None:
                self.fail("in string literal")
            if byte == 0x22:
                self.pos += 1
                return
            if byte < 0x20:
                self.fail("in string literal")
            if byte == 0x5c:
                self.pos += 1
                escape = self.peek()
                if escape is None or chr(escape) not in '"\\/bfnrtu':
                    self.fail("in string escape code")
                if escape == 0x75:
                    for _digit in range(4):
                        self.pos += 1
                        digit = self.peek()
                        if digit is None or chr(digit) not in "0123456789abcdefABCDEF":
                            self.fail("in \\u hexadecimal character escape")
            self.pos += 1

    def digits(self, context: str):
        byte = self.peek()
        if byte is None or not 0x30 <= byte <= 0x39:
            self.fail(context)
        while self.peek() is not None and 0x30 <= self.peek() <= 0x39:
            self.pos += 1

    def number(self):
        if self.peek() == 0x2d:
            self.pos += 1
        if self.peek() == 0x30:
            self.pos += 1
        else:
            self.digits("in numeric literal")
        if self.peek() == 0x2e:
            self.pos += 1
            self.digits("after decimal point in numeric literal")
        if self.peek() in (0x65, 0x45):
            self.pos += 1
            if self.peek() in (0x2b, 0x2d):
                self.pos += 1
            self.digits("in exponent of numeric literal")

    def literal(self, word: bytes):
        for index, expected in enumerate(word):
            if self.peek() != expected:
                self.fail(f"in literal {word.decode()} (expecting {go_quote_char(word[index])})")
            self.pos += 1


def go_json_loads(data: bytes | str):
    """Decode JSON, raising GoJSONError with Go's syntax error text for input Go would reject."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    _GoScanner(raw).check()
    return json.loads(raw.decode("utf-8", "replace"))


def go_json_kind(value) -> str:
    """The JSON value name Go's UnmarshalTypeError uses."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def go_type_error(value, go_type: str, go_struct: str = "", field: str = "") -> GoJSONError:
    kind = go_json_kind(value)
    if go_struct:
        return GoJSONError(f"json: cannot unmarshal {kind} into Go struct field {go_struct}.{field} "
                           f"of type {go_type}")
    return GoJSONError(f"json: cannot unmarshal {kind} into Go value of type {go_type}")


def go_field(obj: dict, name: str):
    """(value,) of a struct field: Go maps keys to fields case-insensitively and a later key overwrites."""
    found = None
    for key, value in obj.items():
        if key == name or key.lower() == name:
            found = (value,)
    return found


def parse_command(raw: str) -> list:
    """`command` as Nomad decodes it into a []string (null decodes to an empty command)."""
    try:
        decoded = go_json_loads(raw)
    except GoJSONError as err:
        raise ExecQueryError(f"failed to marshal command into json: {err}") from err
    if decoded is None:
        return []
    if not isinstance(decoded, list):
        raise ExecQueryError(f"failed to marshal command into json: {go_type_error(decoded, '[]string')}")
    for item in decoded:
        if item is not None and not isinstance(item, str):
            raise ExecQueryError(f"failed to marshal command into json: {go_type_error(item, 'string')}")
    return ["" if item is None else item for item in decoded]


GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_go_bool(raw: str) -> bool:
    """strconv.ParseBool; ValueError carries Go's message."""
    if raw in GO_TRUE:
        return True
    if raw in GO_FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {json.dumps(raw, ensure_ascii=False)}: invalid syntax")


def parse_tty(query) -> bool:
    raw = query.get("tty", "")
    if raw == "":
        return False
    try:
        return parse_go_bool(raw)
    except ValueError as err:
        raise ExecQueryError(f"tty value is not a boolean: {err}") from err


# --------------------------------------------------------------------------------------------------
# The upgrade, as gorilla/websocket v1.5.0 refuses it
# --------------------------------------------------------------------------------------------------

def header_has_token(request: web.Request, name: str, token: str) -> bool:
    for value in request.headers.getall(name, ()):
        if any(part.strip().lower() == token for part in value.split(",")):
            return True
    return False


def origin_allowed(request: web.Request) -> bool:
    """gorilla's default same-origin check: no Origin, or its host equals the Host header (ASCII case-folded)."""
    origins = request.headers.getall("Origin", ())
    if not origins:
        return True
    try:
        netloc = urlsplit(origins[0]).netloc
    except ValueError:
        return False
    host = netloc.rpartition("@")[2]
    return host.lower() == request.headers.get("Host", "").lower()


def upgrade_refusal(request: web.Request):
    """(status, reason) when gorilla would refuse the upgrade, else None."""
    not_websocket = "websocket: the client is not using the websocket protocol: "
    if not header_has_token(request, "Connection", "upgrade"):
        return 400, not_websocket + "'upgrade' token not found in 'Connection' header"
    if not header_has_token(request, "Upgrade", "websocket"):
        return 400, not_websocket + "'websocket' token not found in 'Upgrade' header"
    if request.method != "GET":
        return 405, not_websocket + "request method is not GET"
    if not header_has_token(request, "Sec-WebSocket-Version", "13"):
        return 400, "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"
    if not origin_allowed(request):
        return 403, "websocket: request origin not allowed by Upgrader.CheckOrigin"
    key = request.headers.get("Sec-WebSocket-Key", "")
    if request.app["emulator"].version.websocket_key_must_be_16_bytes:
        if not is_16_byte_base64(key):
            return 400, ("websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded "
                         "value of 16-byte in length")
    elif not key:
        return 400, "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing or blank"
    return None


def is_16_byte_base64(key: str) -> bool:
    """gorilla/websocket 1.5.3's isValidChallengeKey: standard base64 of exactly 16 bytes."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def upgrade_failure_response(status: int, reason: str) -> web.Response:
    """gorilla writes `<StatusText>\\n`, then Nomad appends its own error to the same body."""
    body = f"{HTTPStatus(status).phrase}\nfailed to upgrade connection: {reason}"
    return web.Response(status=status, text=body, content_type="text/plain", charset="utf-8",
                        headers={"Sec-Websocket-Version": "13", "X-Content-Type-Options": "nosniff"})


def plain_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain", charset="utf-8")


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------

def frame_json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))


def output_frame(stream: str, data: bytes) -> str:
    # Built by hand: this runs once per KiB of output, and base64 text needs no JSON escaping.
    return '{"' + stream + '":{"data":"' + base64.b64encode(data).decode("ascii") + '"}}'


def exit_frame(exit_code: int) -> str:
    # ExitResult.exit_code is omitempty in the go-codec encoding, so 0 leaves an empty result object.
    result = {"exit_code": exit_code} if exit_code else {}
    return frame_json({"exited": True, "result": result})


@dataclass
class ClientFrame:
    stdin_data: bytes = b""
    stdin_close: bool = False
    tty_size: tuple | None = None   # (rows, cols)
    setup: bool = False


def _go_struct(value, go_type: str, go_struct: str, field: str):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise go_type_error(value, go_type, go_struct, field)
    return value


def _go_int32(value, go_struct: str, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise go_type_error(value, "int32", go_struct, field)
    if isinstance(value, float) or not -2 ** 31 <= value < 2 ** 31:
        raise GoJSONError(f"json: cannot unmarshal number {json.dumps(value)} into Go struct field "
                          f"{go_struct}.{field} of type int32")
    return value


def _go_bytes(value, go_struct: str, field: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise go_type_error(value, "[]uint8", go_struct, field)
    try:
        return base64.b64decode(value.encode("utf-8"), validate=True)
    except (binascii.Error, ValueError) as err:
        raise GoJSONError(f"illegal base64 data at input byte {_base64_error_offset(value)}") from err


def _base64_error_offset(text: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for index, char in enumerate(text):
        if char not in alphabet:
            return index
    return len(text) - len(text) % 4


# The frame that carries nearly all stdin traffic, in the exact form clients send it: valid JSON by construction,
# so it skips the character-by-character Go scanner (which would make the emulator, not the client, the bottleneck
# of big uploads). Anything else takes the full path.
_STDIN_DATA_FRAME = re.compile(r'\{"stdin":\{"data":"([A-Za-z0-9+/]*={0,2})"\}\}')


def decode_client_frame(data: str | bytes) -> ClientFrame:
    """A client frame as Go decodes it into proto.ExecTaskStreamingRequest (unknown keys ignored)."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    plain = _STDIN_DATA_FRAME.fullmatch(text)
    if plain is not None and len(plain.group(1)) % 4 == 0:
        return ClientFrame(stdin_data=base64.b64decode(plain.group(1)))
    top = "ExecTaskStreamingRequest"
    decoded = go_json_loads(data)
    if decoded is None:
        return ClientFrame()
    if not isinstance(decoded, dict):
        raise go_type_error(decoded, "proto.ExecTaskStreamingRequest")
    frame = ClientFrame()
    stdin = go_field(decoded, "stdin")
    if stdin is not None:
        operation = _go_struct(stdin[0], "proto.ExecTaskStreamingIOOperation", top, "stdin")
        if operation is not None:
            data_field = go_field(operation, "data")
            close_field = go_field(operation, "close")
            frame.stdin_data = _go_bytes(data_field[0], "ExecTaskStreamingIOOperation", "stdin.data") \
                if data_field else b""
            if close_field and close_field[0] is not None:
                if not isinstance(close_field[0], bool):
                    raise go_type_error(close_field[0], "bool", "ExecTaskStreamingIOOperation", "stdin.close")
                frame.stdin_close = close_field[0]
    size = go_field(decoded, "tty_size")
    if size is not None:
        terminal = _go_struct(size[0], "proto.ExecTaskStreamingRequest_TerminalSize", top, "tty_size")
        if terminal is not None:
            size_struct = "ExecTaskStreamingRequest_TerminalSize"
            height, width = go_field(terminal, "height"), go_field(terminal, "width")
            frame.tty_size = (_go_int32(height[0] if height else None, size_struct, "tty_size.height"),
                              _go_int32(width[0] if width else None, size_struct, "tty_size.width"))
    setup = go_field(decoded, "setup")
    if setup is not None:
        frame.setup = _go_struct(setup[0], "proto.ExecTaskStreamingRequest_Setup", top, "setup") is not None
    return frame


def unexpected_message_text(frame: ClientFrame) -> str:
    """Nomad formats the offending message with %#v."""
    def pointer(present: bool, go_type: str) -> str:
        return f"(*proto.{go_type})(0xc000010000)" if present else f"(*proto.{go_type})(nil)"
    return (f"unexpected message type: {GO_REQUEST_TYPE}{{"
            f"Setup:{pointer(frame.setup, 'ExecTaskStreamingRequest_Setup')}, "
            f"TtySize:{pointer(frame.tty_size is not None, 'ExecTaskStreamingRequest_TerminalSize')}, "
            f"Stdin:{pointer(bool(frame.stdin_data or frame.stdin_close), 'ExecTaskStreamingIOOperation')}, "
            "XXX_NoUnkeyedLiteral:struct {}{}, XXX_unrecognized:[]uint8(nil), XXX_sizecache:0}")


def truncate_reason(message: str) -> str:
    encoded = message.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return message
    return encoded[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


# --------------------------------------------------------------------------------------------------
# Auth, allocation and task checks (server side, then client side, in Nomad's order)
# --------------------------------------------------------------------------------------------------

async def read_auth_token(request: web.Request, ws: web.WebSocketResponse, emulator) -> str:
    header_token = emulator.token_of(request)
    raw = request.query.get("ws_handshake", "")
    if raw == "":
        return header_token
    try:
        wanted = parse_go_bool(raw)
    except ValueError as err:
        raise SessionError(f"ws_handshake value is not a boolean: {err}", 400) from err
    if not wanted:
        return header_token
    message = await ws.receive()
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        raise PeerGone()
    return handshake_token(message.data)


def handshake_token(data: str | bytes) -> str:
    go_struct = "wsHandshakeMessage"
    try:
        decoded = go_json_loads(data)
        if decoded is None:
            decoded = {}
        if not isinstance(decoded, dict):
            raise go_type_error(decoded, f"agent.{go_struct}")
        version_field = go_field(decoded, "version")
        version = version_field[0] if version_field and version_field[0] is not None else 0
        if isinstance(version, bool) or not isinstance(version, (int, float)):
            raise go_type_error(version, "int", go_struct, "version")
        if isinstance(version, float) or not -2 ** 63 <= version < 2 ** 63:
            raise GoJSONError(f"json: cannot unmarshal number {json.dumps(version)} into Go struct field "
                              f"{go_struct}.version of type int")
        token_field = go_field(decoded, "auth_token")
        token = token_field[0] if token_field and token_field[0] is not None else ""
        if not isinstance(token, str):
            raise go_type_error(token, "string", go_struct, "auth_token")
    except GoJSONError as err:
        raise SessionError(str(err), 400) from err
    if version != 1:
        raise SessionError(f"unexpected handshake value: {version}", 400)
    return token


def require(emulator, namespace: str, capability: str, token: str) -> None:
    if not emulator.allowed(namespace, capability, token):
        raise SessionError(acl_mod.PERMISSION_DENIED)


def locate_task(emulator, alloc_id: str, token: str, task_name: str, command: list, region: str = ""):
    """The (allocation, task) to exec into, or SessionError with Nomad's text and code."""
    if region and region != getattr(emulator, "region", region):
        raise SessionError("No path to region", 500)
    version = emulator.version
    if emulator.acl_enabled:
        try:
            emulator.resolve_token(token)
        except acl_mod.PermissionDenied as err:
            raise SessionError(str(err), 400 if version.exec_token_errors_coded else None) from err
    try:
        parse_uuid(alloc_id, exact=True)
    except IndexError_ as err:
        raise SessionError(lookup_error(err)) from err
    alloc = emulator.find_alloc(alloc_id)
    if alloc is None:
        raise SessionError(f'Unknown allocation "{alloc_id}"', 404)
    require(emulator, alloc.namespace, "alloc-exec", token)
    if version.exec_refuses_terminal_allocs and alloc.client_status in ("complete", "failed", "lost"):
        raise SessionError(f"exec not possible, client status of allocation {alloc.id} is {alloc.client_status}", 400)
    if not task_name:
        raise SessionError("must provide task name", 400)
    if not command:
        raise SessionError("command is not present", 400)
    task = alloc.tasks.get(task_name)
    if task is None:
        raise SessionError(UNKNOWN_TASK_MESSAGE.format(task=task_name), 400)
    # The emulator's tasks are raw_exec-like (no filesystem isolation): alloc-node-exec is needed too.
    require(emulator, alloc.namespace, "alloc-node-exec", token)
    if not (task.started or task.state == "running"):
        raise SessionError(f'task "{task_name}" not started yet.', 404)
    if task.state != "running":
        raise SessionError(f'task "{task_name}" is not running.', 404)
    return alloc, task


def task_directory(emulator, alloc, task) -> str:
    if task.task_dir and os.path.isdir(task.task_dir):
        return task.task_dir
    return emulator.ensure_task_dir(alloc, task)


def task_environment(alloc, task, task_dir: str) -> dict:
    if task.env:
        return dict(task.env)
    env = dict(os.environ)
    env.update({
        "NOMAD_ALLOC_ID": alloc.id, "NOMAD_ALLOC_NAME": alloc.name, "NOMAD_JOB_NAME": alloc.job_id,
        "NOMAD_GROUP_NAME": alloc.task_group, "NOMAD_TASK_NAME": task.name, "NOMAD_NAMESPACE": alloc.namespace,
        "NOMAD_TASK_DIR": task_dir, "NOMAD_ALLOC_DIR": alloc.alloc_dir or os.path.dirname(task_dir),
    })
    return env


def exec_environment(alloc, task, task_dir: str) -> dict:
    """The task's environment, with HOME and TMPDIR inside the task directory (its `tmp/` made on demand), so
    that what an exec'd command writes under `~` or the temporary directory stays in the allocation."""
    env = task_environment(alloc, task, task_dir)
    temporary = os.path.join(task_dir, "tmp")
    os.makedirs(temporary, exist_ok=True)
    env.update(HOME=task_dir, TMPDIR=temporary)
    return env


def resolve_executable(argv0: str, env: dict) -> str:
    """Go's exec.Command: a bare name is searched in PATH, and its failure is reported before any fork."""
    if "/" in argv0:
        return argv0
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise SessionError(f'exec: "{argv0}": executable file not found in $PATH', 500)
    return found


def start_failure(argv0: str, err: OSError) -> SessionError:
    text = (err.strerror or str(err))
    return SessionError(f"fork/exec {argv0}: {text[:1].lower()}{text[1:]}", 500)


def exit_code_of(returncode: int) -> int:
    if returncode < 0:
        return EXIT_SIGNAL_BASE - returncode
    return returncode


def set_window_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows & 0xffff, cols & 0xffff, 0, 0))


def become_controlling_tty() -> None:
    """Runs in the child after setsid(): make the pty slave (already on fd 0) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# --------------------------------------------------------------------------------------------------
# The session: a process bridged to the WebSocket
# --------------------------------------------------------------------------------------------------

class ExecSession:
    def __init__(self, ws: web.WebSocketResponse, argv: list, cwd: str, env: dict, tty: bool, close_early: bool,
                 drop_after: int | None = None, transport=None, version: NomadVersion = DEFAULT_NOMAD):
        self.ws = ws
        self.close_frame_after_exit = version.exec_close_frame_after_exit
        self.swallow_closed_errors = version.exec_swallows_closed_errors
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.tty = tty
        self.close_early = close_early
        self.process: asyncio.subprocess.Process | None = None
        self.stdin_writer: asyncio.StreamWriter | None = None
        self.output_readers: dict = {}
        self.master_transports: list = []
        self.master_fd: int | None = None
        self.slave_fd: int | None = None
        self.winsize_fd: int | None = None   # our own handle on the master: the read side closes at EOF
        self.stdin_closed = False
        self.last_stdin_byte = b"\n"
        self.first_frame = asyncio.Event()
        self.first_output_sent = asyncio.Event()
        # Fault exec_drop_after_bytes: drop the TCP connection (no close frame) once this many bytes of stdin and
        # output together have passed.
        self.drop_after = drop_after
        self.transport = transport
        self.transferred = 0
        self.dropped = asyncio.Event()

    async def run(self) -> None:
        """Bridge until the process has exited (exit frame + close 1000), the peer left, or a stream error."""
        helpers: list = []
        _live_sessions.add(self)
        try:
            input_task = await self.start(helpers)
            exit_task = track(helpers, self.wait_exit())
            early_task = track(helpers, self.first_output_sent.wait()) if self.close_early else None
            drop_task = track(helpers, self.dropped.wait()) if self.drop_after is not None else None
            done, _pending = await asyncio.wait(helpers, return_when=asyncio.FIRST_COMPLETED)
            if drop_task in done:
                self.drop_connection()
            elif early_task in done:
                await self.finish_with_error(SessionError(EARLY_CLOSE_REASON))
            elif exit_task in done:
                await self.finish_with_exit(exit_task, input_task)
            else:
                await self.finish_after_input(input_task)
        finally:
            self.kill()
            for helper in helpers:
                await cancel_and_wait(helper)
            await self.release()
            _live_sessions.discard(self)

    async def start(self, helpers: list) -> asyncio.Future:
        """Start the command and the input pump; a tty session first waits briefly for its initial size."""
        if not self.tty:
            await self.spawn()
            return track(helpers, self.pump_input())
        await self.open_pty()
        input_task = track(helpers, self.pump_input())
        await self.wait_for_initial_frame(input_task)
        await self.spawn()
        return input_task

    async def open_pty(self) -> None:
        self.master_fd, self.slave_fd = os.openpty()
        self.winsize_fd = os.dup(self.master_fd)
        set_window_size(self.winsize_fd, 0, 0)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=PIPE_READ_BYTES)
        read_transport, _protocol = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(self.master_fd, "rb", buffering=0))
        write_transport, write_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(os.dup(self.master_fd), "wb", buffering=0))
        self.master_transports = [read_transport, write_transport]
        self.stdin_writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
        self.output_readers = {"stdout": reader}

    async def wait_for_initial_frame(self, input_task: asyncio.Future) -> None:
        """Give the client's initial tty_size a moment to land, so the command starts with that size."""
        first = asyncio.ensure_future(self.first_frame.wait())
        try:
            await asyncio.wait({first, input_task}, timeout=TTY_FIRST_FRAME_WAIT,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            first.cancel()
        if input_task.done():
            input_task.result()   # raises the stream error of a bad frame sent before the start
            raise PeerGone()
        await asyncio.sleep(0)    # let frames that arrived together with the first one be applied

    async def spawn(self) -> None:
        try:
            executable = resolve_executable(self.argv[0], self.env)
            if self.tty:
                self.process = await asyncio.create_subprocess_exec(
                    executable, *self.argv[1:], cwd=self.cwd, env=self.env, start_new_session=True,
                    stdin=self.slave_fd, stdout=self.slave_fd, stderr=self.slave_fd,
                    preexec_fn=become_controlling_tty)
            else:
                self.process = await asyncio.create_subprocess_exec(
                    executable, *self.argv[1:], cwd=self.cwd, env=self.env, start_new_session=True,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, limit=PIPE_READ_BYTES)
        except OSError as err:
            raise start_failure(self.argv[0], err) from err
        finally:
            self.close_slave()
        if not self.tty:
            self.stdin_writer = self.process.stdin
            self.output_readers = {"stdout": self.process.stdout, "stderr": self.process.stderr}

    # --- input ---------------------------------------------------------------------------------
    async def pump_input(self) -> None:
        """Apply client frames until the peer leaves (returns) or sends a bad frame (SessionError)."""
        while True:
            message = await self.ws.receive()
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            try:
                frame = decode_client_frame(message.data)
            except GoJSONError as err:
                raise SessionError(str(err), 500) from err
            self.first_frame.set()
            await self.apply(frame)

    async def apply(self, frame: ClientFrame) -> None:
        if frame.setup:
            raise SessionError(unexpected_message_text(frame), 500)
        if frame.stdin_data:
            await self.write_stdin(frame.stdin_data)
        if frame.stdin_close:
            await self.close_stdin()
        if frame.tty_size is not None and self.tty:
            set_window_size(self.winsize_fd, *frame.tty_size)

    def count_transfer(self, size: int) -> bool:
        """Count bytes for exec_drop_after_bytes; False once the connection is to be dropped."""
        if self.drop_after is None:
            return True
        if self.dropped.is_set() or self.transferred + size > self.drop_after:
            self.dropped.set()
            return False
        self.transferred += size
        return True

    def drop_connection(self) -> None:
        self.kill()
        if self.transport is not None:
            self.transport.abort()

    async def write_stdin(self, data: bytes) -> None:
        if self.stdin_closed or self.stdin_writer is None:
            return
        if not self.count_transfer(len(data)):
            await asyncio.Event().wait()   # the session ends from run(); take no more input
        try:
            self.stdin_writer.write(data)
            await self.stdin_writer.drain()
        except (BrokenPipeError, ConnectionResetError):
            self.stdin_closed = True   # the command stopped reading; its exit ends the session
            return
        self.last_stdin_byte = data[-1:]

    async def close_stdin(self) -> None:
        if self.stdin_closed or self.stdin_writer is None:
            return
        if self.tty:
            # The line discipline turns ^D into end-of-file; a pending partial line needs a second one.
            await self.write_stdin(CTRL_D if self.last_stdin_byte in (b"\n", CTRL_D) else CTRL_D * 2)
        else:
            self.stdin_writer.close()
        self.stdin_closed = True

    # --- output --------------------------------------------------------------------------------
    async def pump_output(self, stream: str, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                chunk = await reader.read(PIPE_READ_BYTES)
            except OSError as err:
                if err.errno != errno.EIO:   # EIO: every holder of the pty slave has closed it
                    raise
                chunk = b""
            if not chunk:
                await self.ws.send_str(frame_json({stream: {"close": True}}))
                return
            for start in range(0, len(chunk), OUTPUT_FRAME_BYTES):
                piece = chunk[start:start + OUTPUT_FRAME_BYTES]
                if not self.count_transfer(len(piece)):
                    await asyncio.Event().wait()   # the session ends from run(); stop producing frames
                await self.ws.send_str(output_frame(stream, piece))
                if self.close_early:
                    self.first_output_sent.set()
                    await asyncio.Event().wait()   # the session ends from run(); stop producing frames

    async def wait_exit(self) -> int:
        """The exit code, once the process has exited and all its output has been sent."""
        pumps = [asyncio.ensure_future(self.pump_output(stream, reader))
                 for stream, reader in self.output_readers.items()]
        try:
            returncode = await self.process.wait()
            await asyncio.gather(*pumps)
        finally:
            for pump in pumps:
                await cancel_and_wait(pump)
        return exit_code_of(returncode)

    # --- endings -------------------------------------------------------------------------------
    async def finish_with_exit(self, exit_task: asyncio.Future, input_task: asyncio.Future) -> None:
        try:
            exit_code = exit_task.result()
        except ConnectionError:
            return   # the peer vanished while output was being sent
        if self.close_early:
            await self.finish_with_error(SessionError(EARLY_CLOSE_REASON))
            return
        await cancel_and_wait(input_task)
        try:
            await self.ws.send_str(exit_frame(exit_code))
        except ConnectionError:
            return
        if self.close_frame_after_exit:
            await self.ws.close(code=CLOSE_NORMAL)
        else:
            self.end_without_close_frame()

    def end_without_close_frame(self) -> None:
        """Nomad 1.8+ closes the TCP connection after the last frame (sent, not discarded) without a close frame."""
        if self.transport is not None:
            self.transport.close()

    async def finish_after_input(self, input_task: asyncio.Future) -> None:
        try:
            input_task.result()
        except SessionError as err:
            await self.finish_with_error(err)

    async def finish_with_error(self, err: SessionError) -> None:
        self.kill()
        if self.swallow_closed_errors and ("closed" in err.message or "EOF" in err.message):
            self.end_without_close_frame()   # row 8: such stream errors end the session silently
            return
        await close_with_error(self.ws, err)

    def kill(self) -> None:
        """Kill the command's whole process group (it runs in its own session)."""
        if self.process is None or self.process.returncode is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close_slave(self) -> None:
        """Our copy of the pty slave must go once the child has its own, or the master never sees EOF."""
        if self.slave_fd is not None:
            os.close(self.slave_fd)
            self.slave_fd = None

    async def release(self) -> None:
        """Reap the process and close the pipes or the pty."""
        if self.process is not None:
            await self.process.wait()
        self.close_slave()
        if self.winsize_fd is not None:
            os.close(self.winsize_fd)
            self.winsize_fd = None
        if self.tty and self.master_fd is not None and not self.master_transports:
            os.close(self.master_fd)
        for transport in self.master_transports:
            transport.close()
        if not self.tty and self.stdin_writer is not None:
            self.stdin_writer.close()


def track(helpers: list, coroutine) -> asyncio.Future:
    task = asyncio.ensure_future(coroutine)
    helpers.append(task)
    return task


async def cancel_and_wait(task: asyncio.Future) -> None:
    """Cancel a helper task and wait for it; its outcome no longer matters."""
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, SessionError, PeerGone, ConnectionError, OSError):
        pass


async def close_with_error(ws: web.WebSocketResponse, err: SessionError) -> None:
    if ws.closed:
        return
    try:
        await ws.close(code=err.close_code, message=truncate_reason(err.message).encode("utf-8"))
    except ConnectionError:
        pass


# --------------------------------------------------------------------------------------------------
# The handler
# --------------------------------------------------------------------------------------------------

def kill_exec_processes() -> None:
    """For the server's shutdown: kill every exec'd process group, so open sessions end at once."""
    for session in list(_live_sessions):
        session.kill()


def alloc_id_of(request: web.Request) -> str:
    alloc_id = request.match_info.get("alloc_id")
    if alloc_id is None:   # routed without a named segment: /v1/client/allocation/<id>/exec
        alloc_id = request.path.split("/")[4]
    return alloc_id


async def handle_exec(request: web.Request) -> web.StreamResponse:
    emulator = request.app["emulator"]
    emulator.record_request(request.method, request.path)
    try:
        command = parse_command(request.query.get("command", ""))
        tty = parse_tty(request.query)
    except ExecQueryError as err:
        return plain_error(500, str(err))
    refusal = upgrade_refusal(request)
    if refusal is not None:
        return upgrade_failure_response(*refusal)

    # gorilla as Nomad configures it: no compression, no message size limit.
    ws = web.WebSocketResponse(compress=False, max_msg_size=0, timeout=2.0)
    await ws.prepare(request)
    try:
        token = await read_auth_token(request, ws, emulator)
        alloc, task = locate_task(emulator, alloc_id_of(request), token,
                                  request.query.get("task", ""), command, request.query.get("region", ""))
        task_dir = task_directory(emulator, alloc, task)
        close_early = emulator.faults.take("exec_close_early", request.method, request.path) is not None
        drop_rule = emulator.faults.take("exec_drop_after_bytes", request.method, request.path)
        session = ExecSession(ws, command, task_dir, exec_environment(alloc, task, task_dir), tty, close_early,
                              drop_after=None if drop_rule is None else drop_rule["after_bytes"],
                              transport=request.transport, version=emulator.version)
        await session.run()
    except SessionError as err:
        await close_with_error(ws, err)
    except PeerGone:
        pass
    return ws
