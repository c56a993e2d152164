# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The aiohttp application: routing, Nomad's allocation endpoints, the control API and fault injection."""
from __future__ import annotations

import asyncio
import json
import random
import ssl
import uuid

from aiohttp import web

from . import acl as acl_mod
from .faults import HOSTILE_ACTIONS, STREAM_ACTIONS, FaultRuleError
from .httpjson import HttpError, decode_go_struct, error_response, json_response, wants_pretty
from .jobs import Jobs
from .nomadtime import GoParseBoolError, parse_go_bool, parse_go_duration
from .pagination import ListRequest, list_page
from .nodes import Nodes
from .readers import Readers
from .scenario import new_allocation
from .state import ALLOC_MIGRATING, Allocation, Emulator, new_id
from .tasks import Supervisor, TaskNotRunning
from .uuidindex import IndexError_, lookup_error, parse_uuid

EMULATOR_KEY = "emulator"
MAX_BLOCK_SECONDS = 300.0
JITTER_FRACTION = 16
EXEC_ROUTE_NAME = "nomad-exec"
CLIENT_ACTIONS_NOT_EMULATED = ("stats", "snapshot", "gc")
EMPTY_MEANS_DEFAULT = ("no_shutdown_delay", "reschedule")  # stop's parseBool skips empty values (1.11 http.go)


# --- query parsing (reference §3) -------------------------------------------------------------------
class QueryOptions:
    def __init__(self, request):
        query = request.query
        version = request.app[EMULATOR_KEY].version
        self.region = query.get("region", "")
        self.stale_error = _stale_error(query, version)
        self.per_page_error = ""
        if version.query_errors_end_request and not self.stale_error and _per_page_invalid(query.get("per_page")):
            self.per_page_error = "Expect a number for `per_page` query string parameter"
        self.prefix = query.get("prefix", "")
        self.namespace = query.get("namespace", "") or "default"
        self.next_token = query.get("next_token", "")
        self.per_page = _parse_per_page(query.get("per_page"))
        self.filter_text = query.get("filter", "")
        self.reverse = query.get("reverse") == "true"
        self.min_index = 0
        self.wait = 0.0
        # Nomad's parseWait: empty values are ignored, and `wait` is checked before `index`.
        if query.get("wait", ""):
            try:
                self.wait = parse_go_duration(query["wait"])
            except ValueError as err:
                raise HttpError(400, "Invalid wait time") from err
        if query.get("index", ""):
            try:
                self.min_index = _parse_uint64(query["index"])
            except ValueError as err:
                raise HttpError(400, "Invalid index") from err

    @property
    def parse_error(self) -> str:
        """The text parse() answers 400 with (the stale or per_page check), or ""."""
        return self.stale_error or self.per_page_error


def _stale_error(query, version) -> str:
    value = query.get("stale", "")
    if value == "":
        return ""
    try:
        parse_go_bool(value)
    except GoParseBoolError:
        text = "Expect `true` or `false` for `stale` query string parameter"
        return text if version.query_errors_end_request else f"{text}, got {value}"
    return ""


def _per_page_invalid(text) -> bool:
    """Nomad 1.8+ refuses what strconv.ParseInt(v, 10, 32) cannot parse (row 4, §2.9 of the changes reference)."""
    return text not in (None, "") and _go_int32(text) is None


def _parse_uint64(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(text)
    value = int(text)
    if value >= 2 ** 64:
        raise ValueError(text)
    return value


def _parse_per_page(text):
    """strconv.ParseInt(v, 10, 32); anything unparsable is ignored (no paging) before Nomad 1.8."""
    value = None if text is None else _go_int32(text)
    return value or 0


def _go_int32(text: str):
    """strconv.ParseInt(text, 10, 32), or None."""
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or not body.isascii():
        return None
    value = int(text)
    return value if -2 ** 31 <= value < 2 ** 31 else None


def _parse_bool_param(request, name: str, default: bool) -> bool:
    if name not in request.query or (name in EMPTY_MEANS_DEFAULT and request.query[name] == ""):
        return default
    value = request.query[name]
    try:
        return parse_go_bool(value)
    except GoParseBoolError as err:
        raise HttpError(500, f'Failed to parse value of "{name}" ({value}) as a bool: {err}') from err


def block_seconds(wait: float) -> float:
    seconds = MAX_BLOCK_SECONDS if wait <= 0 or wait > MAX_BLOCK_SECONDS else wait
    return seconds + random.uniform(0, seconds / JITTER_FRACTION)


class Api:
    """Nomad's allocation endpoints over an Emulator."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator

    # --- shared steps ------------------------------------------------------------------------------
    def check_region(self, request) -> None:
        region = request.query.get("region", "")
        if region and region != self.emulator.region:
            raise HttpError(500, "No path to region")

    def authenticate(self, request):
        try:
            return self.emulator.authenticate(request)
        except acl_mod.PermissionDenied as err:
            raise HttpError(403, str(err)) from err

    def require(self, token, namespace: str, capability: str) -> None:
        if token is not None and not token.allows(namespace, capability):
            raise HttpError(403, acl_mod.PERMISSION_DENIED)

    def lookup_exact(self, alloc_id: str):
        try:
            hex_id = parse_uuid(alloc_id, exact=True)
        except IndexError_ as err:
            raise HttpError(500, lookup_error(err), rpc=True) from err
        return self.emulator._alloc_by_hex.get(hex_id)

    async def block(self, options: QueryOptions, current_index) -> None:
        if options.min_index <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_seconds(options.wait)
        while current_index() <= options.min_index:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self.emulator.wait_for_change(remaining)

    def read_meta(self, index: int) -> dict:
        return {"X-Nomad-Index": str(index), "X-Nomad-KnownLeader": "true", "X-Nomad-LastContact": "0"}

    @staticmethod
    def finish_read(request, options: QueryOptions, response: web.Response) -> web.Response:
        """Handlers that ignore parse()'s result: a 400 status with the message written before the normal body."""
        if options.parse_error:
            response.set_status(400)
            response.body = options.parse_error.encode() + (response.body or b"")
        return response

    def refuse_bad_query(self, options: QueryOptions) -> None:
        """Handlers that test parse()'s result answer only its message since Nomad 1.8 (rows 4-5, §2.9)."""
        if options.parse_error and self.emulator.version.query_errors_end_request:
            raise HttpError(400, options.parse_error)

    # --- GET /v1/allocations --------------------------------------------------------------------------
    async def list_allocations(self, request) -> web.Response:
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        options = QueryOptions(request)
        self.refuse_bad_query(options)
        resources = _parse_bool_param(request, "resources", False)
        task_states = _parse_bool_param(request, "task_states", True)
        self.check_region(request)
        token = self.authenticate(request)
        list_request = ListRequest(namespace=options.namespace, prefix=options.prefix, per_page=options.per_page,
                                   next_token=options.next_token, reverse=options.reverse,
                                   filter_text=options.filter_text,
                                   string_compare=self.emulator.settings["string_token_compare"])
        if token is not None:
            list_request.allowed_namespaces = self.readable_namespaces(token, options.namespace)
        await self.block(options, lambda: self.emulator.allocs_index)
        page = list_page(self.emulator, list_request)
        headers = self.read_meta(self.emulator.allocs_index)
        if page.next_token:
            headers["X-Nomad-NextToken"] = page.next_token
        if not resources and task_states and not wants_pretty(request):
            raw = b"[" + b",".join(alloc.stub_json() for alloc in page.allocations) + b"]"
            response = json_response(request, None, headers=headers, raw=raw)
        else:
            stubs = [alloc.stub(resources=resources, task_states=task_states) for alloc in page.allocations]
            response = json_response(request, stubs, headers=headers)
        return self.finish_read(request, options, response)

    def readable_namespaces(self, token, namespace: str) -> set:
        if namespace == "*":
            if not token.allows_in_any(self.emulator.namespaces, "read-job"):
                raise HttpError(403, acl_mod.PERMISSION_DENIED)
            return {ns for ns in self.emulator.namespaces if token.allows(ns, "read-job")}
        self.require(token, namespace, "read-job")
        return {namespace}

    # --- /v1/allocation/<id>[/<action>] -------------------------------------------------------------
    async def allocation_specific(self, request, tail: str) -> web.Response:
        parts = tail.split("/")
        if len(parts) > 2:
            raise HttpError(404, "resource not found")
        alloc_id = parts[0]
        if len(parts) == 1:
            return await self.get_allocation(request, alloc_id)
        action = parts[1]
        if action == "stop":
            return await self.stop_allocation(request, alloc_id)
        if action == "services":
            return await self.allocation_services(request, alloc_id)
        if action == "checks":
            return await self.allocation_checks(request, alloc_id)
        raise HttpError(404, "resource not found")

    async def get_allocation(self, request, alloc_id: str) -> web.Response:
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        options = QueryOptions(request)
        self.refuse_bad_query(options)
        self.check_region(request)
        token = self.authenticate(request)
        self.lookup_exact(alloc_id)  # validates the ID (500 texts) before blocking

        def current_index():
            found = self.lookup_exact(alloc_id)
            return found.modify_index if found else self.emulator.allocs_index

        await self.block(options, current_index)
        alloc = self.lookup_exact(alloc_id)
        if alloc is None:
            meta = self.read_meta(self.emulator.allocs_index)
            raise HttpError(404, "alloc not found", meta)
        if token is not None and not token.allows(alloc.namespace, "read-job"):
            raise HttpError(500, f'Unknown allocation "{alloc_id}"', rpc=True)
        response = json_response(request, alloc.full(), headers=self.read_meta(alloc.modify_index))
        return self.finish_read(request, options, response)

    async def stop_allocation(self, request, alloc_id: str) -> web.Response:
        if request.method not in ("POST", "PUT"):
            raise HttpError(405, "Invalid method")
        no_shutdown_delay, reschedule = self.stop_parameters(request)
        self.check_region(request)
        token = self.authenticate(request)
        if not alloc_id:
            raise HttpError(500, "Missing allocation ID", rpc=True)
        alloc = self.lookup_exact(alloc_id)
        if alloc is None:
            raise HttpError(404, "allocation not found")
        self.require(token, alloc.namespace, "alloc-lifecycle")
        alloc.desired_transition["Migrate"] = True
        alloc.desired_transition["NoShutdownDelay"] = no_shutdown_delay
        if reschedule is not None:
            alloc.desired_transition["Reschedule"] = reschedule
        index = self.emulator.touch(alloc)
        eval_id = new_id()
        self.schedule_stop(alloc, eval_id, reschedule=bool(reschedule))
        return json_response(request, {"EvalID": eval_id, "Index": index}, headers={"X-Nomad-Index": str(index)})

    def stop_parameters(self, request) -> tuple:
        """(no_shutdown_delay, reschedule); reschedule is None before Nomad 1.11, which has no such parameter."""
        if not self.emulator.version.stop_takes_reschedule:
            value = request.query.get("no_shutdown_delay", "")
            try:
                return (parse_go_bool(value) if value else False), None
            except GoParseBoolError as err:
                raise HttpError(500, f"no_shutdown_delay value is not a boolean: {err}") from err
        # 1.11 parses both with parseBool: rows 12-14 of the changes reference
        return _parse_bool_param(request, "no_shutdown_delay", False), _parse_bool_param(request, "reschedule", False)

    def schedule_stop(self, alloc: Allocation, eval_id: str, *, reschedule: bool = False) -> None:
        """What the scheduler does with the alloc-stop evaluation: stop it, replace it (service jobs).

        A batch allocation is replaced when the stop asked for `reschedule` (1.11, row 12/15 of the changes
        reference) and, at 1.10.3-1.10.5, because the client marks its killed tasks failed and the reschedule
        policy applies (row 15; the emulator places the replacement at once, without the policy's delay).
        """
        if alloc.desired_status == "stop":
            return
        alloc.desired_status = "stop"
        alloc.desired_description = ALLOC_MIGRATING
        self.emulator.touch(alloc)
        supervisor = self.emulator.supervisor
        if alloc.virtual:
            supervisor.stop_virtual(alloc)
            return
        fails_tasks = alloc.job["Type"] == "batch" and self.emulator.version.batch_stop_fails_tasks
        if alloc.job["Type"] == "service" or (alloc.job["Type"] == "batch" and (reschedule or fails_tasks)):
            self.replace(alloc)
        supervisor.spawn(supervisor.stop_allocation(alloc, fail_tasks=fails_tasks))

    def replace(self, alloc: Allocation) -> Allocation:
        group_spec = alloc.group_spec
        replacement = new_allocation(self.emulator, alloc.job, alloc.group, group_spec, alloc.index_in_group,
                                     alloc.node, self.emulator.bump())
        replacement.previous_allocation = alloc.id
        self.emulator.add_alloc(replacement)
        self.emulator.allocs_index = replacement.create_index
        alloc.next_allocation = replacement.id
        self.emulator.touch(alloc)
        self.emulator.supervisor.start_allocation(replacement)
        return replacement

    async def allocation_services(self, request, alloc_id: str) -> web.Response:
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        options = QueryOptions(request)
        self.refuse_bad_query(options)
        self.check_region(request)
        token = self.authenticate(request)
        self.require(token, options.namespace, "read-job")
        self.lookup_exact(alloc_id)
        await self.block(options, lambda: self.emulator.services_index)
        alloc = self.lookup_exact(alloc_id)
        if alloc is None or alloc.namespace != options.namespace:
            raise HttpError(404, "allocation not found", {"X-Nomad-Index": "0"})
        response = json_response(request, list(alloc.services),
                                 headers=self.read_meta(max(1, self.emulator.services_index)))
        return self.finish_read(request, options, response)

    async def allocation_checks(self, request, alloc_id: str) -> web.Response:
        from .checks import allocation_checks
        return await allocation_checks(self, request, alloc_id)

    # --- /v1/client/allocation/<id>/<action> ------------------------------------------------------
    async def client_allocation(self, request, tail: str) -> web.Response:
        parts = tail.split("/")
        if len(parts) != 2:
            raise HttpError(404, "resource not found")
        alloc_id, action = parts
        if action == "signal":
            return await self.signal(request, alloc_id)
        if action == "restart":
            return await self.restart(request, alloc_id)
        if action == "checks":
            return await self.allocation_checks(request, alloc_id)
        if action in CLIENT_ACTIONS_NOT_EMULATED or action == "exec":
            raise HttpError(501, f"the emulator does not implement /v1/client/allocation/:id/{action}")
        raise HttpError(404, "resource not found")

    async def client_target(self, request, alloc_id: str) -> Allocation:
        """Server-side steps shared by signal and restart: region, token, lookup, alloc-lifecycle."""
        self.check_region(request)
        token = self.authenticate(request)
        alloc = self.lookup_exact(alloc_id)
        if alloc is None:
            raise HttpError(404, f'Unknown allocation "{alloc_id}"', rpc=True)
        self.require(token, alloc.namespace, "alloc-lifecycle")
        return alloc

    async def signal(self, request, alloc_id: str) -> web.Response:
        if request.method not in ("POST", "PUT"):
            raise HttpError(405, "Invalid method")
        text = await request.text()
        if not text:
            raise HttpError(400, "Failed to decode body: Request body is empty")
        try:
            body = decode_go_struct(text, {"AllocID": str, "Task": str, "Signal": str}, "AllocSignalRequest")
        except ValueError as err:
            raise HttpError(400, f"Failed to decode body: {err}") from err
        alloc = await self.client_target(request, alloc_id)
        signal_name = body.get("Signal", "")
        task_name = body.get("Task", "")
        supervisor = self.emulator.supervisor
        if task_name:
            task = alloc.tasks.get(task_name)
            if task is None:
                raise HttpError(500, "Task not found", rpc=True)
            try:
                supervisor.signal_task(alloc, task, signal_name)
            except TaskNotRunning as err:
                raise HttpError(500, str(err), rpc=True) from err
        else:
            errors = []
            for task in alloc.tasks.values():
                try:
                    supervisor.signal_task(alloc, task, signal_name)
                except TaskNotRunning as err:
                    errors.append(f"Failed to signal task: {task.name}, err: {err}")
            if errors:
                raise HttpError(500, multierror(errors), rpc=True)
        return json_response(request, {"Index": 0})

    async def restart(self, request, alloc_id: str) -> web.Response:
        text = await request.text()
        body = {}
        if text.strip():
            try:
                body = decode_go_struct(text, {"AllocID": str, "TaskName": str, "AllTasks": bool},
                                        "AllocRestartRequest")
            except ValueError as err:
                raise HttpError(500, str(err)) from err
        alloc = await self.client_target(request, alloc_id)
        task_name = body.get("TaskName", "")
        all_tasks = bool(body.get("AllTasks", False))
        if task_name and all_tasks:
            raise HttpError(500, "task name cannot be set when restarting all tasks", rpc=True)
        supervisor = self.emulator.supervisor
        if task_name:
            task = alloc.tasks.get(task_name)
            if task is None:
                raise HttpError(500, f"Could not find task runner for task: {task_name}", rpc=True)
            if task.state != "running":
                raise HttpError(500, "Task not running", rpc=True)
            await supervisor.restart_tasks(alloc, [task])
        else:
            if alloc.terminal:
                raise HttpError(500, "restart of an alloc that should not run", rpc=True)
            if all_tasks:
                targets = list(alloc.tasks.values())
            else:
                targets = [task for task in alloc.tasks.values() if task.state == "running"]
            await supervisor.restart_tasks(alloc, targets, rerun_prestart=all_tasks)
        return json_response(request, {"Index": 0})


def multierror(errors: list) -> str:
    """hashicorp/go-multierror's default format."""
    head = "1 error occurred:" if len(errors) == 1 else f"{len(errors)} errors occurred:"
    return head + "\n" + "".join(f"\t* {error}\n" for error in errors) + "\n"


# --- routing --------------------------------------------------------------------------------------
async def nomad_dispatch(request) -> web.StreamResponse:
    api: Api = request.app["api"]
    path = request.path
    try:
        if path == "/v1/allocations":
            return await api.list_allocations(request)
        if path.startswith("/v1/allocation/"):
            return await api.allocation_specific(request, path[len("/v1/allocation/"):])
        if path.startswith("/v1/client/fs/"):
            from . import fs
            return await fs.dispatch(api, request, path[len("/v1/client/fs/"):])
        if path.startswith("/v1/client/allocation/"):
            return await api.client_allocation(request, path[len("/v1/client/allocation/"):])
        answered = await request.app["jobs"].dispatch(request)
        if answered is not None:
            return answered
        answered = await request.app["nodes"].dispatch(request)
        if answered is not None:
            return answered
        answered = await request.app["readers"].dispatch(request)
        if answered is not None:
            return answered
    except HttpError as err:
        return err.response(request.app[EMULATOR_KEY].settings["rpc_error_prefix"])
    return web.Response(status=404, body=b"")


async def exec_route(request) -> web.StreamResponse:
    try:
        from . import exec_ws
    except ModuleNotFoundError as err:
        if err.name != f"{__package__}.exec_ws":
            raise
        return error_response(501, "exec is not available yet: tests/emulator/exec_ws.py is missing")
    return await exec_ws.handle_exec(request)


# --- control API (never subject to ACL or faults) -------------------------------------------------
async def control_tasks(request) -> web.Response:
    emulator: Emulator = request.app[EMULATOR_KEY]
    alloc = emulator.find_alloc(request.match_info["alloc_id"])
    if alloc is None:
        return error_response(404, "alloc not found")
    return web.json_response({name: task.control_view() for name, task in alloc.tasks.items()})


async def control_add_fault(request) -> web.Response:
    emulator: Emulator = request.app[EMULATOR_KEY]
    try:
        rule = emulator.faults.add(await request.json())
    except json.JSONDecodeError:
        return error_response(400, "a fault rule must be JSON")
    except FaultRuleError as err:
        return error_response(400, str(err))
    return web.json_response(rule)


async def control_list_faults(request) -> web.Response:
    return web.json_response(request.app[EMULATOR_KEY].faults.rules())


async def control_clear_faults(request) -> web.Response:
    request.app[EMULATOR_KEY].faults.clear()
    return web.json_response({})


async def control_requests(request) -> web.Response:
    emulator: Emulator = request.app[EMULATOR_KEY]
    return web.json_response({"counts": dict(emulator.request_counts), "blocking": dict(emulator.blocking_counts)})


async def control_reset_requests(request) -> web.Response:
    request.app[EMULATOR_KEY].request_counts.clear()
    request.app[EMULATOR_KEY].blocking_counts.clear()
    return web.json_response({})


async def control_get_settings(request) -> web.Response:
    return web.json_response(request.app[EMULATOR_KEY].settings)


async def control_set_settings(request) -> web.Response:
    emulator: Emulator = request.app[EMULATOR_KEY]
    try:
        changes = await request.json()
    except json.JSONDecodeError:
        return error_response(400, "settings must be a JSON object")
    if not isinstance(changes, dict):
        return error_response(400, "settings must be a JSON object")
    unknown = sorted(set(changes) - set(emulator.settings))
    if unknown:
        return error_response(400, f"unknown settings: {', '.join(unknown)}")
    emulator.settings.update({key: bool(value) for key, value in changes.items()})
    return web.json_response(emulator.settings)


# --- faults and request counting ------------------------------------------------------------------
@web.middleware
async def faults_middleware(request, handler):
    if request.path.startswith("/_emulator/"):
        return await handler(request)
    emulator: Emulator = request.app[EMULATOR_KEY]
    route = request.match_info.route
    if getattr(route, "name", None) != EXEC_ROUTE_NAME:
        emulator.record_request(request.method, request.path, blocking=bool(request.query.get("index")))
    rule = emulator.faults.take(None, request.method, request.path)
    if rule is None:
        return await handler(request)
    action = rule["action"]
    if action == "status":
        headers = {"Retry-After": str(rule["retry_after"])} if rule.get("retry_after") is not None else {}
        return error_response(int(rule.get("status", 500)), str(rule.get("body", "")), headers)
    if action == "delay":
        await asyncio.sleep(float(rule.get("delay_ms", 1000)) / 1000.0)
        return await handler(request)
    if action == "drop":
        return await drop_connection(request)
    if action in HOSTILE_ACTIONS:
        return await hostile_answer(request, handler, rule)
    if action in STREAM_ACTIONS:
        request["stream_fault"] = rule  # streamed answers (fs logs/stream) apply it mid-frame themselves
    response = await handler(request)
    if response.prepared:
        return response
    return await drop_mid_body(request, response, stall=action == "stall")


async def hostile_answer(request, handler, rule: dict) -> web.StreamResponse:
    """A broken or hostile endpoint (faults.HOSTILE_ACTIONS): a redirect, a rewritten body, endless pages."""
    if rule["action"] == "redirect":
        return web.Response(status=int(rule.get("status", 302)), headers={"Location": rule["location"]})
    response = await handler(request)
    if response.prepared or not isinstance(response, web.Response):
        return response
    if rule["action"] == "rewrite_body" and response.body:
        body = bytes(response.body) if isinstance(response.body, (bytes, bytearray)) else bytes(response.body._value)
        response.body = body.replace(rule["old"].encode(), rule["new"].encode())
    if rule["action"] == "endless_pages":
        response.headers["X-Nomad-NextToken"] = f"1.{uuid.uuid4()}"
    return response


async def drop_connection(request) -> web.StreamResponse:
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError()


async def drop_mid_body(request, response, stall: bool = False) -> web.StreamResponse:
    body = response.body if isinstance(response, web.Response) and response.body else b"{}"
    if not isinstance(body, bytes):
        body = bytes(body._value) if hasattr(body, "_value") else b"{}"
    partial = web.StreamResponse(status=response.status, headers={
        key: value for key, value in response.headers.items() if key.lower() not in ("content-length",)})
    partial.content_length = len(body)
    await partial.prepare(request)
    await partial.write(body[: max(1, len(body) // 2)])
    while stall and request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(0.2)
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError()


# --- application ----------------------------------------------------------------------------------
def make_app(emulator: Emulator) -> web.Application:
    app = web.Application(middlewares=[faults_middleware], client_max_size=16 * 1024 * 1024)
    app[EMULATOR_KEY] = emulator
    app["api"] = Api(emulator)
    app["readers"] = Readers(app["api"])
    app["jobs"] = Jobs(app["api"])
    app["nodes"] = Nodes(app["api"], app["readers"], app["jobs"])
    if emulator.supervisor is None:
        emulator.supervisor = Supervisor(emulator)
    router = app.router
    router.add_get("/_emulator/allocations/{alloc_id}/tasks", control_tasks)
    router.add_post("/_emulator/faults", control_add_fault)
    router.add_get("/_emulator/faults", control_list_faults)
    router.add_delete("/_emulator/faults", control_clear_faults)
    router.add_get("/_emulator/requests", control_requests)
    router.add_delete("/_emulator/requests", control_reset_requests)
    router.add_get("/_emulator/settings", control_get_settings)
    router.add_post("/_emulator/settings", control_set_settings)
    router.add_route("*", "/v1/client/allocation/{alloc_id}/exec", exec_route, name=EXEC_ROUTE_NAME)
    router.add_route("*", "/{path:.*}", nomad_dispatch)
    return app


def make_ssl_context(cert: str, key: str, ca: str | None, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if ca:
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context
