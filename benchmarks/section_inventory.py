# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark section: `ansible-inventory --list` over the nomad_allocs inventory plugin."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from benchmarks import sections
from benchmarks.measure import VENV_BIN, alternate, inners, run_child, walls, worker

ALLOCATIONS = 10_000
VIRTUAL_JOBS = 10
RUNNING_FILTER = '(ClientStatus == "running")'  # what the plugin sends with its default selector
CACHE_HIT_BUDGET_SECONDS = 0.3


def inventory_files(workdir: Path, address: str) -> dict:
    """The source files: the plugin without and with a cache, an empty ini file (Ansible's fixed cost), and a
    script printing the same hosts as static JSON (what Ansible costs for these hosts whoever produces them)."""
    plugin = {"plugin": "nomadops.nomad.nomad_allocs", "address": address}
    cached = dict(plugin, cache=True, cache_plugin="ansible.builtin.jsonfile",
                  cache_connection=str(workdir / "inventory-cache"), cache_timeout=3600)
    files = {"plugin": workdir / "bench.nomad_allocs.yml", "cached": workdir / "cached.nomad_allocs.yml",
             "empty": workdir / "empty.ini", "static": workdir / "static-inventory.sh"}
    files["plugin"].write_text(yaml.safe_dump(plugin))
    files["cached"].write_text(yaml.safe_dump(cached))
    files["empty"].write_text("")
    return files


def write_static_script(files: dict, exported: str) -> None:
    dump = files["static"].with_suffix(".json")
    dump.write_text(exported)
    files["static"].write_text(f"#!/bin/sh\ncat '{dump}'\n")
    files["static"].chmod(0o755)


def inventory_run(ansible, source: Path, *args) -> callable:
    argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list", *args]
    return lambda: run_child(argv, env=ansible.environment(None), cwd=ansible.workdir)


def host_count(ansible, source: Path) -> int:
    argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list", "--export"]
    run_child(argv + ["--output", str(ansible.workdir / "count.json")], env=ansible.environment(None), cwd=ansible.workdir)
    return len(json.loads((ansible.workdir / "count.json").read_text())["_meta"]["hostvars"])


def run(settings) -> sections.SectionResult:
    ansible = settings.ansible()
    repetitions = 1 if settings.quick else 3
    scenario = sections.write_scenario(settings, "inventory", virtual_jobs=VIRTUAL_JOBS)
    with sections.EmulatorProcess(scenario=str(scenario), virtual=ALLOCATIONS) as emulator:
        files = inventory_files(settings.workdir, emulator.address)
        if host_count(ansible, files["plugin"]) != ALLOCATIONS:
            raise RuntimeError(f"inventory benchmark: the plugin did not list {ALLOCATIONS} hosts")
        write_static_script(files, (ansible.workdir / "count.json").read_text())
        inventory_run(ansible, files["cached"])()  # fills the cache
        emulator.control.reset_requests()
        samples = alternate({
            "floor": lambda: worker("list-raw", address=emulator.address, filter=RUNNING_FILTER),
            "empty": inventory_run(ansible, files["empty"]),
            "plugin": inventory_run(ansible, files["plugin"]),
            "export": inventory_run(ansible, files["plugin"], "--export"),
            "cache_hit": inventory_run(ansible, files["cached"]),
            "static": inventory_run(ansible, files["static"]),
        }, repetitions)
        list_requests = emulator.control.requests().get("GET /v1/allocations", 0)
    expected_requests = 3 * repetitions  # floor, plugin and export; none from the cache hits
    if list_requests != expected_requests:
        raise RuntimeError(f"inventory benchmark: {list_requests} list requests, expected {expected_requests} "
                           "(a cache hit must not list)")
    return result(samples)


def result(samples: dict) -> sections.SectionResult:
    fixed = walls(samples["empty"]).median
    listing = inners(samples["floor"]).median
    floor = fixed + listing
    plugin = walls(samples["plugin"]).median
    cache_hit = walls(samples["cache_hit"]).median
    static = walls(samples["static"]).median
    rows = [
        [f"floor: `requests` GET of the same filter ({ALLOCATIONS:,} allocations, one page)",
         inners(samples["floor"]).seconds(), "—"],
        ["Ansible's fixed cost: `ansible-inventory --list` of an empty ini file", walls(samples["empty"]).seconds(), "—"],
        ["floor total (listing + fixed cost)", f"{floor:.3f} s", "1.00x"],
        ["collection: `ansible-inventory --list`, nomad_allocs plugin", walls(samples["plugin"]).seconds(),
         sections.ratio(plugin, floor)],
        ["collection: `ansible-inventory --list --export` (what AWX runs)", walls(samples["export"]).seconds(),
         sections.ratio(walls(samples["export"]).median, floor)],
        ["collection: `ansible-inventory --list`, cache hit (jsonfile)", walls(samples["cache_hit"]).seconds(),
         sections.ratio(cache_hit, floor)],
        ["reference: the same hosts and vars from a static script inventory", walls(samples["static"]).seconds(),
         sections.ratio(static, floor)],
        ["plugin ÷ static reference (the collection's share)", "—", sections.ratio(plugin, static)],
    ]
    targets = [
        sections.Target(f"inventory {ALLOCATIONS:,}: `ansible-inventory --list` ≤ 2x (listing floor + fixed cost)",
                        sections.ratio(plugin, floor), plugin <= 2 * floor,
                        f"listing {listing:.2f} s + fixed cost {fixed:.2f} s"),
        sections.Target(f"inventory {ALLOCATIONS:,}: cache hit ≤ fixed cost + {CACHE_HIT_BUDGET_SECONDS} s",
                        f"+{cache_hit - fixed:.2f} s", cache_hit - fixed <= CACHE_HIT_BUDGET_SECONDS,
                        f"fixed cost {fixed:.2f} s"),
    ]
    notes = [
        f"{ALLOCATIONS:,} virtual allocations over {VIRTUAL_JOBS} jobs, default selector (running allocations, "
        "one server-side filter); every row is a fresh process; wall times.",
        "The static-script row is Ansible's own cost of holding and printing these hosts (VariableManager per "
        "host, the JSON encoder marking every untrusted string) with no plugin at all: the part of the plugin "
        "row above it is Ansible's, not the collection's. A cache hit sends no list request (checked on the "
        "emulator's request counter).",
        "Both targets are measured against a floor without Ansible's per-host cost, so at 10,000 hosts no plugin "
        "can meet them: compare the plugin and cache-hit rows with the static-script row, which has no plugin.",
    ]
    return sections.SectionResult(6, f"Inventory plugin over {ALLOCATIONS:,} allocations",
                                  "`ansible-inventory` with a `nomad_allocs` source against the emulator.",
                                  ["command", "wall", "÷ floor"], rows, targets, notes)
