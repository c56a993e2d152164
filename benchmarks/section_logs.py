# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark section: logs and files of an allocation (nomad_alloc_logs, nomad_alloc_fetch).

`tail_lines: 100` of a task's 512 MiB log (rotated across several files) against one raw `origin=end` request
for exactly the bytes of those lines, with the body bytes every client received; and a 256 MiB file fetched
from the allocation directory against a bare `requests` streaming download. python-nomad 2.1.0 is the peer
for the log tail (it has no tail by lines: it is given the same byte offset as the floor).

Also a worker script: ``python benchmarks/section_logs.py <worker> '<json arguments>'`` runs one measured
command in a fresh process and prints one JSON line (seconds, bytes, peak_kib), like workers.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.collection_path import collections_path  # noqa: E402
from benchmarks.workers import peak_rss_kib  # noqa: E402

MIB = 1024 * 1024
TAIL_LINES = 100
TASK = "main"
LINE_WIDTH = 100          # bytes per log line, newline included
LAST_LINE = "DONE"        # printed after the log and the file are complete
SELF = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------ workers (child side)
def _logs_url(args: dict) -> str:
    return f"{args['address']}/v1/client/fs/logs/{args['alloc_id']}"


def worker_tail_floor(args: dict) -> dict:
    """One raw request for exactly the bytes of the last lines (the floor knows their size beforehand)."""
    import requests

    start = time.perf_counter()
    response = requests.get(_logs_url(args), timeout=120, params={
        "task": TASK, "type": "stdout", "origin": "end", "offset": args["offset"], "plain": "true"})
    response.raise_for_status()
    data = response.content
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": len(data), "lines": data.count(b"\n")}


def _collection_client(address: str):
    sys.path.insert(0, str(collections_path()))
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import connection_options_from_params

    return NomadClient(connection_options_from_params({"address": address}), pool_size=1)


class _CountingStream:
    """Wraps NomadClient.stream to count the body bytes the collection received."""

    def __init__(self, client):
        self.received = 0
        self._stream = client.stream
        client.stream = self

    def __call__(self, *args, **kwargs):
        for chunk in self._stream(*args, **kwargs):
            self.received += len(chunk)
            yield chunk


def worker_tail_collection(args: dict) -> dict:
    """What nomad_alloc_logs runs for `tail_lines`: module_utils.allocations.logs.tail_log, from the end, widening as needed."""
    client = _collection_client(args["address"])
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs import tail_log

    counter = _CountingStream(client)
    start = time.perf_counter()
    data, _truncated = tail_log(client, args["alloc_id"], TASK, "stdout", tail_lines=TAIL_LINES)
    seconds = time.perf_counter() - start
    client.close()
    return {"seconds": seconds, "bytes": counter.received, "lines": data.count(b"\n"),
            "sha256": hashlib.sha256(data).hexdigest()}


def worker_tail_pynomad(args: dict) -> dict:
    import nomad

    host, port = args["address"].replace("http://", "").rsplit(":", 1)
    client = nomad.Nomad(host=host, port=int(port), timeout=120)
    start = time.perf_counter()
    text = client.client.stream_logs.stream(args["alloc_id"], TASK, "stdout", origin="end", offset=args["offset"],
                                            plain=True)
    seconds = time.perf_counter() - start
    data = text.encode("utf-8")
    return {"seconds": seconds, "bytes": len(data), "lines": data.count(b"\n")}


def worker_fetch_floor(args: dict) -> dict:
    """A bare requests streaming download of the file into dest in 1 MiB chunks (no stat, no checksum, no move)."""
    import requests

    start = time.perf_counter()
    size = 0
    with requests.get(f"{args['address']}/v1/client/fs/cat/{args['alloc_id']}", params={"path": args["src"]},
                      stream=True, timeout=120) as response, open(args["dest"], "wb") as handle:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=MIB):
            handle.write(chunk)
            size += len(chunk)
    seconds = time.perf_counter() - start
    os.unlink(args["dest"])
    return {"seconds": seconds, "bytes": size}


def worker_fetch_collection(args: dict) -> dict:
    """module_utils.allocations.files as nomad_alloc_fetch uses it: stat, then the streamed copy with its sha1."""
    client = _collection_client(args["address"])
    from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.files import copy_file, stat_path

    start = time.perf_counter()
    info = stat_path(client, args["alloc_id"], args["src"])
    with open(args["dest"], "wb") as handle:
        size = copy_file(client, args["alloc_id"], args["src"], handle, info["Size"], hashlib.sha1())
    seconds = time.perf_counter() - start
    client.close()
    os.unlink(args["dest"])
    return {"seconds": seconds, "bytes": size}


WORKERS = {"tail-floor": worker_tail_floor, "tail-collection": worker_tail_collection, "tail-pynomad": worker_tail_pynomad,
           "fetch-floor": worker_fetch_floor, "fetch-collection": worker_fetch_collection}


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    answer = WORKERS[name](arguments)
    answer["peak_kib"] = peak_rss_kib()
    print(json.dumps(answer), flush=True)


# ------------------------------------------------------------------------------------------ the section (parent side)
def write_scenario(settings, log_bytes: int, file_bytes: int) -> Path:
    """One task that writes `log_bytes` of numbered 100-byte lines to stdout (kept by rotation across 64 MB
    files) and a random file of `file_bytes` into alloc/data, then prints DONE and keeps running."""
    import yaml

    lines = log_bytes // LINE_WIDTH
    script = (f"seq -f 'line %012.0f {'x' * (LINE_WIDTH - 19)}' 1 {lines}\n"
              f"head -c {file_bytes} /dev/urandom > \"$NOMAD_ALLOC_DIR/data/big.bin\"\n"
              f"echo {LAST_LINE}\n"
              "trap 'exit 0' TERM\n"
              "while :; do sleep 1 & wait $!; done\n")
    max_files = log_bytes // (64 * MIB) + 2
    task = {"name": TASK, "kill_timeout": "1s", "logs": {"max_file_size": 64, "max_files": max_files},
            "command": ["/bin/sh", "-c", script]}
    scenario = {"region": "global", "datacenter": "dc1", "acl": False, "namespaces": ["default"],
                "nodes": [{"name": "node-1"}],
                "jobs": [{"id": "logger", "type": "service", "groups": [{"name": "app", "count": 1, "tasks": [task]}]}]}
    path = settings.workdir / "scenario-logs.yml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def _plain_tail(address: str, alloc_id: str, offset: int) -> bytes:
    import requests

    response = requests.get(f"{address}/v1/client/fs/logs/{alloc_id}", timeout=60, params={
        "task": TASK, "type": "stdout", "origin": "end", "offset": offset, "plain": "true"})
    response.raise_for_status()
    return response.content


def wait_for_output(address: str, alloc_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _plain_tail(address, alloc_id, len(LAST_LINE) + 1) != f"{LAST_LINE}\n".encode():
        if time.monotonic() > deadline:
            raise RuntimeError("logs benchmark: the task did not finish writing its log and file in time")
        time.sleep(0.5)


def last_lines_size(address: str, alloc_id: str) -> int:
    """The byte size of the last TAIL_LINES lines of the log (what the floor asks for)."""
    window = _plain_tail(address, alloc_id, (TAIL_LINES + 2) * LINE_WIDTH)
    lines = window.splitlines(keepends=True)[-TAIL_LINES:]
    return sum(len(line) for line in lines)


def log_size(address: str, alloc_id: str) -> int:
    import requests

    listed = requests.get(f"{address}/v1/client/fs/ls/{alloc_id}", params={"path": "alloc/logs"}, timeout=60).json()
    return sum(entry["Size"] for entry in listed if entry["Name"].startswith(f"{TASK}.stdout."))


def playbooks(ansible, alloc_id: str, src: str) -> dict:
    from benchmarks.sections import debug_task

    logs_task = {"name": "Tail the log", "nomadops.nomad.nomad_alloc_logs": {
        "id": alloc_id, "task": TASK, "type": "stdout", "tail_lines": TAIL_LINES}, "register": "tail"}
    fetch_task = {"name": "Fetch the file", "nomadops.nomad.nomad_alloc_fetch": {
        "id": alloc_id, "src": src, "dest": "{{ dest }}", "flat": True}}
    return {"logs": ansible.write_playbook("logs-tail", [logs_task, debug_task("{{ tail.stdout_lines | length }}")]),
            "fetch": ansible.write_playbook("logs-fetch", [fetch_task]),
            "baseline": ansible.write_playbook("logs-baseline", [debug_task("baseline")])}


def run(settings):
    from benchmarks import measure, sections
    from tests.emulator.harness import EmulatorProcess

    log_bytes = (16 if settings.quick else 512) * MIB
    file_bytes = (16 if settings.quick else 256) * MIB
    repetitions = 1 if settings.quick else 3
    # The fetch rows spread most (each run writes 256 MiB to a shared disk): as many runs as the exec transfers.
    fetch_repetitions = settings.exec_reps
    ansible = settings.ansible()
    src = "alloc/data/big.bin"
    with EmulatorProcess(scenario=str(write_scenario(settings, log_bytes, file_bytes))) as emulator:
        address = emulator.address
        measure_run = _Runner(measure, address, settings.workdir)
        alloc_id = measure_run.wait_for_the_task(emulator)
        offset = last_lines_size(address, alloc_id)
        kept = log_size(address, alloc_id)
        books = playbooks(ansible, alloc_id, src)
        tail = measure.alternate({
            "floor": lambda: measure_run.child("tail-floor", alloc_id=alloc_id, offset=offset),
            "collection": lambda: measure_run.child("tail-collection", alloc_id=alloc_id),
            "pynomad": lambda: measure_run.child("tail-pynomad", alloc_id=alloc_id, offset=offset),
            "task": lambda: ansible.playbook(books["logs"], address),
            "baseline": lambda: ansible.playbook(books["baseline"], address),
        }, repetitions)
        in_memory, on_disk = memory_directory(settings.workdir) / "fetched.bin", settings.workdir / "fetched.bin"

        def fetch_runs(dest: Path) -> dict:
            return {
                "floor": lambda: measure_run.child("fetch-floor", alloc_id=alloc_id, src=src, dest=str(dest)),
                "collection": lambda: measure_run.child("fetch-collection", alloc_id=alloc_id, src=src, dest=str(dest)),
                "task": lambda: measure_run.fetch_task(ansible, books["fetch"], dest),
            }
        disk = fetch_runs(on_disk)
        variants = dict(fetch_runs(in_memory), **{
            "baseline": lambda: ansible.playbook(books["baseline"], address),
            "floor on disk": disk["floor"], "task on disk": disk["task"]})
        fetch = measure.alternate({name: after_sync(run) for name, run in variants.items()}, fetch_repetitions)
    check_tails(tail, offset)
    return section_result(measure, sections, tail, fetch, kept, file_bytes, offset, (repetitions, fetch_repetitions),
                          in_memory.parent)


def memory_directory(fallback: Path) -> Path:
    """/dev/shm (tmpfs) when it is writable, else `fallback`: the fetch rows' target compares downloads, and on
    these shared machines writing 256 MiB to the disk spreads a run by up to 1.7x (bimodal; the root file system
    is mounted with online discard), for the floor and the task alike."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else fallback


def after_sync(variant):
    """`variant` run after os.sync(): each fetch writes 256 MiB, and without it the kernel's write-back of the
    previous run's file (or an earlier section's) lands in the next run's time, whichever variant that is."""
    def synced():
        os.sync()
        return variant()
    return synced


class _Runner:
    def __init__(self, measure, address: str, workdir: Path):
        self.measure, self.address, self.workdir = measure, address, workdir

    def child(self, name: str, **arguments):
        arguments["address"] = self.address
        return self.measure.run_child([self.measure.PYTHON, str(SELF), name, json.dumps(arguments)],
                                      env=self.measure.worker_environment())

    def wait_for_the_task(self, emulator) -> str:
        deadline = time.monotonic() + 120
        while True:
            running = [a for a in emulator.allocations() if a["JobID"] == "logger" and a["ClientStatus"] == "running"]
            if running:
                alloc_id = running[0]["ID"]
                break
            if time.monotonic() > deadline:
                raise RuntimeError("logs benchmark: the logger task did not start")
            time.sleep(0.2)
        wait_for_output(self.address, alloc_id)
        return alloc_id

    def fetch_task(self, ansible, playbook: Path, dest: Path):
        sample = ansible.playbook(playbook, self.address, {"dest": str(dest)})
        size = dest.stat().st_size
        dest.unlink()
        sample.data["bytes"] = size
        return sample


def check_tails(tail: dict, offset: int) -> None:
    for name in ("floor", "collection", "pynomad"):
        for sample in tail[name]:
            if sample.data.get("lines") != TAIL_LINES:
                raise RuntimeError(f"logs benchmark: {name} returned {sample.data.get('lines')} lines, "
                                   f"expected {TAIL_LINES}")
    if any(sample.data["bytes"] > 64 * offset for sample in tail["collection"]):
        raise RuntimeError("logs benchmark: the collection received far more than the tail: it downloaded the log")


def section_result(measure, sections, tail: dict, fetch: dict, kept: int, file_bytes: int, offset: int,
                   repetitions: tuple, fetch_directory: Path):
    inners, walls = measure.inners, measure.walls
    tail_floor, tail_collection = inners(tail["floor"]).median, inners(tail["collection"]).median
    received = max(sample.data["bytes"] for sample in tail["collection"])
    fixed = walls(fetch["baseline"]).median
    rate = {name: file_bytes / inners(fetch[name]).median for name in ("floor", "collection", "floor on disk")}
    for task in ("task", "task on disk"):
        # A quick run's small file can take less than the noise of the fixed cost: never a negative time.
        rate[task] = file_bytes / max(walls(fetch[task]).median - fixed, 0.001)
    task_tail = walls(tail["task"]).median - walls(tail["baseline"]).median
    rows = [
        [f"floor: one raw `origin=end` request for the {offset:,} bytes of the last {TAIL_LINES} lines (plain)",
         inners(tail["floor"]).seconds(), f"{offset:,} B", "1.00x", measure.rss(tail["floor"]).mib()],
        [f"collection: `tail_log(tail_lines={TAIL_LINES})` (module_utils of `nomad_alloc_logs`), framed",
         inners(tail["collection"]).seconds(), f"{received:,} B", sections.ratio(tail_collection, tail_floor),
         measure.rss(tail["collection"]).mib()],
        ["peer: python-nomad 2.1.0 `stream_logs.stream(origin='end', offset=<floor's>, plain=True)`",
         inners(tail["pynomad"]).seconds(), f"{tail['pynomad'][0].data['bytes']:,} B",
         sections.ratio(inners(tail["pynomad"]).median, tail_floor), measure.rss(tail["pynomad"]).mib()],
        [f"`nomad_alloc_logs` task, `tail_lines: {TAIL_LINES}` (playbook − a `debug` playbook)", f"{task_tail:.3f} s",
         "—", "—", measure.rss(tail["task"]).mib()],
        [f"floor: `requests` streaming download of {sections.mib_of(file_bytes)} into a file in `{fetch_directory}`",
         inners(fetch["floor"]).seconds(), f"{rate['floor'] / MIB:.0f} MiB/s", "1.00x", measure.rss(fetch["floor"]).mib()],
        ["collection: `stat_path` + `copy_file` with sha1 (module_utils of `nomad_alloc_fetch`)",
         inners(fetch["collection"]).seconds(), f"{rate['collection'] / MIB:.0f} MiB/s",
         sections.ratio(rate["collection"], rate["floor"]), measure.rss(fetch["collection"]).mib()],
        ["`nomad_alloc_fetch` task (playbook − a `debug` playbook)", f"{file_bytes / rate['task']:.3f} s",
         f"{rate['task'] / MIB:.0f} MiB/s", sections.ratio(rate["task"], rate["floor"]), measure.rss(fetch["task"]).mib()],
        ["the floor again, into a file on the disk (the benchmark's work directory)", inners(fetch["floor on disk"]).seconds(),
         f"{rate['floor on disk'] / MIB:.0f} MiB/s", "—", measure.rss(fetch["floor on disk"]).mib()],
        ["the task again, dest on the disk (÷ the floor on the disk)", f"{file_bytes / rate['task on disk']:.3f} s",
         f"{rate['task on disk'] / MIB:.0f} MiB/s", sections.ratio(rate["task on disk"], rate["floor on disk"]),
         measure.rss(fetch["task on disk"]).mib()],
    ]
    targets = [
        sections.Target(f"`tail_lines: {TAIL_LINES}` of a {sections.mib_of(kept)} log ≤ 1.5x one raw `origin=end` "
                        "request for the same lines (work), without downloading the log",
                        f"{sections.ratio(tail_collection, tail_floor)}, {received:,} B received",
                        tail_collection <= 1.5 * tail_floor and received < kept / 1000,
                        f"raw request {tail_floor:.3f} s, {offset:,} B"),
        sections.Target(f"`nomad_alloc_fetch` {sections.mib_of(file_bytes)} ≥ 0.8x a bare `requests` download's "
                        "throughput (task time)", sections.ratio(rate["task"], rate["floor"]),
                        rate["task"] >= 0.8 * rate["floor"], f"requests download {rate['floor'] / MIB:.0f} MiB/s"),
    ]
    notes = [
        f"The log: {sections.mib_of(kept)} of 100-byte numbered lines kept on disk across rotated 64 MB files "
        f"(`logs` of the task), written by a real process of the emulator; medians of {repetitions[0]} interleaved "
        f"fresh processes for the tail, {repetitions[1]} for the fetch. Bytes = HTTP body bytes the client "
        "received (the collection's framed answer is base64 in JSON, about 4/3 of the plain bytes, and its first "
        "window is a guess that it widens only when it holds fewer lines than asked).",
        "python-nomad can tail only by bytes, and returns the text: it was given the floor's exact offset, which a "
        "user would not know; its file reading (`cat.read_file`) returns text too, so it cannot fetch a binary "
        "file byte-exact, and it has no fetch row.",
        "The fetch task includes resolving the allocation, the stat, the sha1 of the bytes as they stream (a "
        "writer thread writes and hashes one chunk while the next is received), the size check of the temporary "
        "file (`validate_checksum`) and the move into place; like "
        "`ansible.builtin.fetch` it does not fsync. The floor writes the bytes and checks nothing. Every fetch "
        "row's run (and its `debug` baseline) starts after `os.sync()`, so that no run pays for the write-back of "
        "the file an earlier run wrote.",
        f"The target rows write into `{fetch_directory}` (tmpfs when the machine has it): they compare two "
        "downloads, and on these shared machines writing 256 MiB to the disk spreads a single run by up to 1.7x, "
        "for the floor and the task alike (the last two rows, interleaved with the others, show the disk).",
    ]
    throughput = [
        {"label": f"log tail {TAIL_LINES} lines\nof {sections.mib_of(kept)}", "collection": offset / tail_collection,
         "collection_label": "nomad_alloc_logs (module_utils)", "floor": offset / tail_floor,
         "floor_label": "one raw origin=end request", "peer": offset / inners(tail["pynomad"]).median,
         "peer_label": "python-nomad 2.1.0"},
        {"label": f"fetch\n{sections.mib_of(file_bytes)}", "collection": rate["task"],
         "collection_label": "nomad_alloc_fetch task", "floor": rate["floor"], "floor_label": "requests download"},
    ]
    return sections.SectionResult(7, "Logs and files: tail of a rotated log, fetch of a big file",
                                  "`nomad_alloc_logs` and `nomad_alloc_fetch` against single raw requests.",
                                  ["what", "time", "bytes / throughput", "÷ floor", "peak RSS"],
                                  rows, targets, notes, metrics={"throughput": throughput})


if __name__ == "__main__":
    main()
