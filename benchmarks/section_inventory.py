# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark section: `ansible-inventory --list` over the nomad_allocs inventory plugin, against the same hosts
and variables from a static YAML inventory file and from a script inventory (Ansible's own per-host cost)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from benchmarks import sections
from benchmarks.measure import VENV_BIN, alternate, inners, run_child, walls, worker

FULL_ALLOCATIONS, QUICK_ALLOCATIONS = 10_000, 1_000
VIRTUAL_JOBS = 10
RUNNING_FILTER = '(ClientStatus == "running")'  # what the plugin sends with its default selector
CACHE_HIT_RATIO = 0.9  # a cache hit against the quicker of the two static references


def inventory_files(workdir: Path, address: str) -> dict:
    """The source files: the plugin without and with a cache, an empty ini file (Ansible's fixed cost), and
    (written once the plugin's hosts are known) the same hosts and variables as a static YAML inventory file and
    as a script printing them as JSON: what Ansible costs for these hosts whoever produces them."""
    plugin = {"plugin": "nomadops.nomad.nomad_allocs", "address": address}
    cached = dict(plugin, cache=True, cache_plugin="ansible.builtin.jsonfile",
                  cache_connection=str(workdir / "inventory-cache"), cache_timeout=3600)
    files = {"plugin": workdir / "bench.nomad_allocs.yml", "cached": workdir / "cached.nomad_allocs.yml",
             "empty": workdir / "empty.ini", "script": workdir / "static-inventory.sh",
             "yaml": workdir / "static-inventory.yml"}
    files["plugin"].write_text(yaml.safe_dump(plugin))
    files["cached"].write_text(yaml.safe_dump(cached))
    files["empty"].write_text("")
    return files


def write_static_script(files: dict, exported: str) -> None:
    dump = files["script"].with_suffix(".json")
    dump.write_text(exported)
    files["script"].write_text(f"#!/bin/sh\ncat '{dump}'\n")
    files["script"].chmod(0o755)


class UnsafeText(str):
    """A value `--export` marks `{"__ansible_unsafe": ...}` (never templated): written with YAML's `!unsafe` tag."""


class InventoryDumper(yaml.CSafeDumper):
    """The C dumper (10,000 hosts), with `!unsafe` for UnsafeText."""


InventoryDumper.add_representer(UnsafeText, lambda dumper, text: dumper.represent_scalar("!unsafe", str(text)))


def yaml_values(value):
    """The exported variables with `{"__ansible_unsafe": text}` as UnsafeText, as a YAML inventory holds them."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return UnsafeText(value["__ansible_unsafe"])
        return {key: yaml_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [yaml_values(item) for item in value]
    return value


def yaml_inventory(exported: dict) -> dict:
    """`ansible-inventory --list --export` output as a YAML inventory: every host with its variables under `all`,
    and each group with its hosts (no variables) and children."""
    hostvars = exported["_meta"]["hostvars"]
    groups = {}
    for name, group in exported.items():
        if name in ("_meta", "all"):
            continue
        entry = {}
        if group.get("hosts"):
            entry["hosts"] = {host: None for host in group["hosts"]}
        if group.get("children"):
            entry["children"] = {child: None for child in group["children"]}
        groups[name] = entry
    if not groups.get("ungrouped"):
        groups.pop("ungrouped", None)
    return {"all": {"hosts": {host: yaml_values(hostvars.get(host)) or None for host in hostvars}, "children": groups}}


def write_static_yaml(files: dict, exported: str) -> None:
    files["yaml"].write_text(yaml.dump(yaml_inventory(json.loads(exported)), Dumper=InventoryDumper, sort_keys=False))


def inventory_run(ansible, source: Path, *args) -> callable:
    argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list", *args]
    return lambda: run_child(argv, env=ansible.environment(None), cwd=ansible.workdir)


def host_count(ansible, source: Path, *args):
    """(the hosts `ansible-inventory --list` prints for `source`, the run's Sample)."""
    argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list", *args]
    sample = run_child(argv + ["--output", str(ansible.workdir / "count.json")], env=ansible.environment(None),
                       cwd=ansible.workdir)
    return len(json.loads((ansible.workdir / "count.json").read_text())["_meta"]["hostvars"]), sample


def run(settings) -> sections.SectionResult:
    ansible = settings.ansible()
    repetitions = 1 if settings.quick else 3
    allocations = QUICK_ALLOCATIONS if settings.quick else FULL_ALLOCATIONS
    scenario = sections.write_scenario(settings, "inventory", virtual_jobs=VIRTUAL_JOBS)
    with sections.EmulatorProcess(scenario=str(scenario), virtual=allocations) as emulator:
        files = inventory_files(settings.workdir, emulator.address)
        if host_count(ansible, files["plugin"], "--export")[0] != allocations:
            raise RuntimeError(f"inventory benchmark: the plugin did not list {allocations} hosts")
        exported = (ansible.workdir / "count.json").read_text()
        write_static_script(files, exported)
        write_static_yaml(files, exported)
        inventory_run(ansible, files["cached"])()  # fills the cache
        emulator.control.reset_requests()
        samples = alternate({
            "floor": lambda: worker("list-raw", address=emulator.address, filter=RUNNING_FILTER),
            "empty": inventory_run(ansible, files["empty"]),
            "plugin": inventory_run(ansible, files["plugin"]),
            "export": inventory_run(ansible, files["plugin"], "--export"),
            "cache_hit": inventory_run(ansible, files["cached"]),
            "script": inventory_run(ansible, files["script"]),
        }, repetitions)
        # Ansible reads a YAML inventory of this size about 15x slower than the script's JSON (every value
        # gets its origin); one run, which also checks that it holds every host.
        yaml_hosts, yaml_sample = host_count(ansible, files["yaml"])
        if yaml_hosts != allocations:
            raise RuntimeError(f"inventory benchmark: the static YAML inventory holds {yaml_hosts} hosts, "
                               f"expected {allocations}")
        samples["yaml"] = [yaml_sample]
        list_requests = emulator.control.requests().get("GET /v1/allocations", 0)
    expected_requests = 3 * repetitions  # floor, plugin and export; none from the cache hits
    if list_requests != expected_requests:
        raise RuntimeError(f"inventory benchmark: {list_requests} list requests, expected {expected_requests} "
                           "(a cache hit must not list)")
    return result(samples, allocations)


def result(samples: dict, allocations: int) -> sections.SectionResult:
    plugin = walls(samples["plugin"]).median
    cache_hit = walls(samples["cache_hit"]).median
    script = walls(samples["script"]).median
    static_yaml = walls(samples["yaml"]).median
    quicker_reference = min(script, static_yaml)
    rows = [
        [f"`requests` GET of the same filter ({allocations:,} allocations, one page; for scale)",
         inners(samples["floor"]).seconds(), "—", "—"],
        ["Ansible's fixed cost: `ansible-inventory --list` of an empty ini file", walls(samples["empty"]).seconds(),
         "—", "—"],
        ["floor: the same hosts and variables from a static YAML inventory file", walls(samples["yaml"]).seconds(),
         "1.00x", sections.ratio(static_yaml, script)],
        ["floor: the same hosts and variables from a script inventory (JSON)", walls(samples["script"]).seconds(),
         sections.ratio(script, static_yaml), "1.00x"],
        ["collection: `ansible-inventory --list`, nomad_allocs plugin", walls(samples["plugin"]).seconds(),
         sections.ratio(plugin, static_yaml), sections.ratio(plugin, script)],
        ["collection: `ansible-inventory --list --export` (what AWX runs)", walls(samples["export"]).seconds(),
         sections.ratio(walls(samples["export"]).median, static_yaml),
         sections.ratio(walls(samples["export"]).median, script)],
        ["collection: `ansible-inventory --list`, cache hit (jsonfile)", walls(samples["cache_hit"]).seconds(),
         sections.ratio(cache_hit, static_yaml), sections.ratio(cache_hit, script)],
    ]
    count = f"{allocations:,}"
    targets = [
        sections.Target(f"inventory {count}: `ansible-inventory --list` ≤ 1.0x the same hosts from a static YAML file",
                        sections.ratio(plugin, static_yaml), plugin <= static_yaml,
                        f"static YAML inventory {static_yaml:.2f} s"),
        sections.Target(f"inventory {count}: `ansible-inventory --list` ≤ 1.0x the same hosts from a script inventory",
                        sections.ratio(plugin, script), plugin <= script, f"script inventory {script:.2f} s"),
        sections.Target(f"inventory {count}: cache hit ≤ {CACHE_HIT_RATIO}x the quicker static inventory",
                        sections.ratio(cache_hit, quicker_reference), cache_hit <= CACHE_HIT_RATIO * quicker_reference,
                        f"{'script' if script <= static_yaml else 'static YAML'} inventory {quicker_reference:.2f} s"),
    ]
    notes = [
        f"{count} virtual allocations over {VIRTUAL_JOBS} jobs, default selector (running allocations, "
        "one server-side filter); every row is a fresh process; wall times.",
        "The floors are Ansible's own cost of holding and printing these hosts with no plugin: the plugin's "
        "`--list --export` output written once as a YAML inventory file (every host with its variables under "
        "`all`, the groups with their hosts) and as a script that prints it (JSON with `_meta.hostvars`). Both "
        "print the same hosts, groups and variables as the plugin row (checked by counting the hosts).",
        "The static YAML row runs once, after the others (it takes minutes at 10,000 hosts), with `--output` "
        "to a file (the count of its hosts is checked); the other rows are medians of interleaved runs.",
        "A cache hit sends no list request (checked on the emulator's request counter); its target is against "
        "the quicker of the two floors.",
    ]
    return sections.SectionResult(6, f"Inventory plugin over {count} allocations",
                                  "`ansible-inventory` with a `nomad_allocs` source against the emulator, and the "
                                  "same hosts and variables from static inventories.",
                                  ["command", "wall", "÷ static YAML", "÷ script"], rows, targets, notes)
