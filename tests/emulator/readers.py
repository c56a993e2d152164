# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Nomad 1.6's job, namespace and node readers: `GET /v1/job/:id` (`GET /v1/jobs` is in joblist.py),
`/v1/namespace/:name` and `/v1/nodes` (`prefix`, `filter`), with Nomad's status codes, error texts and ACL checks.
`GET /v1/node/:id` and the other per-node endpoints are in nodes.py, which keeps the node state read here.

Texts from Nomad v1.6.5: command/agent/job_endpoint.go (`job not found`), namespace_endpoint.go
(`Namespace not found`), node_endpoint.go (`node not found`); a bad node prefix is memdb's index error.
Node ACL: a scenario token entry may carry `node: read|write` (management tokens read everything);
namespace read needs any capability in that namespace, like Nomad's `AllowNamespace`.
"""
from __future__ import annotations

import copy

from . import acl as acl_mod
from .httpjson import HttpError, json_response
from .nomadversion import DEFAULT as DEFAULT_NOMAD
from .nomadversion import NomadVersion
from .uuidindex import IndexError_, parse_uuid

READERS_PREFIXES = ("/v1/job/", "/v1/namespace/")


def node_stub(node: dict, version: NomadVersion = DEFAULT_NOMAD) -> dict:
    """NodeListStub (§5.2 of nomad-deployments-nodes-behaviour.md) from the node state kept by nodes.py."""
    return {"Address": node.get("Address", "127.0.0.1"), "ID": node["ID"], "Attributes": None,
            "Datacenter": node.get("Datacenter", "dc1"), "Name": node["Name"], "NodeClass": node.get("NodeClass", ""),
            "NodePool": node.get("NodePool", "default"), "Version": version.text,
            "Drain": node.get("DrainStrategy") is not None,
            "SchedulingEligibility": node.get("SchedulingEligibility", "eligible"), "Status": node.get("Status", "ready"),
            "StatusDescription": "", "Drivers": None, "HostVolumes": None, "NodeResources": None,
            "ReservedResources": None, "LastDrain": copy.deepcopy(node.get("LastDrain")),
            "CreateIndex": node.get("CreateIndex", 1), "ModifyIndex": node.get("ModifyIndex", 1)}


def node_full(node: dict, version: NomadVersion = DEFAULT_NOMAD) -> dict:
    """The full node (§5.3): sanitized (SecretID empty) with the legacy `Drain` key."""
    full = node_stub(node, version)
    full.update({"SecretID": "", "HTTPAddr": node.get("HTTPAddr", "127.0.0.1:4646"), "TLSEnabled": False,
                 "Attributes": dict(node.get("Attributes") or {}) or None, "Meta": dict(node.get("Meta") or {}),
                 "Events": copy.deepcopy(node.get("Events")), "DrainStrategy": copy.deepcopy(node.get("DrainStrategy")),
                 "StatusUpdatedAt": node.get("StatusUpdatedAt", 0), "ComputedClass": "", "Links": None})
    full.update(legacy_node_resources(node, version.node_legacy_resources))
    return full


def legacy_node_resources(node: dict, kind: str) -> dict:
    """Row 33 of the changes reference: the pre-1.7 `Resources`/`Reserved`, empty objects in 1.7-1.10, gone in 1.11."""
    if kind == "absent":
        return {}
    blank = {"CPU": 0, "Cores": 0, "MemoryMB": 0, "MemoryMaxMB": 0, "DiskMB": 0, "IOPS": 0, "Networks": None,
             "Devices": None}
    if kind == "empty":
        return {"Resources": dict(blank), "Reserved": dict(blank)}
    filled = dict(blank, CPU=node.get("CPU", 4000), MemoryMB=node.get("MemoryMB", 8192), DiskMB=100000)
    return {"Resources": filled, "Reserved": dict(blank)}


class Readers:
    def __init__(self, api):
        self.api = api
        self.emulator = api.emulator

    # --- ACL -----------------------------------------------------------------------------------
    def _node_policy(self, token) -> str:
        if token is None or token.management:
            return "write"
        for entry in self.emulator.scenario.get("tokens") or ():
            if str(entry.get("secret")) == token.secret:
                return str(entry.get("node", "deny"))
        if token.secret == "":
            return str(self.emulator.scenario.get("anonymous_node", "deny"))
        return "deny"

    def require_node_read(self, token) -> None:
        if self._node_policy(token) not in ("read", "write"):
            raise HttpError(403, acl_mod.PERMISSION_DENIED)

    def require_namespace(self, token, namespace: str) -> None:
        if token is None or token.management:
            return
        granted = token.capabilities.get(namespace, token.capabilities.get("*", set()))
        if not granted:
            raise HttpError(403, acl_mod.PERMISSION_DENIED)

    # --- dispatch ------------------------------------------------------------------------------
    async def dispatch(self, request):
        path = request.path
        if path == "/v1/nodes":
            return self.list_nodes(request)
        for prefix, handler in (("/v1/job/", self.get_job), ("/v1/namespace/", self.get_namespace)):
            if path.startswith(prefix):
                name = path[len(prefix):]
                if request.method != "GET":
                    raise HttpError(405, "Invalid method")
                if not name or "/" in name:
                    raise HttpError(404, "resource not found")
                return handler(request, name)
        return None

    def _start(self, request):
        """Method, parse() (job get, namespace get and node list test its result: rows 4-5), region, token."""
        from .server import QueryOptions  # server.py imports this module
        if request.method != "GET":
            raise HttpError(405, "Invalid method")
        self.api.refuse_bad_query(QueryOptions(request))
        self.api.check_region(request)
        return self.api.authenticate(request)

    def _meta(self) -> dict:
        return self.api.read_meta(self.emulator.index)

    # --- GET /v1/job/:id -------------------------------------------------------------------------
    def get_job(self, request, job_id: str):
        token = self._start(request)
        namespace = request.query.get("namespace", "") or "default"
        self.api.require(token, namespace, "read-job")
        entry = self.emulator.jobs.get((namespace, job_id))
        if entry is None:
            raise HttpError(404, "job not found", self._meta())
        return json_response(request, entry["doc"], headers=self._meta())

    # --- GET /v1/namespace/:name -------------------------------------------------------------------
    def get_namespace(self, request, name: str):
        token = self._start(request)
        self.require_namespace(token, name)
        if name not in self.emulator.namespaces:
            raise HttpError(404, "Namespace not found", self._meta())
        body = {"Name": name, "Description": "Default shared namespace" if name == "default" else "",
                "Quota": "", "Capabilities": None, "NodePoolConfiguration": None, "Meta": None,
                "CreateIndex": 1, "ModifyIndex": 1}
        return json_response(request, body, headers=self._meta())

    # --- GET /v1/nodes -----------------------------------------------------------------------------
    def list_nodes(self, request):
        token = self._start(request)
        with_os = self._node_list_flag(request, "os")
        self._node_list_flag(request, "resources")  # parsed for its error; resources are not emulated
        self.require_node_read(token)
        prefix = request.query.get("prefix", "")
        nodes = list(self.emulator.nodes)
        if prefix:
            try:
                hex_prefix = parse_uuid(prefix, exact=False)
            except IndexError_ as err:
                raise HttpError(500, f"index error: {err}", rpc=True) from err
            nodes = [node for node in nodes if node["ID"].replace("-", "").startswith(hex_prefix)]
        nodes = sorted(nodes, key=lambda node: node["ID"])
        matcher = self._node_filter(request.query.get("filter", ""))
        if matcher is not None:  # Nomad evaluates the filter on the full node (Attributes, Meta, ...)
            nodes = [node for node in nodes if self._matches(matcher, node_full(node))]
        stubs = [node_stub(node, self.emulator.version) for node in nodes]
        if with_os:  # 1.10: `os=true` adds the OS name to the stub's Attributes (§5.2)
            for stub, node in zip(stubs, nodes):
                stub["Attributes"] = {"os.name": (node.get("Attributes") or {}).get("os.name", "")}
        return json_response(request, stubs, headers=self.api.read_meta(getattr(self.emulator, "nodes_index", 1)))

    @staticmethod
    def _node_list_flag(request, name: str) -> bool:
        """`os` / `resources` (strconv.ParseBool; command/agent/node_endpoint.go:25-30)."""
        from .nomadtime import GoParseBoolError, parse_go_bool
        if name not in request.query:
            return False
        value = request.query[name]
        try:
            return parse_go_bool(value)
        except GoParseBoolError as err:
            raise HttpError(400, f'Failed to parse node list fields: Failed to parse value of "{name}" ({value}) '
                                 f"as a bool: {err}") from err

    @staticmethod
    def _node_filter(text: str):
        if not text:
            return None
        from . import bexpr
        try:
            return bexpr.compile_filter(text, map_paths=("Attributes", "Meta", "Links"), uint_paths=("CreateIndex", "ModifyIndex"))
        except bexpr.FilterParseError as err:
            raise HttpError(400, f"failed to read filter expression: {err}") from err

    @staticmethod
    def _matches(matcher, stub) -> bool:
        from . import bexpr
        try:
            return matcher.evaluate(stub)
        except bexpr.FilterEvaluationError as err:
            raise HttpError(400, f"failed to read result page: {err}") from err
