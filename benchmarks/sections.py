# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The measurements of benchmarks/run.py, one function per section; each returns a SectionResult."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from benchmarks.collection_path import REPO_ROOT
from benchmarks.measure import Ansible, Summary, alternate, inners, rss, walls, worker

sys.path.insert(0, str(REPO_ROOT))
from tests.emulator.harness import EmulatorProcess  # noqa: E402

MIB = 1024 * 1024


# The option of `nomad_alloc_exec` that leaves the lines out of the result (`stdout_lines` / `stderr_lines`
# are then empty): the exec benchmark's task passes exactly these arguments.
EXEC_SKIP_LINES_ARGUMENTS = {"output_lines": False}
# The keys `nomad_alloc_info`'s `fields` keeps in section 1's narrowed listing; the narrowed task also leaves
# out the summary (`summary: false`), which for five-key stubs is more values than the stubs themselves.
LIST_FIELDS = ["ID", "Name", "JobID", "ClientStatus", "NodeName"]
LIST_NARROWED_ARGUMENTS = {"fields": LIST_FIELDS, "summary": False}


@dataclass
class Settings:
    """Sizes and repetitions of every section. The full sizes fit the 20-minute budget of benchmarks/README.md
    on 2 cores; the quick ones are a smoke test (about 3 minutes), not a measurement."""

    workdir: Path
    quick: bool
    list_count: int
    list_per_page: int
    list_reps: int
    lookup_count: int
    lookup_reps: int
    bulk_count: int
    bulk_scaling_counts: tuple
    bulk_parallelism: int
    bulk_reps: int
    uri_counts: tuple
    exec_bytes: int
    exec_reps: int
    play_reps: int   # the connection section's 20-task playbooks (about 15 s each, the longest repeated step)
    latency_reps: int

    @classmethod
    def for_mode(cls, quick: bool, repetitions, workdir: Path) -> Settings:
        if quick:
            settings = cls(workdir=workdir, quick=True, list_count=5000, list_per_page=1000, list_reps=1,
                           lookup_count=1000, lookup_reps=1, bulk_count=50, bulk_scaling_counts=(10,),
                           bulk_parallelism=10, bulk_reps=1, uri_counts=(3, 10), exec_bytes=8 * MIB, exec_reps=1,
                           play_reps=1, latency_reps=1)
        else:
            settings = cls(workdir=workdir, quick=False, list_count=100_000, list_per_page=1000, list_reps=3,
                           lookup_count=10_000, lookup_reps=5, bulk_count=1000, bulk_scaling_counts=(10, 100),
                           bulk_parallelism=10, bulk_reps=3, uri_counts=(10, 100), exec_bytes=256 * MIB,
                           exec_reps=5, play_reps=3, latency_reps=7)
        if repetitions:
            for name in ("list_reps", "lookup_reps", "bulk_reps", "exec_reps", "play_reps", "latency_reps"):
                setattr(settings, name, repetitions)
        return settings

    def ansible(self) -> Ansible:
        return Ansible(self.workdir)


@dataclass
class Target:
    """One row of the Targets table: what is promised, what was measured, and the floor it is measured
    against (its own number, so that a reader sees both sides; "—" where the target is absolute)."""

    text: str
    measured: str
    met: bool
    floor: str = "—"


@dataclass
class SectionResult:
    """One section of BENCHMARKS.md. `metrics` holds the section's numbers for benchmarks/charts.py, in plain
    JSON types; the keys a chart reads are documented in benchmarks/README.md (Charts). run.py also writes
    every section's metrics to docs/benchmarks/results.json."""

    number: int
    title: str
    intro: str
    header: list
    rows: list
    targets: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    failed: bool = False  # set by run.py when the section raised; its one target is then missed

    def markdown(self) -> list:
        heading = self.title if self.failed else f"{self.number}. {self.title}"
        lines = [f"## {heading}", "", self.intro, ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "---|" * len(self.header))
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in self.rows]
        lines.append("")
        for note in self.notes:
            lines.append(f"- {note}")
        if self.notes:
            lines.append("")
        return lines


def write_scenario(settings: Settings, name: str, virtual_jobs: int) -> Path:
    """A scenario with one node, no process-backed jobs, and process-less allocations over `virtual_jobs` jobs."""
    scenario = {"region": "global", "datacenter": "dc1", "acl": False, "namespaces": ["default"],
                "nodes": [{"name": "node-1"}], "jobs": [],
                "virtual": {"job": "virtual", "jobs": virtual_jobs, "namespace": "default"}}
    path = settings.workdir / f"scenario-{name}.yml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


def mib_of(byte_count: float) -> str:
    return f"{byte_count / MIB:.1f} MiB"


def debug_task(message: str) -> dict:
    return {"name": "Report", "ansible.builtin.debug": {"msg": message}}


def baseline_playbook(ansible: Ansible) -> Path:
    """Ansible's fixed cost: a playbook with one debug task."""
    return ansible.write_playbook("baseline", [debug_task("hi")])


# ------------------------------------------------------------------------------------------ 1. list
def list_playbooks(ansible: Ansible, settings: Settings) -> dict:
    """The module task without and with `fields`; each playbook asserts what it got, so a listing that is
    short, or an ignored `fields`, fails the benchmark instead of timing something else."""
    arguments = {"per_page": settings.list_per_page, "task_states": False}
    expected_count = f"listed.count == {settings.list_count}"
    whole = [{"name": "List every allocation", "nomadops.nomad.nomad_alloc_info": arguments, "register": "listed"},
             {"name": "Check", "ansible.builtin.assert": {"that": [expected_count], "quiet": True}}]
    narrowed = [{"name": "List every allocation, five keys each", "nomadops.nomad.nomad_alloc_info":
                 dict(arguments, **LIST_NARROWED_ARGUMENTS), "register": "listed"},
                {"name": "Check", "ansible.builtin.assert": {"quiet": True, "that": [
                    expected_count, f"listed.allocations[0].keys() | sort == {sorted(LIST_FIELDS)}",
                    "listed.summary is not defined"]}}]
    return {"module": ansible.write_playbook("list-info", whole),
            "fields": ansible.write_playbook("list-info-fields", narrowed)}


def run_list(settings: Settings) -> SectionResult:
    ansible = settings.ansible()
    common = dict(per_page=settings.list_per_page, task_states=False)
    playbooks = list_playbooks(ansible, settings)
    scenario = write_scenario(settings, "list", virtual_jobs=10)
    with EmulatorProcess(scenario=str(scenario), virtual=settings.list_count) as emulator:
        address = emulator.address
        variants = {
            "raw": lambda: worker("list-raw", address=address, **common),
            "client": lambda: worker("list-client", address=address, **common),
            "fields": lambda: ansible.playbook(playbooks["fields"], address),
            "pynomad": lambda: worker("list-pynomad", address=address, task_states=False),
        }
        samples = alternate(variants, settings.list_reps)
        # The task without fields has no target (it is the chart's comparison) and takes 40-60 s: run once.
        samples.update(alternate({"module": lambda: ansible.playbook(playbooks["module"], address)}, 1))
        sizes = worker("list-raw", address=address, deep_size=True, **common).data
    for name in ("raw", "client", "pynomad"):
        counts = {sample.data.get("count") for sample in samples[name]}
        if counts != {settings.list_count}:
            raise RuntimeError(f"list benchmark: {name} listed {counts} allocations, expected {settings.list_count}")
    return list_result(settings, samples, sizes)


def rss_growth_kib(samples: list) -> Summary:
    return Summary.of([sample.peak_rss_kib - sample.data.get("rss_before_kib", 0) for sample in samples])


LIST_LABELS = {
    "raw": "floor: `requests` loop over the pages (per_page={per_page})",
    "client": "collection: `select_allocations` (NomadClient.paginate), same pages",
    "module": "collection: `ansible-playbook`, one `nomad_alloc_info` task (register + assert count)",
    "fields": "collection: the same task with `fields: [{fields}]` and `summary: false`",
    "pynomad": "peer: python-nomad 2.1.0 `allocations.get_allocations()` (one unpaged call)",
}
PLAYBOOK_VARIANTS = ("module", "fields")


def list_rows(settings: Settings, samples: dict) -> list:
    raw_work = inners(samples["raw"]).median
    raw_wall = walls(samples["raw"]).median
    rows = []
    for name, label in LIST_LABELS.items():
        in_process = name not in PLAYBOOK_VARIANTS
        work = inners(samples[name]) if in_process else None
        rows.append([
            label.format(per_page=settings.list_per_page, fields=", ".join(LIST_FIELDS)),
            work.seconds() if work else "—",
            walls(samples[name]).seconds(),
            ratio(work.median, raw_work) if work else ratio(walls(samples[name]).median, raw_wall) + " (wall)",
            rss(samples[name]).mib(),
            f"{rss_growth_kib(samples[name]).median / 1024:.0f} MiB" if in_process else "—",
        ])
    return rows


def list_targets(settings: Settings, samples: dict, deep_kib: float) -> list:
    raw_work = inners(samples["raw"]).median
    client_work = inners(samples["client"]).median
    growth = rss_growth_kib(samples["client"]).median
    raw_wall, fields_wall = walls(samples["raw"]).median, walls(samples["fields"]).median
    raw_rss, fields_rss = rss(samples["raw"]).median, rss(samples["fields"]).median
    count = f"{settings.list_count:,}"
    return [
        Target(f"list {count}: collection client ≤ 1.25x the requests floor (work)",
               ratio(client_work, raw_work), client_work <= 1.25 * raw_work, f"requests loop {raw_work:.3f} s work"),
        Target(f"list {count}: client RSS growth ≤ 2x decoded data ({deep_kib / 1024:.0f} MiB)",
               f"{growth / 1024:.0f} MiB = {growth / deep_kib:.2f}x", growth <= 2 * deep_kib,
               f"decoded data {deep_kib / 1024:.0f} MiB"),
        Target(f"list {count}: `nomad_alloc_info` task with `fields` (5 keys), `summary: false` ≤ 3x the floor's "
               "wall time",
               ratio(fields_wall, raw_wall), fields_wall <= 3 * raw_wall, f"requests loop {raw_wall:.2f} s wall"),
        Target(f"list {count}: `nomad_alloc_info` task with `fields` (5 keys), `summary: false` peak RSS ≤ 2x "
               "the floor's",
               f"{fields_rss / 1024:.0f} MiB = {ratio(fields_rss, raw_rss)}", fields_rss <= 2 * raw_rss,
               f"requests loop {raw_rss / 1024:.0f} MiB"),
    ]


def list_metrics(settings: Settings, samples: dict) -> dict:
    """metrics["listing"]: one bar per command for the listing chart (wall seconds, peak RSS MiB)."""
    kinds = {"raw": "floor", "pynomad": "peer", "module": "collection", "fields": "collection"}
    short = {"raw": "floor:\nrequests loop", "pynomad": "peer:\npython-nomad 2.1.0",
             "module": "nomad_alloc_info\ntask", "fields": "nomad_alloc_info\ntask, fields: 5 keys,\nsummary: false"}
    bars = [{"label": short[name], "kind": kinds[name], "wall": walls(samples[name]).median,
             "peak_rss_mib": rss(samples[name]).median / 1024} for name in ("raw", "pynomad", "module", "fields")]
    return {"listing": {"count": settings.list_count, "bars": bars, "wall_target_ratio": 3.0, "rss_target_ratio": 2.0}}


def list_result(settings: Settings, samples: dict, sizes: dict) -> SectionResult:
    deep_kib = sizes["deep_bytes"] / 1024
    notes = [
        f"Listed {settings.list_count:,} virtual allocations, `task_states=false`; response bodies "
        f"{mib_of(sizes['json_bytes'])} of JSON; decoded list {deep_kib / 1024:.0f} MiB (deep getsizeof).",
        "RSS growth = peak RSS minus the peak RSS right after the imports (the interpreter, requests and the "
        "collection's modules are not the data). The peak RSS of a playbook row is the largest of the "
        "ansible-playbook processes (controller, worker fork, module).",
        f"`fields: [{', '.join(LIST_FIELDS)}]` keeps five keys of each stub before the module returns: every key "
        "left out is saved three times (the module's JSON encoding, the controller's decoding, registering). "
        "`summary: false` leaves out the readable summary (eight values per allocation, more than the five kept), "
        "which `fields` alone keeps complete.",
        f"Every row is the median of {settings.list_reps} interleaved runs except the task without `fields`, which "
        "has no target and runs once after them (40–60 s a run).",
        "python-nomad 2.1.0 returns only the decoded body, never the `X-Nomad-NextToken` header, so it cannot "
        "follow pages: a user lists everything in one call (and must raise its default 5 s timeout; 300 s here).",
    ]
    return SectionResult(1, f"List {settings.list_count:,} allocations",
                         "Every allocation of the namespace, in a fresh process each time.",
                         ["command", "work", "wall", "work ÷ floor", "peak RSS", "RSS growth"],
                         list_rows(settings, samples), list_targets(settings, samples, deep_kib), notes,
                         list_metrics(settings, samples))


# ------------------------------------------------------------------------------------------ 2. lookup
def run_lookup(settings: Settings) -> SectionResult:
    ansible = settings.ansible()
    job = "virtual-0"
    playbook = ansible.write_playbook("lookup", [
        debug_task(f"{{{{ lookup('nomadops.nomad.nomad_alloc', job='{job}', wantlist=true) | length }}}}")])
    baseline = baseline_playbook(ansible)
    scenario = write_scenario(settings, "lookup", virtual_jobs=1)
    with EmulatorProcess(scenario=str(scenario), virtual=settings.lookup_count) as emulator:
        address = emulator.address
        variants = {
            "raw": lambda: worker("list-raw", address=address, filter=f'JobID == "{job}"'),
            "lookup": lambda: worker("lookup", address=address, job=job),
            "playbook": lambda: ansible.playbook(playbook, address),
            "baseline": lambda: ansible.playbook(baseline, address),
        }
        samples = alternate(variants, settings.lookup_reps)
    for name in ("raw", "lookup"):
        counts = {sample.data.get("count") for sample in samples[name]}
        if counts != {settings.lookup_count}:
            raise RuntimeError(f"lookup benchmark: {name} returned {counts}, expected {settings.lookup_count}")
    return lookup_result(settings, samples)


def lookup_result(settings: Settings, samples: dict) -> SectionResult:
    raw_work = inners(samples["raw"]).median
    lookup_work = inners(samples["lookup"]).median
    playbook_extra = walls(samples["playbook"]).median - walls(samples["baseline"]).median
    rows = [
        ["floor: `requests` GET with the same filter (one page, like the lookup's default)",
         inners(samples["raw"]).seconds(), walls(samples["raw"]).seconds(), "1.00x", rss(samples["raw"]).mib()],
        ["collection: lookup called in-process through `lookup_loader`", inners(samples["lookup"]).seconds(),
         walls(samples["lookup"]).seconds(), ratio(lookup_work, raw_work), rss(samples["lookup"]).mib()],
        ["collection: `ansible-playbook`, `debug: msg={{ lookup(...) \\| length }}`", "—",
         walls(samples["playbook"]).seconds(), f"{ratio(playbook_extra, raw_work)} (wall − baseline)",
         rss(samples["playbook"]).mib()],
        ["Ansible's fixed cost: the same playbook with `debug: msg=hi`", "—", walls(samples["baseline"]).seconds(),
         "—", rss(samples["baseline"]).mib()],
    ]
    targets = [Target(f"lookup {settings.lookup_count:,}: in-process lookup ≤ 1.2x the requests floor (work)",
                      ratio(lookup_work, raw_work), lookup_work <= 1.2 * raw_work,
                      f"requests GET {raw_work:.3f} s work")]
    notes = [
        f"`job=virtual-0` matches all {settings.lookup_count:,} allocations of the emulator (server-side filter "
        "`JobID == \"virtual-0\"`); lookup defaults kept (task states included, no per_page).",
        f"In a playbook the lookup adds {playbook_extra:.2f} s to Ansible's fixed cost "
        f"({ratio(playbook_extra, raw_work)} the floor's work; the in-process row shows how much of that is the "
        "lookup itself).",
    ]
    return SectionResult(2, f"`nomad_alloc` lookup over {settings.lookup_count:,} allocations",
                         "Lookup with a job selector, in a fresh process each time.",
                         ["command", "work", "wall", "÷ floor", "peak RSS"], rows, targets, notes)


# ------------------------------------------------------------------------------------------ 3. bulk
MODULE_ARGUMENTS = {
    "stop": ("nomadops.nomad.nomad_alloc_stop", {}),
    "signal": ("nomadops.nomad.nomad_alloc_signal", {"signal": "SIGHUP"}),
    "restart": ("nomadops.nomad.nomad_alloc_restart", {}),
}


def bulk_playbooks(ansible: Ansible, parallelism: int) -> dict:
    playbooks = {}
    for operation, (module, arguments) in MODULE_ARGUMENTS.items():
        task = {"name": f"{operation} a job's allocations",
                module: dict(arguments, job="{{ job }}", task_group="{{ group | default(omit) }}",
                             parallelism=parallelism), "register": "acted"}
        playbooks[operation] = ansible.write_playbook(f"bulk-{operation}", [task, debug_task("{{ acted.allocations | length }}")])
    return playbooks


def uri_loop_playbook(ansible: Ansible) -> Path:
    task = {"name": "Signal each allocation", "ansible.builtin.uri": {
        "url": "{{ nomad_addr }}/v1/client/allocation/{{ item }}/signal?namespace=default", "method": "POST",
        "body_format": "json", "body": {"Task": "main", "Signal": "SIGHUP"}}, "loop": "{{ alloc_ids }}"}
    return ansible.write_playbook("uri-loop-signal", [task])


def first_ids(address: str, job: str, count: int) -> list:
    """IDs of the job's first allocations, read without holding a large list in this (parent) process: the
    peak RSS of every child started later would include it (fork before exec)."""
    response = requests.get(f"{address}/v1/allocations", timeout=60, params={
        "namespace": "default", "filter": f'JobID == "{job}"', "per_page": count, "task_states": "false"})
    response.raise_for_status()
    return [alloc["ID"] for alloc in response.json()]


def run_bulk_at(settings: Settings, ansible: Ansible, playbooks: dict, count: int, full: bool) -> dict:
    """{operation: {variant: [Sample, ...]}} on `count` allocations per job; `full` adds Ansible's fixed cost
    and the empty selection (the target count), else only the task and the floor (the scaling points).
    The emulator's job virtual-0 is left for the `uri` loop; every stop run gets a job of its own."""
    jobs = 2 * settings.bulk_reps + 1
    fresh_jobs = iter(f"virtual-{number}" for number in range(1, jobs))
    scenario = write_scenario(settings, f"bulk-{count}", virtual_jobs=jobs)
    samples = {}
    with EmulatorProcess(scenario=str(scenario), virtual=count * jobs) as emulator:
        address = emulator.address

        def job_for(operation: str) -> str:
            return next(fresh_jobs) if operation == "stop" else "virtual-0"

        for operation in MODULE_ARGUMENTS:
            variants = {
                "module": lambda op=operation: ansible.playbook(playbooks[op], address, {"job": job_for(op)}),
                "raw": lambda op=operation: worker(
                    "bulk-raw", address=address, operation=op, job=job_for(op), parallelism=settings.bulk_parallelism),
            }
            if full:
                # Interleaved with the others, so that a change of machine load hits the fixed cost alike.
                variants["baseline"] = lambda: ansible.playbook(playbooks["baseline"], address)
                # An existing job and a group none of its allocations has: the module's cost with nothing to
                # do (a job that does not exist fails since the existence checks).
                variants["empty"] = lambda op=operation: ansible.playbook(playbooks[op], address,
                                                                          {"job": "virtual-0", "group": "no-such-group"})
            samples[operation] = alternate(variants, settings.bulk_reps)
            counts = {sample.data.get("count") for sample in samples[operation]["raw"]}
            if counts != {count}:
                raise RuntimeError(f"bulk benchmark: raw {operation} acted on {counts}, expected {count}")
        if full:
            samples["uri"] = run_uri_loops(settings, ansible, address)
    return samples


def run_uri_loops(settings: Settings, ansible: Ansible, address: str) -> dict:
    """{count: Sample}: one `uri` loop playbook per count in settings.uri_counts, signalling virtual-0's first."""
    loops = {}
    for count in settings.uri_counts:
        ids_file = ansible.write_vars(f"uri-ids-{count}", {"alloc_ids": first_ids(address, "virtual-0", count),
                                                           "nomad_addr": address})
        loops[count] = ansible.playbook(uri_loop_playbook(ansible), address, vars_file=ids_file)
        print(f"bench:   uri loop over {count}: {loops[count].wall:.2f} s wall", flush=True)
    return loops


def run_bulk(settings: Settings) -> SectionResult:
    ansible = settings.ansible()
    playbooks = dict(bulk_playbooks(ansible, settings.bulk_parallelism), baseline=baseline_playbook(ansible))
    scaling = {count: run_bulk_at(settings, ansible, playbooks, count, full=False)
               for count in settings.bulk_scaling_counts}
    samples = run_bulk_at(settings, ansible, playbooks, settings.bulk_count, full=True)
    return bulk_result(settings, samples, scaling)


@dataclass
class UriFit:
    """A `uri` loop's whole-playbook time as fixed + per_item × items, through its two largest measured loops."""

    fixed: float
    per_item: float

    @classmethod
    def of(cls, loops: dict) -> UriFit:
        small, large = sorted(loops)[-2:]
        per_item = (loops[large].wall - loops[small].wall) / (large - small)
        return cls(fixed=loops[large].wall - per_item * large, per_item=per_item)

    def seconds(self, items: int) -> float:
        return self.fixed + self.per_item * items


def bulk_scaling_rows(scaling: dict) -> list:
    rows = []
    for count, samples in scaling.items():
        for operation in MODULE_ARGUMENTS:
            module_wall, raw_wall = walls(samples[operation]["module"]), walls(samples[operation]["raw"])
            rows.append([f"`{MODULE_ARGUMENTS[operation][0].split('.')[-1]}`, {count:,} allocations",
                         module_wall.seconds(), "—", "—", "—", raw_wall.seconds(),
                         ratio(module_wall.median, raw_wall.median), "—", "—"])
    return rows


def bulk_metrics(settings: Settings, samples: dict, scaling: dict, fit: UriFit) -> dict:
    """metrics["bulk_scaling"]: whole-process medians per count, for the scaling chart."""
    every = {**scaling, settings.bulk_count: samples}
    counts = sorted(every)
    operations = {operation: {"collection": [walls(every[count][operation]["module"]).median for count in counts],
                              "floor": [walls(every[count][operation]["raw"]).median for count in counts]}
                  for operation in MODULE_ARGUMENTS}
    uri_counts = sorted(samples["uri"])
    return {"bulk_scaling": {"counts": counts, "operations": operations, "uri": {
        "counts": uri_counts, "seconds": [samples["uri"][count].wall for count in uri_counts],
        "fixed": fit.fixed, "per_item": fit.per_item}}}


def bulk_result(settings: Settings, samples: dict, scaling: dict) -> SectionResult:
    fit = UriFit.of(samples["uri"])
    uri_equivalent = fit.seconds(settings.bulk_count)
    rows, targets = [], []
    for operation in MODULE_ARGUMENTS:
        module_wall = walls(samples[operation]["module"])
        raw_wall = walls(samples[operation]["raw"])
        baseline = walls(samples[operation]["baseline"])
        task_time = module_wall.median - baseline.median
        rows.append([f"`{MODULE_ARGUMENTS[operation][0].split('.')[-1]}`, {settings.bulk_count:,} allocations",
                     module_wall.seconds(), baseline.seconds(), walls(samples[operation]["empty"]).seconds(),
                     f"{task_time:.3f} s", raw_wall.seconds(), ratio(module_wall.median, raw_wall.median),
                     ratio(task_time, raw_wall.median), f"{uri_equivalent / module_wall.median:.0f}x"])
        targets.append(Target(f"{operation} {settings.bulk_count:,}: one task ≤ 2x the requests floor "
                              "(task time = playbook − Ansible's fixed cost)",
                              ratio(task_time, raw_wall.median), task_time <= 2 * raw_wall.median,
                              f"requests, 10 threads: {raw_wall.median:.3f} s wall"))
        targets.append(Target(f"{operation} {settings.bulk_count:,}: ≥ 100x faster than a `uri` loop (whole playbooks)",
                              f"{uri_equivalent / module_wall.median:.0f}x",
                              uri_equivalent >= 100 * module_wall.median,
                              f"`uri` loop {uri_equivalent:.0f} s (extrapolated)"))
    rows += bulk_scaling_rows(scaling)
    measured = ", ".join(f"{count:,} items {loop.wall:.1f} s" for count, loop in sorted(samples["uri"].items()))
    uri_note = (f"The `ansible.builtin.uri` `loop:` ran once per size, signalling allocations ({measured}, whole "
                f"playbooks): {fit.per_item * 1000:.0f} ms per item + {fit.fixed:.2f} s. The speed-ups use that line "
                f"at {settings.bulk_count:,} items = {uri_equivalent:.1f} s (drawn dashed in the chart). Stop and "
                "restart through `uri` cost the same per item (one POST each), so the signal loop stands for all three.")
    notes = [
        f"Virtual allocations of one job per run, `parallelism: {settings.bulk_parallelism}`; the floor "
        f"lists the job's allocations and POSTs with a ThreadPoolExecutor of {settings.bulk_parallelism} over one "
        "`requests.Session`. Every stop run (module or floor) acts on another job's fresh allocations. The rows "
        f"with {', '.join(f'{count:,}' for count in settings.bulk_scaling_counts)} allocations are the scaling "
        "points of the chart (task and floor only).",
        "Signal and restart decide from each allocation's list entry (`TaskStates`) and read the full "
        "allocation only when that entry cannot decide, so with these healthy allocations they make one "
        "request per allocation, like the floor.",
        uri_note,
        "*debug playbook* = Ansible's fixed cost (one `debug` task); *empty selection* = the same module task "
        "with a job that matches nothing (Ansible's cost of running a module: AnsiballZ, a Python process, "
        "the imports, one list request); *task time* = playbook wall − debug playbook (medians), the floor "
        "is a whole Python process too.",
    ]
    return SectionResult(3, f"Stop / signal / restart {settings.bulk_count:,} allocations",
                         "One Ansible task against a hand-written concurrent `requests` floor and a `uri` loop.",
                         ["operation", "playbook wall", "debug playbook", "empty selection", "task time",
                          "floor wall", "playbook ÷ floor", "task ÷ floor", "vs `uri` loop"], rows, targets, notes,
                         bulk_metrics(settings, samples, scaling, fit))


# ------------------------------------------------------------------------------------------ 4. exec
def exec_playbooks(ansible: Ansible, alloc_id: str, byte_count: int) -> dict:
    """The streaming task with the skip-lines option (EXEC_SKIP_LINES_ARGUMENTS) and without. What each got is
    checked from the bench_task_ends callback's record (checked_exec_run), not by an `assert` task: templating
    `streamed.stdout` scans the whole registered output for `{{` each time it is read (16 times for one `assert`
    of two conditions), which took a tenth of the measured time and is no part of the exec task."""
    # max_output_bytes: the default keeps the last 128 MiB of each stream; this transfer wants all of it.
    arguments = {"id": alloc_id, "task": "main", "argv": ["head", "-c", str(byte_count), "/dev/zero"],
                 "command_timeout": 900, "max_output_bytes": byte_count}
    stream = [{"name": EXEC_TASK, "nomadops.nomad.nomad_alloc_exec": dict(arguments, **EXEC_SKIP_LINES_ARGUMENTS),
               "register": "streamed"}]
    lines = [{"name": EXEC_TASK, "nomadops.nomad.nomad_alloc_exec": arguments, "register": "streamed"}]
    echo = {"name": "Echo", "nomadops.nomad.nomad_alloc_exec": {"id": alloc_id, "command": "echo hi"}}
    command = {"name": "Echo", "ansible.builtin.command": {"cmd": "echo hi"}, "changed_when": False}
    return {
        "stream": ansible.write_playbook("exec-stream", stream),
        "lines": ansible.write_playbook("exec-stream-lines", lines),
        "echo": ansible.write_playbook("exec-echo", [echo]),
        "command": ansible.write_playbook("command-echo", [command]),
    }


EXEC_TASK = "Stream stdout"


def checked_exec_run(ansible: Ansible, playbook: Path, address: str, byte_count: int | None, lines: int | None):
    """One playbook run with the bench_task_ends callback; with byte_count, the exec task's stdout must have that
    length and its stdout_lines `lines` entries."""
    from benchmarks.section_nodes import playbook_with_task_ends

    record = ansible.workdir / "exec-ends.jsonl"
    sample, _ends = playbook_with_task_ends(ansible, playbook, address, record)
    if byte_count is not None:
        entry = next(json.loads(line) for line in record.read_text().splitlines() if EXEC_TASK in line)
        got = (entry.get("stdout_length"), entry.get("stdout_lines_length"))
        if got != (byte_count, lines):
            raise RuntimeError(f"exec benchmark: {playbook.name} returned (stdout length, stdout_lines length) {got}, "
                               f"expected {(byte_count, lines)}")
    return sample


def run_exec(settings: Settings) -> SectionResult:
    ansible = settings.ansible()
    baseline = baseline_playbook(ansible)
    scenario = write_scenario(settings, "exec", virtual_jobs=1)
    argv = ["head", "-c", str(settings.exec_bytes), "/dev/zero"]
    with EmulatorProcess(scenario=str(scenario), virtual=1) as emulator:
        address = emulator.address
        alloc_id = emulator.allocations("default")[0]["ID"]
        playbooks = exec_playbooks(ansible, alloc_id, settings.exec_bytes)
        throughput = alternate({
            "raw": lambda: worker("exec-raw", address=address, alloc_id=alloc_id, argv=argv),
            "session": lambda: worker("exec-session", address=address, alloc_id=alloc_id, argv=argv,
                                      max_output_bytes=settings.exec_bytes),
            "action": lambda: checked_exec_run(ansible, playbooks["stream"], address, settings.exec_bytes, 0),
            "baseline": lambda: checked_exec_run(ansible, baseline, address, None, None),
        }, settings.exec_reps)
        # Once, for comparison only: the default result with stdout_lines (no target); /dev/zero has no newline.
        throughput["lines"] = [checked_exec_run(ansible, playbooks["lines"], address, settings.exec_bytes, 1)]
        latency = alternate({
            "echo": lambda: ansible.playbook(playbooks["echo"], address),
            "command": lambda: ansible.playbook(playbooks["command"], address),
        }, settings.latency_reps)
    for name in ("raw", "session"):
        counts = {sample.data.get("bytes") for sample in throughput[name]}
        if counts != {settings.exec_bytes}:
            raise RuntimeError(f"exec benchmark: {name} received {counts} bytes, expected {settings.exec_bytes}")
    return exec_result(settings, throughput, latency)


def task_to_floor_per_run(size: int, throughput: dict) -> list:
    """The task's throughput ÷ the floor's, per repetition (the runs of one repetition ran back to back)."""
    pairs = zip(throughput["action"], throughput["baseline"], throughput["raw"])
    return [(size / (action.wall - baseline.wall)) / (size / raw.inner) for action, baseline, raw in pairs]


@dataclass
class ExecRates:
    """Section 4's medians: bytes per second of the floor, ExecSession, the task (with and without lines)."""

    size: int
    raw: float
    session: float
    action_time: float
    lines_time: float

    @classmethod
    def of(cls, size: int, throughput: dict) -> ExecRates:
        baseline_wall = walls(throughput["baseline"]).median
        return cls(size=size, raw=size / inners(throughput["raw"]).median,
                   session=size / inners(throughput["session"]).median,
                   action_time=walls(throughput["action"]).median - baseline_wall,
                   lines_time=throughput["lines"][0].wall - baseline_wall)

    @property
    def action(self) -> float:
        return self.size / self.action_time


def skip_lines_text() -> str:
    return ", ".join(f"`{name}: {str(value).lower()}`" for name, value in EXEC_SKIP_LINES_ARGUMENTS.items())


def exec_rows(rates: ExecRates, throughput: dict, latency: dict) -> list:
    size, raw_rate = rates.size, rates.raw
    return [
        [f"floor: bare `websocket-client` loop ({mib_of(size)} stdout)", inners(throughput["raw"]).seconds(),
         walls(throughput["raw"]).seconds(), f"{raw_rate / MIB:.1f} MiB/s", "1.00x", rss(throughput["raw"]).mib()],
        ["collection: `ExecSession` in-process", inners(throughput["session"]).seconds(),
         walls(throughput["session"]).seconds(), f"{rates.session / MIB:.1f} MiB/s", ratio(rates.session, raw_rate),
         rss(throughput["session"]).mib()],
        [f"collection: `ansible-playbook`, one `nomad_alloc_exec` task with {skip_lines_text()} (register; "
         "lengths checked by the benchmark's callback)", f"{rates.action_time:.3f} s (wall − baseline)", walls(throughput["action"]).seconds(),
         f"{rates.action / MIB:.1f} MiB/s", ratio(rates.action, raw_rate), rss(throughput["action"]).mib()],
        ["the same task with `stdout_lines` (the default; one run, no target)",
         f"{rates.lines_time:.3f} s (wall − baseline)", walls(throughput["lines"]).seconds(),
         f"{size / rates.lines_time / MIB:.1f} MiB/s", ratio(size / rates.lines_time, raw_rate),
         rss(throughput["lines"]).mib()],
        ["Ansible's fixed cost: playbook with `debug: msg=hi`", "—", walls(throughput["baseline"]).seconds(), "—", "—",
         rss(throughput["baseline"]).mib()],
        ["latency: playbook with one `nomad_alloc_exec` `echo hi` task", "—", walls(latency["echo"]).seconds(), "—",
         "—", rss(latency["echo"]).mib()],
        ["latency: playbook with one `ansible.builtin.command` `echo hi` task", "—", walls(latency["command"]).seconds(),
         "—", "—", rss(latency["command"]).mib()],
    ]


def exec_targets(rates: ExecRates, per_run: list, echo: Summary, command: Summary) -> list:
    size, raw_rate = rates.size, rates.raw
    floor = f"websocket-client loop {raw_rate / MIB:.1f} MiB/s"
    runs_met = sum(1 for value in per_run if value >= 0.9)
    difference = echo.median - command.median
    return [
        Target(f"exec {mib_of(size)}: `ExecSession` ≥ 0.8x the websocket-client floor's throughput",
               ratio(rates.session, raw_rate), rates.session >= 0.8 * raw_rate, floor),
        Target(f"exec {mib_of(size)}: `nomad_alloc_exec` task with {skip_lines_text()} ≥ 0.9x the floor's throughput "
               f"(task time) in {len(per_run)} of {len(per_run)} runs",
               f"{runs_met} of {len(per_run)} runs; {min(per_run):.2f}x–{max(per_run):.2f}x", runs_met == len(per_run),
               floor),
        Target("exec `echo hi` task ≤ +150 ms over an `ansible.builtin.command` task (playbook wall, medians)",
               f"{difference * 1000:+.0f} ms", difference <= 0.150, f"`command` task {command.median:.3f} s"),
    ]


def exec_result(settings: Settings, throughput: dict, latency: dict) -> SectionResult:
    size = settings.exec_bytes
    rates = ExecRates.of(size, throughput)
    per_run = task_to_floor_per_run(size, throughput)
    echo, command = walls(latency["echo"]), walls(latency["command"])
    difference = echo.median - command.median
    notes = [
        f"Output: `head -c {size} /dev/zero` in the task of a virtual allocation (the emulator runs it as a real "
        "process and sends Nomad's base64 JSON frames). Throughput = bytes ÷ work time; for the task, bytes ÷ "
        "(playbook wall − Ansible's fixed cost). Per run, the task is compared with the floor of the same "
        f"repetition: {', '.join(f'{value:.2f}x' for value in per_run)}.",
        f"Latency: {settings.latency_reps} runs each, interleaved; difference of medians {difference * 1000:+.0f} ms "
        f"(`nomad_alloc_exec` reads the allocation, then opens the WebSocket; `command` forks a module process).",
    ]
    metrics = {"throughput": [
        {"label": f"exec stdout\n{mib_of(size)}", "collection": rates.action, "collection_label": "nomad_alloc_exec task",
         "floor": rates.raw, "floor_label": "websocket-client loop"},
    ]}
    return SectionResult(4, "Exec: stdout throughput and latency",
                         "Exec output streamed through the collection against a bare websocket-client loop.",
                         ["command", "work", "wall", "throughput", "÷ floor", "peak RSS"],
                         exec_rows(rates, throughput, latency), exec_targets(rates, per_run, echo, command), notes,
                         metrics)


from benchmarks import (  # noqa: E402  (they use this module's helpers)
    section_connection,
    section_inventory,
    section_jobs,
    section_logs,
    section_nodes,
)

ORDER = ("list", "lookup", "bulk", "exec", "connection", "inventory", "logs", "nodes", "jobs")
RUNNERS = {"list": run_list, "lookup": run_lookup, "bulk": run_bulk, "exec": run_exec,
           "connection": section_connection.run, "inventory": section_inventory.run, "logs": section_logs.run,
           "nodes": section_nodes.run, "jobs": section_jobs.run}
