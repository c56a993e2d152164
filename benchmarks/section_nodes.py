# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark section: client nodes.

- `nomad_node_info` over many nodes (one task) against a raw `requests` listing of `/v1/nodes`;
- a drain with `wait: true` of the node holding the 200 virtual allocations of
  tests/emulator/scenarios/nodes-bench.yml: how long after Nomad's `Node drain complete` event (its timestamp
  in the emulator's node events) the task returned;
- the `nomad_nodes` inventory over the same nodes against the same hosts and variables from a static YAML
  inventory file, when plugins/inventory/nomad_nodes.py exists (else reported as not measured);
- the emulator itself at scale (issue 25): start-up with 500 virtual allocations over 20 nodes
  (tests/emulator/scenarios/nodes-500.yml) under 5 s, and the 200-allocation drain under 30 s of wall time.

Also a worker script: ``python benchmarks/section_nodes.py nodes-floor '<json arguments>'`` lists the nodes in a
fresh process and prints one JSON line (seconds, count, peak_kib), like workers.py.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.workers import peak_rss_kib  # noqa: E402

SELF = Path(__file__).resolve()
DRAIN_SCENARIO = REPO_ROOT / "tests" / "emulator" / "scenarios" / "nodes-bench.yml"
DRAINED_NODE = "node-1"
DRAIN_LATENCY_TARGET_SECONDS = 0.5
DRAIN_RUNS = 5  # full mode; each on a fresh emulator (about 5 s a run)
NODES_PLUGIN = REPO_ROOT / "plugins" / "inventory" / "nomad_nodes.py"
STARTUP_SCENARIO = REPO_ROOT / "tests" / "emulator" / "scenarios" / "nodes-500.yml"
STARTUP_TARGET_SECONDS = 5.0
DRAIN_DURATION_TARGET_SECONDS = 30.0


# ------------------------------------------------------------------------------------------ worker (child side)
def worker_nodes_floor(args: dict) -> dict:
    """One requests GET of /v1/nodes (what a user's script does), decoded."""
    import requests

    start = time.perf_counter()
    response = requests.get(f"{args['address']}/v1/nodes", timeout=120)
    response.raise_for_status()
    count = len(response.json())
    return {"seconds": time.perf_counter() - start, "count": count}


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    answer = {"nodes-floor": worker_nodes_floor}[name](arguments)
    answer["peak_kib"] = peak_rss_kib()
    print(json.dumps(answer), flush=True)


# ------------------------------------------------------------------------------------------ the section (parent side)
def node_scenario(settings, count: int) -> Path:
    import yaml

    scenario = {"region": "global", "datacenter": "dc1", "acl": False, "namespaces": ["default"],
                "nodes": [{"name": "node", "count": count}], "jobs": []}
    path = settings.workdir / f"scenario-nodes-{count}.yml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def node_info_playbook(ansible, count: int) -> Path:
    return ansible.write_playbook("nodes-info", [
        {"name": "List the nodes", "nomadops.nomad.nomad_node_info": {}, "register": "listed"},
        {"name": "Check", "ansible.builtin.assert": {"that": [f"listed.count == {count}"], "quiet": True}}])


DRAIN_TASK = "Drain and wait"
CALLBACKS = REPO_ROOT / "benchmarks" / "callback_plugins"


def drain_playbook(ansible) -> Path:
    return ansible.write_playbook("nodes-drain", [
        {"name": DRAIN_TASK, "nomadops.nomad.nomad_node": {"node": DRAINED_NODE, "drain": True}, "register": "drained"},
        {"name": "Check", "ansible.builtin.assert": {"that": ["drained is changed"], "quiet": True}}])


def playbook_with_task_ends(ansible, playbook: Path, address: str, ends: Path, extra_vars: dict | None = None):
    """ansible-playbook with the bench_task_ends callback writing when each task's result reached the controller."""
    from benchmarks.measure import VENV_BIN, run_child

    env = ansible.environment(address)
    env.update(ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS), ANSIBLE_CALLBACKS_ENABLED="bench_task_ends",
               NOMADOPS_BENCH_TASK_ENDS=str(ends))
    ends.unlink(missing_ok=True)
    argv = [str(VENV_BIN / "ansible-playbook"), str(playbook)] + (["-e", json.dumps(extra_vars)] if extra_vars else [])
    sample = run_child(argv, env=env, cwd=ansible.workdir)
    return sample, {entry["task"]: entry["ended"] for entry in map(json.loads, ends.read_text().splitlines())}


def node_events(address: str, name: str) -> list:
    import requests

    nodes = requests.get(f"{address}/v1/nodes", params={"filter": f'Name == "{name}"'}, timeout=60).json()
    return requests.get(f"{address}/v1/node/{nodes[0]['ID']}", timeout=60).json()["Events"]


def rfc3339_seconds(text: str) -> float:
    """Go's RFC 3339 time (nanoseconds, `Z`) as Unix seconds (microsecond precision)."""
    moment, _dot, fraction = text.rstrip("Z").partition(".")
    parsed = datetime.datetime.fromisoformat(moment).replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp() + float(f"0.{fraction or 0}")


def measure_drain(settings, ansible, playbook: Path):
    """One drain on a fresh emulator: (the playbook's Sample, seconds from drain-complete to the task's return,
    seconds from the drain's start to its completion)."""
    from benchmarks.sections import EmulatorProcess

    with EmulatorProcess(scenario=str(DRAIN_SCENARIO)) as emulator:
        sample, ends = playbook_with_task_ends(ansible, playbook, emulator.address, settings.workdir / "ends.jsonl")
        events = {event["Message"]: rfc3339_seconds(event["Timestamp"])
                  for event in node_events(emulator.address, DRAINED_NODE)}
    if "Node drain complete" not in events:
        raise RuntimeError(f"nodes benchmark: the drain task returned but {DRAINED_NODE}'s drain is not complete")
    returned = ends[DRAIN_TASK]
    completed = events["Node drain complete"]
    return sample, returned - completed, completed - events["Node drain strategy set"]


def measure_node_info(settings, ansible, count: int) -> dict:
    from benchmarks.measure import alternate, run_child, worker_environment, PYTHON
    from benchmarks.sections import EmulatorProcess, baseline_playbook

    playbook, baseline = node_info_playbook(ansible, count), baseline_playbook(ansible)
    with EmulatorProcess(scenario=str(node_scenario(settings, count))) as emulator:
        address = emulator.address
        floor_argv = [PYTHON, str(SELF), "nodes-floor", json.dumps({"address": address})]
        variants = {
            "floor": lambda: run_child(floor_argv, env=worker_environment()),
            "task": lambda: ansible.playbook(playbook, address),
            "baseline": lambda: ansible.playbook(baseline, address),
        }
        samples = alternate(variants, settings.bulk_reps)
        if NODES_PLUGIN.exists():
            samples.update(measure_nodes_inventory(settings, ansible, address, count))
    if {sample.data.get("count") for sample in samples["floor"]} != {count}:
        raise RuntimeError(f"nodes benchmark: the floor did not list {count} nodes")
    return samples


def measure_nodes_inventory(settings, ansible, address: str, count: int) -> dict:
    """`ansible-inventory --list` with nomad_nodes, and with its hosts and variables as a static YAML file."""
    import yaml

    from benchmarks import section_inventory
    from benchmarks.measure import alternate

    source = settings.workdir / "bench.nomad_nodes.yml"
    source.write_text(yaml.safe_dump({"plugin": "nomadops.nomad.nomad_nodes", "address": address}))
    hosts, _sample = section_inventory.host_count(ansible, source, "--export")
    if hosts != count:
        raise RuntimeError(f"nodes benchmark: nomad_nodes listed {hosts} hosts, expected {count}")
    files = {"yaml": settings.workdir / "static-nodes.yml"}
    section_inventory.write_static_yaml(files, (ansible.workdir / "count.json").read_text())
    return {f"inventory_{name}": runs for name, runs in alternate({
        "plugin": section_inventory.inventory_run(ansible, source),
        "static": section_inventory.inventory_run(ansible, files["yaml"]),
    }, settings.bulk_reps).items()}


def measure_startup() -> float:
    """Seconds from starting the emulator with nodes-500.yml to its ready line (process start included)."""
    from benchmarks.sections import EmulatorProcess

    started = time.perf_counter()
    with EmulatorProcess(scenario=str(STARTUP_SCENARIO)):
        return time.perf_counter() - started


def run(settings):
    ansible = settings.ansible()
    count = 100 if settings.quick else 1000
    samples = measure_node_info(settings, ansible, count)
    playbook = drain_playbook(ansible)
    runs = 1 if settings.quick else DRAIN_RUNS
    drains = [measure_drain(settings, ansible, playbook) for _run in range(runs)]
    startups = [measure_startup() for _run in range(runs)]
    return result(count, samples, drains, startups)


def result(count: int, samples: dict, drains: list, startups: list):
    from benchmarks import sections
    from benchmarks.measure import Summary, inners, walls

    fixed = walls(samples["baseline"]).median
    floor = inners(samples["floor"]).median
    # A quick run's small listing takes less than the noise of the fixed cost: never a negative time.
    task = max(walls(samples["task"]).median - fixed, 0.001)
    latency = Summary.of([lag for _sample, lag, _duration in drains])
    duration = Summary.of([took for _sample, _lag, took in drains])
    startup = Summary.of(startups)
    rows = [
        [f"floor: `requests` GET /v1/nodes ({count:,} nodes, decoded)", inners(samples["floor"]).seconds(), "1.00x"],
        ["Ansible's fixed cost: a playbook with one `debug` task", walls(samples["baseline"]).seconds(), "—"],
        [f"`nomad_node_info` task over {count:,} nodes (playbook − the `debug` playbook)", f"{task:.3f} s",
         sections.ratio(task, floor)],
        ["drain of a node with 200 virtual allocations, `wait: true`: drain start to `Node drain complete`",
         duration.seconds(), "—"],
        ["the same drain: `Node drain complete` to the task's return", latency.seconds(), "—"],
        ["emulator start-up, 500 virtual allocations over 20 nodes (process start to ready)", startup.seconds(), "—"],
    ]
    targets = [sections.Target(
        f"drain of 200 allocations with `wait: true`: the task returns ≤ {DRAIN_LATENCY_TARGET_SECONDS} s after "
        "the drain completes (every run)", f"{latency.high:.3f} s at most (median {latency.median:.3f} s)",
        latency.high <= DRAIN_LATENCY_TARGET_SECONDS, "Node drain complete event"),
        sections.Target(f"emulator: a drain of 200 virtual allocations completes in < {DRAIN_DURATION_TARGET_SECONDS:.0f} s "
                        "of wall time (every run)", f"{duration.high:.2f} s at most",
                        duration.high < DRAIN_DURATION_TARGET_SECONDS, "drain start to Node drain complete"),
        sections.Target(f"emulator: 500 virtual allocations over 20 nodes start in < {STARTUP_TARGET_SECONDS:.0f} s "
                        "(every run)", f"{startup.high:.2f} s at most", startup.high < STARTUP_TARGET_SECONDS,
                        "process start to ready line")]
    notes = [
        f"The node-info rows are medians of {len(samples['floor'])} interleaved runs, the drain rows of {len(drains)} "
        "runs. Each drain "
        "runs on a fresh emulator with tests/emulator/scenarios/nodes-bench.yml (20 nodes, 200 virtual "
        "allocations of 10 jobs on node-1, migrate max_parallel 5, min_healthy_time 100ms).",
        "The return is when the drain task's result reached the controller (benchmarks/callback_plugins/"
        "bench_task_ends.py); the completion is the timestamp of the node's `Node drain complete` event in the "
        "emulator (same clock).",
    ]
    if "inventory_plugin" in samples:
        plugin, static = walls(samples["inventory_plugin"]).median, walls(samples["inventory_static"]).median
        rows += [[f"`ansible-inventory --list`, nomad_nodes over {count:,} nodes",
                  walls(samples["inventory_plugin"]).seconds(), sections.ratio(plugin, static)],
                 ["the same hosts and variables from a static YAML inventory file",
                  walls(samples["inventory_static"]).seconds(), "1.00x"]]
        targets.append(sections.Target(f"nomad_nodes inventory {count:,}: ≤ 1.0x the same hosts from a static YAML "
                                       "file", sections.ratio(plugin, static), plugin <= static,
                                       f"static YAML inventory {static:.2f} s"))
    else:
        rows.append([f"`ansible-inventory --list`, nomad_nodes over {count:,} nodes", "not measured", "—"])
        notes.append("The nomad_nodes inventory plugin is not in this tree (plugins/inventory/nomad_nodes.py): "
                     "not measured.")
    metrics = {"wait_latency": [{"label": "drain, 200 allocations\n(Node drain complete)",
                                 "seconds": [lag for _sample, lag, _duration in drains],
                                 "target": DRAIN_LATENCY_TARGET_SECONDS}]}
    return sections.SectionResult(8, "Client nodes: info, drain with wait, inventory",
                                  "`nomad_node_info`, `nomad_node` and `nomad_nodes` against the emulator.",
                                  ["what", "time", "÷ floor"], rows, targets, notes, metrics=metrics)


if __name__ == "__main__":
    main()
