# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Nomad's client fs API over the tasks' real files: /v1/client/fs/{logs,cat,readat,ls,stat,stream}/:alloc_id.

Behaviour per /work/shared/reference/nomad-fs-logs-checks-behaviour.md (Nomad 1.6.5, the agent hosting the
allocation, i.e. the client-local path): parameter checks and texts, frames `{"Data","File","FileEvent",
"Offset"}` concatenated without separator, heartbeats `{}` every second, headers sent only with the first
payload, errors after the first payload appended raw, cat/readat errors answered 200.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import stat as stat_mod
import sys
import time

from aiohttp import web

from . import acl as acl_mod
from .httpjson import HttpError, error_response
from .logcapture import log_indexes
from .nomadtime import rfc3339

FRAME_DATA_MAX = 64 * 1024
BATCH_SECONDS = 0.2
HEARTBEAT_SECONDS = 1.0
POLL_SECONDS = 0.25
OPS = ("ls", "stat", "readat", "cat", "stream", "logs")
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_INT64 = 2 ** 63


# --- Go-like parameter parsing -------------------------------------------------------------------
def go_bool(text: str) -> bool:
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def go_int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def bool_param(query, name: str, default: bool, status: int) -> bool:
    text = query.get(name, "")
    if not text:
        return default
    try:
        return go_bool(text)
    except ValueError as err:
        raise HttpError(status, f"failed to parse {name} field to boolean: {err}") from err


def int_param(query, name: str, status: int, required: bool = False) -> int:
    text = query.get(name, "")
    if not text and not required:
        return 0
    try:
        return go_int(text)
    except ValueError as err:
        raise HttpError(status, f"error parsing {name}: {err}") from err


def origin_param(query) -> str:
    origin = query.get("origin", "") or "start"
    if origin not in ("start", "end"):
        raise HttpError(400, "origin must be start or end")
    return origin


# --- allocation, ACL, paths ------------------------------------------------------------------------
class Target:
    """The allocation of a request, its directory, and the token's verdicts."""

    def __init__(self, api, request, alloc_id: str):
        if not alloc_id:
            raise HttpError(400, "must provide a valid alloc id")
        api.check_region(request)
        self.token_error = ""
        try:
            self.token = api.emulator.authenticate(request)
        except acl_mod.PermissionDenied as err:
            self.token, self.token_error = None, str(err)
        self.alloc = api.lookup_exact(alloc_id)
        if self.alloc is None:
            raise HttpError(404, f'Unknown allocation "{alloc_id}"', rpc=True)
        self.alloc_id = alloc_id
        self.root = self.alloc.alloc_dir or os.path.join(api.emulator.state_dir, self.alloc.id)
        self.acl = api.emulator.acl_enabled
        self.ignore_case = api.emulator.version.secret_dirs_ignore_case

    def allows(self, *capabilities) -> bool:
        if not self.acl:
            return True
        if self.token_error:
            return False
        return any(self.token.allows(self.alloc.namespace, cap) for cap in capabilities)

    def require(self, status: int, *capabilities) -> None:
        if not self.allows(*capabilities):
            raise HttpError(status, self.token_error or acl_mod.PERMISSION_DENIED)

    def host_path(self, path: str) -> str:
        """filepath.Join(alloc dir, path) with Nomad's escape check (lexical, then symlinks for existing paths)."""
        joined = os.path.normpath(os.path.join(self.root, path.lstrip("/")))
        relative = os.path.relpath(joined, self.root)
        if relative.startswith(".."):
            raise HttpError(500, "Path escapes the alloc directory")
        if os.path.lexists(joined):
            real_root = os.path.realpath(self.root)
            real = os.path.realpath(joined)
            if real != real_root and not real.startswith(real_root + os.sep):
                raise HttpError(500, "Path escapes the alloc directory")
        return joined

    def refuse_secret(self, host: str, given: str, status: int) -> None:
        fold = str.lower if self.ignore_case else str   # row 26: the prefix check ignores case since 1.9.0
        for task in self.alloc.tasks.values():
            for kind, word in (("secrets", "secret"), ("private", "private")):
                if fold(host).startswith(fold(os.path.join(self.root, task.name, kind))):
                    raise HttpError(status, f"Reading {word} file prohibited: {given}")


# --- file info -------------------------------------------------------------------------------------
def go_file_mode(mode: int) -> str:
    """Go's FileMode.String() for an os.stat mode."""
    letters = ""
    if stat_mod.S_ISDIR(mode):
        letters += "d"
    if stat_mod.S_ISLNK(mode):
        letters += "L"
    if stat_mod.S_ISFIFO(mode):
        letters += "p"
    if stat_mod.S_ISSOCK(mode):
        letters += "S"
    if mode & stat_mod.S_ISUID:
        letters += "u"
    if mode & stat_mod.S_ISGID:
        letters += "g"
    if stat_mod.S_ISCHR(mode):
        letters += "c"
    if mode & stat_mod.S_ISVTX:
        letters += "t"
    perms = "".join(char if mode & (1 << (8 - i)) else "-" for i, char in enumerate("rwxrwxrwx"))
    return (letters or "-") + perms


def content_type(host: str, info: os.stat_result) -> str:
    if host.endswith(".json"):
        return "application/json"
    if stat_mod.S_ISDIR(info.st_mode):
        return "application/octet-stream"
    try:
        with open(host, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return "application/octet-stream"
    return sniff(head) if head else "application/octet-stream"


def sniff(head: bytes) -> str:
    """The few answers of Go's http.DetectContentType that matter here: text vs binary, html."""
    stripped = head.lstrip(b"\t\n\x0c\r ").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<script", b"<body")):
        return "text/html; charset=utf-8"
    if any(byte in head for byte in b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e\x0f\x10\x11\x12\x13\x14"
           b"\x15\x16\x17\x18\x19\x1a\x1c\x1d\x1e\x1f"):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def file_info(name: str, info: os.stat_result, ctype: str) -> dict:
    return {"Name": name, "IsDir": stat_mod.S_ISDIR(info.st_mode), "Size": info.st_size,
            "FileMode": go_file_mode(info.st_mode), "ModTime": rfc3339(info.st_mtime_ns), "ContentType": ctype}


def ls_body(target: Target, path: str) -> list:
    host = target.host_path(path)
    try:
        names = sorted(os.listdir(host))
    except FileNotFoundError as err:
        raise HttpError(404, f"open {host}: no such file or directory") from err
    except NotADirectoryError as err:
        raise HttpError(500, f"readdirent {host}: not a directory") from err
    entries = []
    for name in names:
        try:
            entries.append(file_info(name, os.lstat(os.path.join(host, name)), ""))
        except FileNotFoundError:
            continue
    return entries


def stat_body(target: Target, path: str) -> dict:
    host = target.host_path(path)
    try:
        info = os.stat(host)
    except FileNotFoundError as err:
        raise HttpError(404, f"stat {host}: no such file or directory") from err
    name = target.alloc.id if host == os.path.normpath(target.root) else os.path.basename(host)
    return file_info(name, info, content_type(host, info))


def readable_file(target: Target, path: str, *, stat_status: int, secret_status: int) -> str:
    """Host path of a regular file the stream/cat/readat may read, or the HttpError Nomad gives."""
    host = target.host_path(path)
    try:
        info = os.stat(host)
    except FileNotFoundError as err:
        raise HttpError(stat_status, f"stat {host}: no such file or directory") from err
    if stat_mod.S_ISDIR(info.st_mode):
        raise HttpError(stat_status, f'file "{path}" is a directory')
    target.refuse_secret(host, path, secret_status)
    return host


# --- frames and the streamed response ---------------------------------------------------------------
def frame(data: bytes = b"", file: str = "", event: str = "", offset: int = 0) -> bytes:
    fields = {}
    if data:
        fields["Data"] = base64.b64encode(data).decode()
    if file:
        fields["File"] = file
    if event:
        fields["FileEvent"] = event
    if offset:
        fields["Offset"] = offset
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


class StreamOut:
    """A chunked answer whose headers go out with the first payload; honours the stream fault rules."""

    def __init__(self, request, content_type: str, plain: bool):
        self.request, self.plain = request, plain
        self.response = web.StreamResponse(status=200)
        self.response.headers["Content-Type"] = content_type
        self.fault = request.get("stream_fault")
        self.sent = 0

    @property
    def started(self) -> bool:
        return self.response.prepared

    async def payload(self, data: bytes) -> None:
        if not data:
            return
        if not self.started:
            await self.response.prepare(self.request)
        if self.fault:
            data = await self.apply_fault(data)
        await self.response.write(data)
        self.sent += len(data)

    async def frame(self, **fields) -> None:
        if self.plain:
            await self.payload(fields.get("data", b""))
        else:
            await self.payload(frame(**fields))

    async def heartbeat(self) -> None:
        if not self.plain:
            await self.payload(b"{}")

    async def apply_fault(self, data: bytes) -> bytes:
        """drop_mid_body: cut inside this payload and abort; stall: stop after after_bytes, keep the socket."""
        limit = self.fault.get("after_bytes")
        limit = max(1, len(data) // 2) if limit is None else int(limit) - self.sent
        if limit >= len(data):
            return data
        await self.response.write(data[:max(0, limit)])
        if self.fault["action"] == "drop_mid_body":
            if self.request.transport is not None:
                self.request.transport.abort()
            raise asyncio.CancelledError()
        while self.request.transport is not None and not self.request.transport.is_closing():
            await asyncio.sleep(0.2)
        raise asyncio.CancelledError()

    async def finish(self, error: HttpError | None = None) -> web.StreamResponse:
        if error is not None and not self.started:
            response = error_response(error.status, error.body)
            preset_kept = not self.request.app["emulator"].version.error_content_type_set   # rows 6 and 25
            if preset_kept and self.response.headers.get("Content-Type", "").startswith(("application/json", "text/plain")):
                response.headers["Content-Type"] = self.response.headers["Content-Type"]
            return response
        if not self.started:
            return web.Response(status=200, body=b"", headers={"Content-Type": self.response.headers["Content-Type"]})
        if error is not None:
            await self.response.write(error.body.encode())
        await self.response.write_eof()
        return self.response


def client_gone(request, out: StreamOut) -> web.StreamResponse:
    """A client closing a followed stream is normal (the collection's `follow` does it when `until` matches):
    one line on stderr, not aiohttp's traceback."""
    print(f"emulator: client closed {request.method} {request.path} after {out.sent} bytes", file=sys.stderr,
          flush=True)
    return out.response


class Ticker:
    """Nomad's heartbeat ticker: every second, not reset by data."""

    def __init__(self):
        self.next = time.monotonic() + HEARTBEAT_SECONDS

    async def maybe_beat(self, out: StreamOut) -> None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + HEARTBEAT_SECONDS
            await out.heartbeat()


async def send_chunks(out: StreamOut, handle, position: int, name: str) -> int:
    """Send what the file holds after position, ≤64 KiB per frame; returns the new position."""
    while True:
        handle.seek(position)
        data = handle.read(FRAME_DATA_MAX)
        if not data:
            return position
        position += len(data)
        await out.frame(data=data, file=name, offset=position)


# --- logs ------------------------------------------------------------------------------------------
def logs_params(query) -> dict:
    if not query.get("task", ""):
        raise HttpError(400, "must provide task name")
    follow = bool_param(query, "follow", False, 400)
    plain = bool_param(query, "plain", False, 400)
    kind = query.get("type", "")
    if kind not in ("stdout", "stderr"):
        raise HttpError(400, "must provide log type (stdout/stderr)")
    offset = int_param(query, "offset", 400)
    return {"task": query["task"], "follow": follow, "plain": plain, "type": kind, "offset": offset,
            "origin": origin_param(query)}


def log_files(logs_dir: str, task: str, kind: str) -> list:
    """Ascending indexes; a non-integer suffix is Nomad's 500 for every request of that task/type."""
    prefix = f"{task}.{kind}."
    try:
        names = os.listdir(logs_dir)
    except FileNotFoundError as err:
        raise HttpError(500, f"failed to list entries: open {logs_dir}: no such file or directory") from err
    for name in names:
        suffix = name[len(prefix):]
        if name.startswith(prefix) and not suffix.isdigit() and not os.path.isdir(os.path.join(logs_dir, name)):
            raise HttpError(500, f'failed to convert "{suffix}" to a log index: strconv.Atoi: parsing '
                                 f'"{suffix}": invalid syntax')
    return log_indexes(logs_dir, task, kind)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def find_closest(logs_dir: str, task: str, kind: str, indexes: list, origin: str, offset: int):
    """Nomad's findClosest: (index, byte position) where reading starts."""
    if origin == "end":
        index_pos, remainder = len(indexes) - 1, -offset
    else:
        index_pos, remainder = 0, offset
    if remainder == 0:
        return indexes[index_pos], 0

    def path(i):
        return os.path.join(logs_dir, f"{task}.{kind}.{indexes[i]}")
    if origin == "end":
        remainder += file_size(path(index_pos))
    while remainder < 0 and index_pos > 0:
        index_pos -= 1
        remainder += file_size(path(index_pos))
    if remainder < 0:
        return indexes[index_pos], 0
    while remainder > file_size(path(index_pos)) and index_pos < len(indexes) - 1:
        remainder -= file_size(path(index_pos))
        index_pos += 1
    return indexes[index_pos], min(remainder, file_size(path(index_pos)))


async def stream_logs(out: StreamOut, logs_dir: str, params: dict, start) -> None:
    task, kind, follow = params["task"], params["type"], params["follow"]
    index, position = start
    ticker = Ticker()
    while True:
        name = f"{task}.{kind}.{index}"
        try:
            with open(os.path.join(logs_dir, name), "rb") as handle:
                if os.fstat(handle.fileno()).st_size < position:
                    position = 0  # truncated: Nomad restarts reading at 0
                position = await send_chunks(out, handle, position, f"alloc/logs/{name}")
                newer = [i for i in log_files(logs_dir, task, kind) if i > index]
                if newer:
                    position = await send_chunks(out, handle, position, f"alloc/logs/{name}")  # the "one more read"
        except FileNotFoundError:
            newer = [i for i in log_files(logs_dir, task, kind) if i > index]
        if newer:
            index, position = newer[0], 0
            continue
        if not follow:
            return
        await ticker.maybe_beat(out)
        await asyncio.sleep(BATCH_SECONDS)


async def logs_handler(api, request, alloc_id: str) -> web.StreamResponse:
    params = logs_params(request.query) if alloc_id else None
    target = Target(api, request, alloc_id)
    out = StreamOut(request, "text/plain" if params["plain"] else "application/json", params["plain"])
    try:
        # Row 23 of the changes reference: the hosting client answers a missing capability 403 since 1.11.1
        target.require(500 if target.token_error else api.emulator.version.logs_denied_status, "read-logs", "read-fs")
        task = target.alloc.tasks.get(params["task"])
        if task is None:
            raise HttpError(400, f'unknown task name "{params["task"]}"')
        if not task.started_at:
            raise HttpError(404, f'task "{task.name}" not started yet. No logs available')
        logs_dir = os.path.join(target.root, "alloc", "logs")
        indexes = log_files(logs_dir, task.name, params["type"])
        if not indexes:
            raise HttpError(404, f'log entry for task "{task.name}" and log type "{params["type"]}" not found')
        start = find_closest(logs_dir, task.name, params["type"], indexes, params["origin"], params["offset"])
        await stream_logs(out, logs_dir, params, start)
    except ConnectionResetError:
        return client_gone(request, out)
    except HttpError as err:
        return await out.finish(err)
    return await out.finish()


# --- stream ----------------------------------------------------------------------------------------
async def stream_file(out: StreamOut, host: str, given: str, position: int, follow: bool) -> None:
    ticker = Ticker()
    with open(host, "rb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        while True:
            position = await send_chunks(out, handle, position, given)
            if not follow:
                return
            try:
                now = os.stat(host)
            except FileNotFoundError:
                now = None
            if now is None or now.st_ino != inode:
                await out.frame(file=given, event="file deleted", offset=position)
                return
            if now.st_size < position:
                position = 0
                data = handle.read(FRAME_DATA_MAX) if handle.seek(0) == 0 else b""
                position = len(data)
                await out.frame(data=data, file=given, event="file truncated", offset=position)
                continue
            await ticker.maybe_beat(out)
            await asyncio.sleep(POLL_SECONDS)


async def stream_handler(api, request, alloc_id: str) -> web.StreamResponse:
    query = request.query
    if alloc_id and not query.get("path", ""):
        raise HttpError(400, "must provide a file name")
    follow = bool_param(query, "follow", True, 500)
    offset = int_param(query, "offset", 500)
    origin = origin_param(query)
    target = Target(api, request, alloc_id)
    out = StreamOut(request, "text/plain; charset=utf-8", plain=False)
    try:
        target.require(403, "read-fs")
        path = query["path"]
        host = readable_file(target, path, stat_status=400, secret_status=500)
        size = os.path.getsize(host)
        position = max(0, size - offset) if origin == "end" else offset
        if position < 0:
            raise HttpError(500, f"can't seek to offset '\ufffd': seek {host}: invalid argument")
        await stream_file(out, host, path, position, follow)
    except ConnectionResetError:
        return client_gone(request, out)
    except HttpError as err:
        return await out.finish(err)
    return await out.finish()


# --- cat / readat ------------------------------------------------------------------------------------
_SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
                     "X-Content-Type-Options": "nosniff", "X-XSS-Protection": "1; mode=block"}


def read_range(api, request, alloc_id: str, readat: bool) -> bytes:
    query = request.query
    if not alloc_id:
        raise HttpError(200, "must provide a valid alloc id")
    path = query.get("path", "")
    if not path:
        raise HttpError(400, "must provide a file name")
    offset = int_param(query, "offset", 400, required=True) if readat else 0
    limit = int_param(query, "limit", 400) if readat else 0
    target = Target(api, request, alloc_id)
    target.require(403, "read-fs")
    host = readable_file(target, path, stat_status=400, secret_status=500)
    if offset < 0:
        raise HttpError(500, f"can't seek to offset '\ufffd': seek {host}: invalid argument")
    with open(host, "rb") as handle:
        handle.seek(offset)
        return handle.read(limit) if limit > 0 else handle.read()


def read_handler(readat: bool):
    async def handler(api, request, alloc_id: str) -> web.Response:
        try:
            data = read_range(api, request, alloc_id, readat)
        except HttpError as err:  # every cat/readat error is a 200 with the text (reference §2.3)
            return error_response(200, err.body)
        if not data:
            return web.Response(status=200, body=b"", content_type="text/plain", charset="utf-8")
        ctype = sniff(data[:512])
        if ctype.startswith("text/html"):
            ctype = "text/plain"
        response = web.Response(status=200, body=data, headers=_SECURITY_HEADERS)
        response.headers["Content-Type"] = ctype
        return response
    return handler


# --- ls / stat and routing ---------------------------------------------------------------------------
async def ls_handler(api, request, alloc_id: str) -> web.Response:
    target = Target(api, request, alloc_id)
    target.require(403, "read-fs")
    body = ls_body(target, request.query.get("path", "") or "/")
    return web.Response(status=200, body=json.dumps(body, separators=(",", ":")).encode(),
                        content_type="application/json")


async def stat_handler(api, request, alloc_id: str) -> web.Response:
    if alloc_id and not request.query.get("path", ""):
        raise HttpError(400, "must provide a file name")
    target = Target(api, request, alloc_id)
    target.require(403, "read-fs")
    body = stat_body(target, request.query["path"])
    return web.Response(status=200, body=json.dumps(body, separators=(",", ":")).encode(),
                        content_type="application/json")


HANDLERS = {"ls": ls_handler, "stat": stat_handler, "cat": read_handler(False), "readat": read_handler(True),
            "stream": stream_handler, "logs": logs_handler}


async def dispatch(api, request, tail: str) -> web.StreamResponse:
    """tail = the path after /v1/client/fs/; the alloc ID is everything after `<op>/`."""
    op, slash, alloc_id = tail.partition("/")
    if op not in OPS or not slash:
        raise HttpError(404, "Invalid method")
    return await HANDLERS[op](api, request, alloc_id)
