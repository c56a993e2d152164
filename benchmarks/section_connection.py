# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark section: the nomadops.nomad.nomad_exec connection plugin.

Module tasks over nomad_exec against the same tasks over Ansible's local connection, and put_file / fetch_file
of a big random file against a bare websocket-client loop that moves the same bytes as exec stdin / stdout
(the floor), with the controller's peak RSS during the transfers.

Also a worker script: ``python benchmarks/section_connection.py <worker> '<json arguments>'`` runs one measured
transfer in a fresh process and prints one JSON line (seconds, rss_before_kib, peak_kib), like workers.py.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.collection_path import collections_path  # noqa: E402
from benchmarks.workers import peak_rss_kib, raw_exec_url, rss_now_kib  # noqa: E402

MIB = 1024 * 1024
TASKS = 20
FLOOR_CHUNK = 32 * 1024   # the collection's STDIN_CHUNK_SIZE: the same frames on the wire
SELF = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------ workers (child side)
def _connection(args: dict):
    sys.path.insert(0, str(collections_path()))
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader, init_plugin_loader

    init_plugin_loader([str(collections_path())])
    connection = connection_loader.get("nomadops.nomad.nomad_exec", PlayContext())
    connection.set_options(var_options={"ansible_nomad_alloc_id": args["alloc_id"], "ansible_nomad_task": "main",
                                        "ansible_nomad_address": args["address"]})
    connection.exec_command("true")   # resolve the allocation before the clock starts
    return connection


def worker_put(args: dict) -> dict:
    connection = _connection(args)
    before = rss_now_kib()
    start = time.perf_counter()
    connection.put_file(args["local"], args["remote"])
    seconds = time.perf_counter() - start
    connection.close()
    return {"seconds": seconds, "rss_before_kib": before}


def worker_fetch(args: dict) -> dict:
    connection = _connection(args)
    before = rss_now_kib()
    start = time.perf_counter()
    connection.fetch_file(args["remote"], args["local"])
    seconds = time.perf_counter() - start
    connection.close()
    return {"seconds": seconds, "rss_before_kib": before}


def _wait_exit(ws, on_stdout=None) -> int:
    import websocket

    while True:
        opcode, payload = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise SystemExit("server closed before the exited frame")
        frame = json.loads(payload)
        stdout = frame.get("stdout")
        if on_stdout is not None and stdout and "data" in stdout:
            on_stdout(base64.b64decode(stdout["data"]))
        if frame.get("exited"):
            return (frame.get("result") or {}).get("exit_code", 0)


def worker_floor_put(args: dict) -> dict:
    """The floor of put_file: the file's bytes as stdin frames into `cat > remote`, nothing else."""
    import websocket

    before = rss_now_kib()
    start = time.perf_counter()
    ws = websocket.create_connection(raw_exec_url(args["address"], args["alloc_id"], ["/bin/sh", "-c", 'cat > "$1"', "sh", args["remote"]]),
                                     skip_utf8_validation=True, suppress_origin=True)
    with open(args["local"], "rb") as stream:
        for chunk in iter(lambda: stream.read(FLOOR_CHUNK), b""):
            ws.send('{"stdin":{"data":"' + base64.b64encode(chunk).decode("ascii") + '"}}')
    ws.send('{"stdin":{"close":true}}')
    exit_code = _wait_exit(ws)
    ws.close()
    return {"seconds": time.perf_counter() - start, "rss_before_kib": before, "exit_code": exit_code}


def worker_floor_fetch(args: dict) -> dict:
    """The floor of fetch_file: `cat remote` over stdout frames, written to a local file as they arrive."""
    import websocket

    before = rss_now_kib()
    start = time.perf_counter()
    ws = websocket.create_connection(raw_exec_url(args["address"], args["alloc_id"], ["cat", args["remote"]]),
                                     skip_utf8_validation=True, suppress_origin=True)
    ws.send('{"stdin":{"close":true}}')
    with open(args["local"], "wb") as stream:
        exit_code = _wait_exit(ws, stream.write)
    ws.close()
    return {"seconds": time.perf_counter() - start, "rss_before_kib": before, "exit_code": exit_code}


WORKERS = {"put": worker_put, "fetch": worker_fetch, "floor-put": worker_floor_put, "floor-fetch": worker_floor_fetch}


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    answer = WORKERS[name](arguments)
    answer["peak_kib"] = peak_rss_kib()
    print(json.dumps(answer), flush=True)


# ------------------------------------------------------------------------------------------ the section (parent side)
def _section_imports():
    from benchmarks import measure, sections
    from tests.emulator.harness import EmulatorProcess

    return measure, sections, EmulatorProcess


def write_inventory(settings, alloc_id: str, address: str) -> Path:
    path = settings.workdir / "connection-inventory.ini"
    python = sys.executable
    path.write_text(
        f"alloc ansible_connection=nomadops.nomad.nomad_exec ansible_nomad_alloc_id={alloc_id} "
        f"ansible_nomad_task=main ansible_nomad_address={address} ansible_python_interpreter={python}\n"
        f"local ansible_connection=local ansible_python_interpreter={python}\n"
    )
    return path


def write_plays(settings, host: str, pipelining: bool) -> dict:
    import yaml

    def play(name, tasks):
        path = settings.workdir / f"connection-{name}.yml"
        path.write_text(yaml.safe_dump([{"hosts": host, "gather_facts": False,
                                         "vars": {"ansible_pipelining": pipelining}, "tasks": tasks}]))
        return path

    commands = [{"name": f"command {index}", "ansible.builtin.command": "echo hi", "changed_when": False}
                for index in range(TASKS)]
    suffix = f"{host}-{'pipelining' if pipelining else 'plain'}"
    return {"tasks": play(f"tasks-{suffix}", commands),
            "baseline": play(f"baseline-{suffix}", [{"name": "hi", "ansible.builtin.debug": {"msg": "hi"}}])}


def playbook_runner(measure, settings, inventory: Path, address: str):
    ansible = measure.Ansible(settings.workdir)
    ansible.inventory = inventory
    return lambda path: ansible.playbook(path, address)


def run(settings):
    measure, sections, emulator_class = _section_imports()
    size = (16 if settings.quick else 64) * MIB
    scenario = sections.write_scenario(settings, "connection", virtual_jobs=1)
    local = settings.workdir / "connection-random.bin"
    with open(local, "wb") as stream:
        for _mib in range(size // MIB):
            stream.write(os.urandom(MIB))
    with emulator_class(scenario=str(scenario), virtual=1) as emulator:
        address = emulator.address
        alloc_id = emulator.allocations("default")[0]["ID"]
        tasks = measure_tasks(measure, settings, address, alloc_id)
        # A virtual allocation's task directory exists once something was exec'd in it (the tasks above).
        task_dir = Path(emulator.control.tasks(alloc_id)["main"]["task_dir"])
        transfers = measure_transfers(measure, settings, address, alloc_id, local, task_dir)
    return section_result(measure, sections, settings, size, tasks, transfers)


def measure_tasks(measure, settings, address, alloc_id) -> dict:
    play = playbook_runner(measure, settings, write_inventory(settings, alloc_id, address), address)
    variants = {}
    for host, pipelining, name in (("alloc", True, "exec"), ("alloc", False, "exec-plain"), ("local", True, "local")):
        paths = write_plays(settings, host, pipelining)
        variants[name] = lambda paths=paths: play(paths["tasks"])
        variants[f"{name}-baseline"] = lambda paths=paths: play(paths["baseline"])
    return measure.alternate(variants, settings.play_reps)


def measure_transfers(measure, settings, address, alloc_id, local: Path, task_dir: Path) -> dict:
    def child(name, **arguments):
        arguments.update(address=address, alloc_id=alloc_id)
        return measure.run_child([measure.PYTHON, str(SELF), name, json.dumps(arguments)],
                                 env=measure.worker_environment())

    remote = str(task_dir / "bench.bin")
    back = str(settings.workdir / "connection-back.bin")
    samples = measure.alternate({
        "floor-put": lambda: child("floor-put", local=str(local), remote=remote + ".floor"),
        "put": lambda: child("put", local=str(local), remote=remote),
    }, settings.exec_reps)
    samples.update(measure.alternate({
        "floor-fetch": lambda: child("floor-fetch", local=back + ".floor", remote=remote),
        "fetch": lambda: child("fetch", local=back, remote=remote),
    }, settings.exec_reps))
    if Path(back).read_bytes() != local.read_bytes() or Path(remote).stat().st_size != local.stat().st_size:
        raise RuntimeError("connection benchmark: a transfer did not arrive byte-exact")
    return samples


def task_seconds(measure, samples: dict, name: str) -> float:
    return measure.walls(samples[name]).median - measure.walls(samples[f"{name}-baseline"]).median


def rss_growth_mib(samples: list) -> float:
    return max(sample.peak_rss_kib - sample.data.get("rss_before_kib", 0) for sample in samples) / 1024


def section_result(measure, sections, settings, size, tasks: dict, transfers: dict):
    exec_time, plain_time, local_time = (task_seconds(measure, tasks, name) for name in ("exec", "exec-plain", "local"))
    rate = {name: size / measure.inners(transfers[name]).median for name in transfers}
    growth = {name: rss_growth_mib(transfers[name]) for name in ("put", "fetch")}
    rows = [
        [f"{TASKS} `command` tasks over `local` (pipelining on)", f"{local_time:.2f} s", f"{local_time / TASKS * 1000:.0f} ms",
         "1.00x", measure.walls(tasks["local"]).seconds()],
        [f"{TASKS} `command` tasks over `nomad_exec` (pipelining on)", f"{exec_time:.2f} s",
         f"{exec_time / TASKS * 1000:.0f} ms", sections.ratio(exec_time, local_time), measure.walls(tasks["exec"]).seconds()],
        [f"{TASKS} `command` tasks over `nomad_exec` (pipelining off)", f"{plain_time:.2f} s",
         f"{plain_time / TASKS * 1000:.0f} ms", sections.ratio(plain_time, local_time),
         measure.walls(tasks["exec-plain"]).seconds()],
    ]
    for name, label in (("floor-put", "floor: bare websocket-client stdin loop"), ("put", "`put_file` (copy)"),
                        ("floor-fetch", "floor: bare websocket-client stdout loop"), ("fetch", "`fetch_file` (fetch)")):
        floor = rate["floor-put" if "put" in name else "floor-fetch"]
        rss_text = f"peak RSS +{growth[name]:.0f} MiB" if name in growth else measure.rss(transfers[name]).mib()
        rows.append([f"{label}, {sections.mib_of(size)}", measure.inners(transfers[name]).seconds(),
                     f"{rate[name] / MIB:.1f} MiB/s", sections.ratio(rate[name], floor), rss_text])
    targets = [
        sections.Target(f"{TASKS} `command` tasks over `nomad_exec` with pipelining ≤ 1.5x the local connection's task time",
                        sections.ratio(exec_time, local_time), exec_time <= 1.5 * local_time,
                        f"local connection {local_time:.2f} s"),
        sections.Target(f"`put_file` {sections.mib_of(size)} ≥ 0.8x the floor's throughput",
                        sections.ratio(rate["put"], rate["floor-put"]), rate["put"] >= 0.8 * rate["floor-put"],
                        f"websocket-client stdin loop {rate['floor-put'] / MIB:.1f} MiB/s"),
        sections.Target(f"`fetch_file` {sections.mib_of(size)} ≥ 0.8x the floor's throughput",
                        sections.ratio(rate["fetch"], rate["floor-fetch"]), rate["fetch"] >= 0.8 * rate["floor-fetch"],
                        f"websocket-client stdout loop {rate['floor-fetch'] / MIB:.1f} MiB/s"),
        sections.Target("controller peak RSS during the transfers ≤ 64 MiB above its baseline",
                        f"+{max(growth.values()):.0f} MiB", max(growth.values()) <= 64),
    ]
    notes = [
        "Task time = playbook wall − the wall of the same play with one `debug` task (Ansible's fixed cost), "
        f"medians of {settings.play_reps} interleaved runs (transfers: {settings.exec_reps}); the allocation is a virtual one of the emulator, whose "
        "exec runs real processes in its task directory.",
        "Transfers run in fresh processes (the plugin loaded by Ansible's plugin loader; the allocation resolved "
        "before the clock starts). `put_file` includes the local file's `cksum` CRC, the size and CRC check in "
        "the task and the move into place; `fetch_file` the streaming CRC and the task's own size/CRC report. "
        "The floors move the same bytes in the same frames and check nothing.",
        "RSS growth = peak RSS of the transfer process − its RSS before the transfer started.",
    ]
    throughput = [transfer_bars("put_file (copy)", size, rate["put"], rate["floor-put"], "stdin"),
                  transfer_bars("fetch_file (fetch)", size, rate["fetch"], rate["floor-fetch"], "stdout")]
    return sections.SectionResult(5, "Connection plugin: module tasks and file transfers",
                                  "`nomadops.nomad.nomad_exec` against Ansible's local connection and a bare "
                                  "websocket-client loop.",
                                  ["what", "time", "per task / throughput", "÷ baseline", "wall / memory"],
                                  rows, targets, notes, metrics={"throughput": throughput})


def transfer_bars(what: str, size: int, collection_rate: float, floor_rate: float, stream: str) -> dict:
    """One group of the throughput chart (benchmarks/README.md, Charts)."""
    return {"label": f"{what}\n{size / MIB:.1f} MiB", "collection": collection_rate,
            "collection_label": "nomad_exec connection", "floor": floor_rate,
            "floor_label": f"websocket-client {stream} loop"}


if __name__ == "__main__":
    main()
