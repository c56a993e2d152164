# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Child-process workers for benchmarks/run.py: each one measured thing in a fresh Python process.

Usage: python benchmarks/workers.py <worker> '<json arguments>'
Prints one JSON line: {"seconds": <time of the work itself>, "rss_before_kib": <RSS after the imports>,
"peak_kib": <peak RSS of this process>, ...}. The parent measures the wall time of the whole process.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.collection_path import collections_path  # noqa: E402

sys.path.insert(0, str(collections_path()))

ALLOCATIONS_PATH = "/v1/allocations"


def _status_kib(field: str) -> int:
    """A memory line of /proc/self/status in KiB (VmRSS: now, VmHWM: peak of this program's own memory).

    ru_maxrss is not used: on Linux it also counts the parent's peak inherited through fork before exec.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_now_kib() -> int:
    return _status_kib("VmRSS")


def peak_rss_kib() -> int:
    return _status_kib("VmHWM")


def deep_size(root) -> int:
    """Bytes of every distinct object reachable through dicts and lists (sys.getsizeof, shared objects once)."""
    seen = set()
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
    return total


def raw_session(pool_size: int = 10):
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=pool_size))
    return session


def _bool(value):
    return "true" if value else "false"


def raw_list(session, address: str, query: dict, per_page):
    """The floor: GET every page with requests, follow X-Nomad-NextToken, decode each page with json."""
    items, json_bytes, token = [], 0, None
    while True:
        params = dict(query)
        if per_page:
            params["per_page"] = per_page
        if token:
            params["next_token"] = token
        response = session.get(address + ALLOCATIONS_PATH, params=params, timeout=300)
        response.raise_for_status()
        json_bytes += len(response.content)
        items.extend(response.json())
        token = response.headers.get("X-Nomad-NextToken")
        if not token:
            return items, json_bytes


def list_query(args: dict) -> dict:
    query = {"namespace": args.get("namespace", "default")}
    if args.get("filter"):
        query["filter"] = args["filter"]
    if args.get("task_states") is not None:
        query["task_states"] = _bool(args["task_states"])
    return query


def measured_list(args: dict, list_items) -> dict:
    before = rss_now_kib()
    start = time.perf_counter()
    items, json_bytes = list_items()
    seconds = time.perf_counter() - start
    answer = {"seconds": seconds, "count": len(items), "rss_before_kib": before}
    if json_bytes is not None:
        answer["json_bytes"] = json_bytes
    if args.get("deep_size"):
        answer["deep_bytes"] = deep_size(items)
    return answer


# ------------------------------------------------------------------------------------------ listing
def worker_list_raw(args: dict) -> dict:
    session = raw_session()
    return measured_list(args, lambda: raw_list(session, args["address"], list_query(args), args.get("per_page")))


def collection_client(address: str, pool_size: int = 10):
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import connection_options_from_params

    return NomadClient(connection_options_from_params({"address": address}), pool_size=pool_size)


def worker_list_client(args: dict) -> dict:
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import select_allocations

    client = collection_client(args["address"])
    selector = {"job": args.get("job")}

    def list_items():
        items = select_allocations(client, selector, namespace=args.get("namespace", "default"),
                                   per_page=args.get("per_page"), task_states=args.get("task_states"))
        return items, None

    return measured_list(args, list_items)


def worker_list_pynomad(args: dict) -> dict:
    """python-nomad 2.1.0 returns only the decoded body (no X-Nomad-NextToken), so it lists in one call."""
    import nomad

    host_port = args["address"].split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    client = nomad.Nomad(host=host, port=int(port), timeout=300, namespace=args.get("namespace", "default"))

    def list_items():
        return client.allocations.get_allocations(task_states=args.get("task_states")), None

    return measured_list(args, list_items)


# ------------------------------------------------------------------------------------------ lookup
def worker_lookup(args: dict) -> dict:
    """The nomad_alloc lookup through Ansible's plugin loader, as a template would call it."""
    from ansible.plugins.loader import init_plugin_loader, lookup_loader

    init_plugin_loader([str(collections_path())])
    lookup = lookup_loader.get("nomadops.nomad.nomad_alloc")

    def list_items():
        items = lookup.run([], variables={}, address=args["address"], job=args["job"], per_page=args.get("per_page"))
        return items, None

    return measured_list(args, list_items)


# ------------------------------------------------------------------------------------------ bulk
def worker_bulk_raw(args: dict) -> dict:
    """The floor for one bulk operation: list the job's allocations, then one request per allocation over
    one Session with the same concurrency as the module's `parallelism`."""
    parallelism = args["parallelism"]
    session = raw_session(parallelism)
    address, operation = args["address"], args["operation"]
    query = {"namespace": "default", "filter": f'JobID == "{args["job"]}"'}

    def act(alloc_id: str) -> None:
        if operation == "stop":
            response = session.post(f"{address}/v1/allocation/{alloc_id}/stop", params={"namespace": "default"},
                                    timeout=60)
        elif operation == "signal":
            response = session.post(f"{address}/v1/client/allocation/{alloc_id}/signal", params={"namespace": "default"},
                                    json={"Task": "main", "Signal": "SIGHUP"}, timeout=60)
        else:
            response = session.post(f"{address}/v1/client/allocation/{alloc_id}/restart",
                                    params={"namespace": "default"}, json={}, timeout=60)
        response.raise_for_status()

    before = rss_now_kib()
    start = time.perf_counter()
    allocations, _bytes = raw_list(session, address, query, None)
    ids = [alloc["ID"] for alloc in allocations]
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(act, ids))
    return {"seconds": time.perf_counter() - start, "count": len(ids), "rss_before_kib": before}


# ------------------------------------------------------------------------------------------ exec
def worker_exec_session(args: dict) -> dict:
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.exec import ExecRequest, run_exec

    client = collection_client(args["address"])
    request = ExecRequest(allocation_id=args["alloc_id"], task="main", argv=args["argv"], timeout=600.0,
                          max_output_bytes=args["max_output_bytes"])
    before = rss_now_kib()
    start = time.perf_counter()
    outcome = run_exec(client, request)
    seconds = time.perf_counter() - start
    if outcome.exit_code != 0:
        raise SystemExit(f"exec exited with {outcome.exit_code}: {outcome.stderr[:200]!r}")
    return {"seconds": seconds, "bytes": len(outcome.stdout), "rss_before_kib": before}


def raw_exec_url(address: str, alloc_id: str, argv: list) -> str:
    """The exec WebSocket URL a user of websocket-client writes by hand (task `main`, no tty)."""
    command = quote(json.dumps(argv))
    return f"{address.replace('http://', 'ws://', 1)}/v1/client/allocation/{alloc_id}/exec?namespace=default&task=main&tty=false&command={command}"


def worker_exec_raw(args: dict) -> dict:
    """The floor: a bare websocket-client loop that decodes the same frames and keeps the output."""
    import websocket

    url = raw_exec_url(args["address"], args["alloc_id"], args["argv"])
    before = rss_now_kib()
    start = time.perf_counter()
    ws = websocket.create_connection(url, skip_utf8_validation=True, suppress_origin=True)
    ws.send('{"stdin":{"close":true}}')
    chunks, exit_code = [], None
    while exit_code is None:
        opcode, payload = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise SystemExit("server closed before the exited frame")
        frame = json.loads(payload)
        stdout = frame.get("stdout")
        if stdout and "data" in stdout:
            chunks.append(base64.b64decode(stdout["data"]))
        if frame.get("exited"):
            exit_code = (frame.get("result") or {}).get("exit_code", 0)
    ws.close()
    data = b"".join(chunks)
    return {"seconds": time.perf_counter() - start, "bytes": len(data), "rss_before_kib": before}


WORKERS = {
    "list-raw": worker_list_raw,
    "list-client": worker_list_client,
    "list-pynomad": worker_list_pynomad,
    "lookup": worker_lookup,
    "bulk-raw": worker_bulk_raw,
    "exec-session": worker_exec_session,
    "exec-raw": worker_exec_raw,
}


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    answer = WORKERS[name](arguments)
    answer["peak_kib"] = peak_rss_kib()
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
