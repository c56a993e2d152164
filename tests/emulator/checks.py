# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Nomad service checks, run for real against the tasks, and `GET /v1/allocation/:id/checks`.

Like Nomad 1.6's checks hook for `provider = "nomad"` services (reference: nomad-fs-logs-checks-behaviour.md §3):
when an allocation starts running, every check of its group's services gets a `pending` result
(`nomad: waiting to run`), runs first after half its interval and then every interval:
- `script`: the command runs in the task's directory with the task's environment; exit 0 is success, anything
  else (or the timeout) failure; the output is what the command printed.
- `http`: GET http://127.0.0.1:<port><path>; 200 -> `nomad: http ok`; another status below 400 -> success with
  the first 3 KiB of the body; 400 and above -> failure with the body; a transport error -> `nomad: <error>`.
- `tcp`: a connection to 127.0.0.1:<port>; `nomad: tcp ok`, or the dial error.
When the allocation stops, its results are purged (the endpoint answers `null`, as Nomad does after PreKill).
Check results never move an index: Nomad's endpoint does not block either.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time

import aiohttp

from .httpjson import HttpError, json_response
from .state import Allocation, Emulator, duration_seconds

CHECK_TYPES = ("script", "http", "tcp")
MODES = ("healthiness", "readiness")
MAX_HTTP_OUTPUT = 3 * 1024
PENDING_OUTPUT = "nomad: waiting to run"
DEFAULT_INTERVAL = 10.0
DEFAULT_TIMEOUT = 2.0
STATE_ATTRIBUTE = "check_state"


class CheckSpecError(ValueError):
    """A `checks:` entry of a scenario that cannot run; str() says what to fix."""


# --- scenario --------------------------------------------------------------------------------------
def check_entries(group_spec: dict) -> list:
    """(service spec, check spec) for every check of the group's services, in scenario order."""
    return [(service, check) for service in group_spec.get("services") or ()
            for check in service.get("checks") or ()]


def validate_group(group_spec: dict) -> None:
    """Raise CheckSpecError for a check the emulator could not run."""
    task_names = [str(task["name"]) for task in group_spec.get("tasks") or ()]
    for service, check in check_entries(group_spec):
        where = f"service {service.get('name')!r} check {check.get('name')!r}"
        if not check.get("name"):
            raise CheckSpecError(f"service {service.get('name')!r}: every check needs a name")
        kind = check.get("type")
        if kind not in CHECK_TYPES:
            raise CheckSpecError(f"{where}: type must be one of {', '.join(CHECK_TYPES)}, got {kind!r}")
        if kind == "script" and not check.get("command"):
            raise CheckSpecError(f"{where}: a script check needs a command")
        if kind in ("http", "tcp") and not (check.get("port") or service.get("port")):
            raise CheckSpecError(f"{where}: an {kind} check needs a port (on the check or its service)")
        if check.get("mode", "healthiness") not in MODES:
            raise CheckSpecError(f"{where}: mode must be healthiness or readiness")
        if check.get("task") and str(check["task"]) not in task_names:
            raise CheckSpecError(f"{where}: task {check['task']!r} is not in the group")


class Check:
    """One check of one allocation: its spec and its last result."""

    def __init__(self, alloc: Allocation, service: dict, spec: dict):
        self.alloc = alloc
        self.service = str(service["name"])
        self.name = str(spec["name"])
        self.type = str(spec["type"])
        self.task = str(spec.get("task") or first_main_task(alloc))
        self.command = spec.get("command")
        self.path = str(spec.get("path", "/"))
        self.port = int(spec.get("port") or service.get("port") or 0)
        self.interval = duration_seconds(spec.get("interval"), DEFAULT_INTERVAL)
        self.timeout = duration_seconds(spec.get("timeout"), DEFAULT_TIMEOUT)
        on_update = str(spec.get("on_update", "require_healthy"))
        self.mode = "readiness" if on_update == "ignore" else str(spec.get("mode", "healthiness"))
        self.id = check_id(alloc, self, on_update)
        self.result = self.make_result("pending", PENDING_OUTPUT)

    def make_result(self, status: str, output: str, status_code: int = 0) -> dict:
        # The reflection encoder of the docs sample: keys sorted by name, StatusCode and Task omitted when empty.
        result = {"Check": self.name, "Group": self.alloc.name, "ID": self.id, "Mode": self.mode, "Output": output,
                  "Service": self.service, "Status": status, "Timestamp": int(time.time())}
        if status_code:
            result["StatusCode"] = status_code
        return dict(sorted(result.items()))

    async def run_once(self) -> None:
        runner = {"script": self.run_script, "http": self.run_http, "tcp": self.run_tcp}[self.type]
        self.result = await runner()

    async def run_script(self) -> dict:
        task = self.alloc.tasks.get(self.task)
        if task is None or task.state != "running":
            return self.make_result("failure", f"nomad: task {self.task} is not running")
        argv = ["/bin/sh", "-c", self.command] if isinstance(self.command, str) else [str(a) for a in self.command]
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=task.task_dir or None, env=dict(task.env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        try:
            output, _stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except asyncio.TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            return self.make_result("failure", "nomad: context deadline exceeded")
        text = output.decode("utf-8", "replace")
        return self.make_result("success" if process.returncode == 0 else "failure", text)

    async def run_http(self) -> dict:
        url = f"http://127.0.0.1:{self.port}{self.path}"
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(url, allow_redirects=False) as response:
                    body = (await response.content.read(MAX_HTTP_OUTPUT)).decode("utf-8", "replace")
                    status = response.status
        except asyncio.TimeoutError:
            return self.make_result("failure", f'nomad: Get "{url}": context deadline exceeded')
        except aiohttp.ClientError as err:
            return self.make_result("failure", f'nomad: Get "{url}": {_dial_error(self.port, err)}')
        if status == 200:
            return self.make_result("success", "nomad: http ok", status)
        return self.make_result("success" if status < 400 else "failure", body, status)

    async def run_tcp(self) -> dict:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), self.timeout)
        except asyncio.TimeoutError:
            return self.make_result("failure", f"dial tcp 127.0.0.1:{self.port}: i/o timeout")
        except OSError as err:
            return self.make_result("failure", _dial_error(self.port, err))
        writer.close()
        return self.make_result("success", "nomad: tcp ok")

    async def observe(self) -> None:
        await asyncio.sleep(self.interval / 2)
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)


def _dial_error(port: int, err: Exception) -> str:
    cause = getattr(err, "os_error", None) or err
    if isinstance(cause, ConnectionRefusedError):
        return f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    return f"dial tcp 127.0.0.1:{port}: {cause}"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def first_main_task(alloc: Allocation) -> str:
    main = alloc.main_tasks or list(alloc.tasks.values())
    return main[0].name if main else ""


def check_id(alloc: Allocation, check: Check, on_update: str) -> str:
    """32 hex digits from the same fields Nomad hashes (nomad/structs/checks.go; row 27: + tls_skip_verify in 1.9.6)."""
    parts = [alloc.id, alloc.task_group, "", check.name, check.type, str(check.port), on_update, "auto",
             f"{check.interval}", f"{check.timeout}", "http" if check.type == "http" else "", check.path, "GET"]
    if alloc.version.check_id_hashes_tls_skip_verify:
        parts.append("false")   # the emulator's checks never skip TLS verification
    return hashlib.md5("|".join(parts).encode(), usedforsecurity=False).hexdigest()


# --- lifecycle (called by the supervisor) ----------------------------------------------------------
class AllocationChecks:
    def __init__(self, checks: list):
        self.checks = checks
        self.runners: list = []

    def results(self) -> dict:
        return {check.id: check.result for check in self.checks}


def start_checks(emulator: Emulator, alloc: Allocation) -> None:
    """Start observing the allocation's checks (when it starts running); once per allocation."""
    entries = check_entries(alloc.group_spec or {})
    if alloc.virtual or not entries or getattr(alloc, STATE_ATTRIBUTE, None) is not None:
        return
    state = AllocationChecks([Check(alloc, service, spec) for service, spec in entries])
    setattr(alloc, STATE_ATTRIBUTE, state)
    supervisor = emulator.supervisor
    state.runners = [supervisor.spawn(check.observe()) for check in state.checks]


def stop_checks(alloc: Allocation) -> None:
    """Stop observing and purge the results (Nomad's PreKill hook); the endpoint answers null after this."""
    state = getattr(alloc, STATE_ATTRIBUTE, None)
    if state is None:
        return
    for runner in state.runners:
        runner.cancel()
    state.checks = []
    state.runners = []
    setattr(alloc, STATE_ATTRIBUTE, False)  # False: stopped, never started again


def current_results(alloc: Allocation):
    """The body of the checks endpoint: a dict keyed by check ID, or None (Nomad's `null`)."""
    state = getattr(alloc, STATE_ATTRIBUTE, None)
    if not state:
        return None
    return state.results()


# --- HTTP --------------------------------------------------------------------------------------------
async def allocation_checks(api, request, alloc_id: str):
    """GET (any method: Nomad has no method check) /v1/allocation/:id/checks and /v1/client/allocation/:id/checks.

    `index`/`wait`/`stale` never block; a bad value writes 400 and its text, then the normal body is appended
    (the handler ignores parse()'s error).
    """
    from .server import QueryOptions  # the server module imports this one

    try:
        parse_error = QueryOptions(request).parse_error
    except HttpError as err:
        parse_error = err.body
    api.check_region(request)
    token = api.authenticate(request)
    alloc = api.lookup_exact(alloc_id)
    if alloc is None:
        raise HttpError(404, f'Unknown allocation "{alloc_id}"', rpc=True)
    api.require(token, alloc.namespace, "read-job")
    results = current_results(alloc)
    body = b"null" if results is None else json.dumps(results, separators=(",", ":")).encode()
    response = json_response(request, None, raw=body)
    if parse_error:
        response.set_status(400)
        response.body = parse_error.encode() + body
    return response
