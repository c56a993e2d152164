"""The measurements of benchmarks/run.py, one function per section; each returns a SectionResult."""

from __future__ import annotations

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


@dataclass
class Settings:
    workdir: Path
    quick: bool
    list_count: int
    list_per_page: int
    list_reps: int
    lookup_count: int
    lookup_reps: int
    bulk_count: int
    bulk_parallelism: int
    bulk_reps: int
    uri_count: int
    exec_bytes: int
    exec_reps: int
    latency_reps: int

    @classmethod
    def for_mode(cls, quick: bool, repetitions, workdir: Path) -> "Settings":
        if quick:
            settings = cls(workdir=workdir, quick=True, list_count=5000, list_per_page=1000, list_reps=1,
                           lookup_count=1000, lookup_reps=1, bulk_count=50, bulk_parallelism=10, bulk_reps=1,
                           uri_count=10, exec_bytes=8 * MIB, exec_reps=1, latency_reps=1)
        else:
            # Sized so that the whole run stays under 20 minutes on 2 idle cores: the 100,000-item module run
            # (~80 s each) and the uri loop (~0.35 s per item) dominate.
            settings = cls(workdir=workdir, quick=False, list_count=100_000, list_per_page=1000, list_reps=3,
                           lookup_count=10_000, lookup_reps=5, bulk_count=1000, bulk_parallelism=10, bulk_reps=3,
                           uri_count=200, exec_bytes=256 * MIB, exec_reps=3, latency_reps=7)
        if repetitions:
            for name in ("list_reps", "lookup_reps", "bulk_reps", "exec_reps", "latency_reps"):
                setattr(settings, name, repetitions)
        return settings

    def ansible(self) -> Ansible:
        return Ansible(self.workdir)


@dataclass
class Target:
    text: str
    measured: str
    met: bool


@dataclass
class SectionResult:
    number: int
    title: str
    intro: str
    header: list
    rows: list
    targets: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def markdown(self) -> list:
        lines = [f"## {self.number}. {self.title}", "", self.intro, ""]
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
def run_list(settings: Settings) -> SectionResult:
    ansible = settings.ansible()
    common = dict(per_page=settings.list_per_page, task_states=False)
    playbook = ansible.write_playbook("list-info", [
        {"name": "List every allocation", "nomadops.nomad.nomad_alloc_info": {
            "per_page": settings.list_per_page, "task_states": False}, "register": "listed"},
        debug_task("{{ listed.count }}"),
    ])
    scenario = write_scenario(settings, "list", virtual_jobs=10)
    with EmulatorProcess(scenario=str(scenario), virtual=settings.list_count) as emulator:
        address = emulator.address
        variants = {
            "raw": lambda: worker("list-raw", address=address, **common),
            "client": lambda: worker("list-client", address=address, **common),
            "module": lambda: ansible.playbook(playbook, address),
            "pynomad": lambda: worker("list-pynomad", address=address, task_states=False),
        }
        samples = alternate(variants, settings.list_reps)
        sizes = worker("list-raw", address=address, deep_size=True, **common).data
    for name, expected in (("raw", settings.list_count), ("client", settings.list_count), ("pynomad", settings.list_count)):
        counts = {sample.data.get("count") for sample in samples[name]}
        if counts != {expected}:
            raise RuntimeError(f"list benchmark: {name} listed {counts} allocations, expected {expected}")
    return list_result(settings, samples, sizes)


def rss_growth_kib(samples: list) -> Summary:
    return Summary.of([sample.peak_rss_kib - sample.data.get("rss_before_kib", 0) for sample in samples])


def list_result(settings: Settings, samples: dict, sizes: dict) -> SectionResult:
    raw_work = inners(samples["raw"]).median
    client_work = inners(samples["client"]).median
    deep_kib = sizes["deep_bytes"] / 1024
    growth = rss_growth_kib(samples["client"]).median
    rows = []
    labels = {
        "raw": f"floor: `requests` loop over the pages (per_page={settings.list_per_page})",
        "client": "collection: `select_allocations` (NomadClient.paginate), same pages",
        "module": "collection: `ansible-playbook`, one `nomad_alloc_info` task (register + count)",
        "pynomad": "peer: python-nomad 2.1.0 `allocations.get_allocations()` (one unpaged call)",
    }
    for name, label in labels.items():
        work = inners(samples[name]) if name != "module" else None
        rows.append([
            label,
            work.seconds() if work else "—",
            walls(samples[name]).seconds(),
            ratio(work.median, raw_work) if work else ratio(walls(samples[name]).median, walls(samples["raw"]).median) + " (wall)",
            rss(samples[name]).mib(),
            f"{rss_growth_kib(samples[name]).median / 1024:.0f} MiB" if name != "module" else "—",
        ])
    targets = [
        Target(f"list {settings.list_count:,}: collection client ≤ 1.25x the requests floor (work)",
               ratio(client_work, raw_work), client_work <= 1.25 * raw_work),
        Target(f"list {settings.list_count:,}: client RSS growth ≤ 2x decoded data ({deep_kib / 1024:.0f} MiB)",
               f"{growth / 1024:.0f} MiB = {growth / deep_kib:.2f}x", growth <= 2 * deep_kib),
    ]
    notes = [
        f"Listed {settings.list_count:,} virtual allocations, `task_states=false`; response bodies "
        f"{mib_of(sizes['json_bytes'])} of JSON; decoded list {deep_kib / 1024:.0f} MiB (deep getsizeof).",
        "RSS growth = peak RSS minus the peak RSS right after the imports (the interpreter, requests and the "
        "collection's modules are not the data). The module row's peak RSS is the largest of the "
        "ansible-playbook processes (controller, worker fork, module).",
        "python-nomad 2.1.0 returns only the decoded body, never the `X-Nomad-NextToken` header, so it cannot "
        "follow pages: a user lists everything in one call (and must raise its default 5 s timeout; 300 s here).",
    ]
    return SectionResult(1, f"List {settings.list_count:,} allocations",
                         "Every allocation of the namespace, in a fresh process each time.",
                         ["command", "work", "wall", "work ÷ floor", "peak RSS", "RSS growth"], rows, targets, notes)


# ------------------------------------------------------------------------------------------ 2. lookup
def run_lookup(settings: Settings) -> SectionResult:
    ansible = settings.ansible()
    job = "virtual-0"
    playbook = ansible.write_playbook("lookup", [
        debug_task("{{ lookup('nomadops.nomad.nomad_alloc', job='%s', wantlist=true) | length }}" % job)])
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
                      ratio(lookup_work, raw_work), lookup_work <= 1.2 * raw_work)]
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
                module: dict(arguments, job="{{ job }}", parallelism=parallelism), "register": "acted"}
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


def run_bulk(settings: Settings) -> SectionResult:
    ansible = settings.ansible()
    playbooks = bulk_playbooks(ansible, settings.bulk_parallelism)
    baseline = baseline_playbook(ansible)
    fresh_jobs = iter(f"virtual-{number}" for number in range(1, 2 * settings.bulk_reps + 1))
    jobs = 2 * settings.bulk_reps + 1
    scenario = write_scenario(settings, "bulk", virtual_jobs=jobs)
    samples = {}
    with EmulatorProcess(scenario=str(scenario), virtual=settings.bulk_count * jobs) as emulator:
        address = emulator.address

        def job_for(operation: str) -> str:
            return next(fresh_jobs) if operation == "stop" else "virtual-0"

        for operation in MODULE_ARGUMENTS:
            variants = {
                "module": lambda op=operation: ansible.playbook(playbooks[op], address, {"job": job_for(op)}),
                "raw": lambda op=operation: worker(
                    "bulk-raw", address=address, operation=op, job=job_for(op), parallelism=settings.bulk_parallelism),
                # Interleaved with the others, so that a change of machine load hits the fixed cost alike.
                "baseline": lambda: ansible.playbook(baseline, address),
                "empty": lambda op=operation: ansible.playbook(playbooks[op], address, {"job": "no-such-job"}),
            }
            samples[operation] = alternate(variants, settings.bulk_reps)
        ids_file = ansible.write_vars("uri-ids", {"alloc_ids": first_ids(address, "virtual-0", settings.uri_count),
                                                  "nomad_addr": address})
        samples["uri"] = [ansible.playbook(uri_loop_playbook(ansible), address, vars_file=ids_file)]
        samples["uri_baseline"] = [ansible.playbook(baseline, address)]
    for operation in MODULE_ARGUMENTS:
        counts = {sample.data.get("count") for sample in samples[operation]["raw"]}
        if counts != {settings.bulk_count}:
            raise RuntimeError(f"bulk benchmark: raw {operation} acted on {counts}, expected {settings.bulk_count}")
    return bulk_result(settings, samples)


def bulk_result(settings: Settings, samples: dict) -> SectionResult:
    uri_baseline = samples["uri_baseline"][0].wall
    uri_wall = samples["uri"][0].wall
    uri_per_item = (uri_wall - uri_baseline) / settings.uri_count
    uri_equivalent = uri_baseline + uri_per_item * settings.bulk_count
    rows, targets = [], []
    for operation in MODULE_ARGUMENTS:
        module_wall = walls(samples[operation]["module"])
        raw_wall = walls(samples[operation]["raw"])
        baseline = walls(samples[operation]["baseline"])
        task_time = module_wall.median - baseline.median
        rows.append([f"`{MODULE_ARGUMENTS[operation][0].split('.')[-1]}` (one task)", module_wall.seconds(),
                     baseline.seconds(), walls(samples[operation]["empty"]).seconds(),
                     f"{task_time:.3f} s", raw_wall.seconds(), ratio(module_wall.median, raw_wall.median),
                     ratio(task_time, raw_wall.median), f"{uri_equivalent / module_wall.median:.0f}x"])
        targets.append(Target(f"{operation} {settings.bulk_count:,}: one task ≤ 2x the requests floor "
                              "(task time = playbook − Ansible's fixed cost)",
                              ratio(task_time, raw_wall.median), task_time <= 2 * raw_wall.median))
        targets.append(Target(f"{operation} {settings.bulk_count:,}: ≥ 100x faster than a `uri` loop (whole playbooks)",
                              f"{uri_equivalent / module_wall.median:.0f}x",
                              uri_equivalent >= 100 * module_wall.median))
    uri_note = (f"The `ansible.builtin.uri` `loop:` ran ONCE, signalling {settings.uri_count:,} allocations: "
                f"{uri_wall:.1f} s wall, {uri_per_item * 1000:.0f} ms per item after Ansible's fixed cost "
                f"({uri_baseline:.2f} s, a debug playbook run right after it). ")
    if settings.uri_count != settings.bulk_count:
        uri_note += (f"The speed-ups use {settings.bulk_count:,} × that per-item cost + the fixed cost "
                     f"= {uri_equivalent:.1f} s. ")
    uri_note += ("Stop and restart through `uri` cost the same per item (one POST each), so the signal loop "
                 "stands for all three.")
    notes = [
        f"{settings.bulk_count:,} virtual allocations of one job per run, `parallelism: {settings.bulk_parallelism}`; the floor "
        f"lists the job's allocations and POSTs with a ThreadPoolExecutor of {settings.bulk_parallelism} over one "
        "`requests.Session`. Every stop run (module or floor) acts on another job's fresh allocations.",
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
                          "floor wall", "playbook ÷ floor", "task ÷ floor", "vs `uri` loop"], rows, targets, notes)


# ------------------------------------------------------------------------------------------ 4. exec
def exec_playbooks(ansible: Ansible, alloc_id: str, byte_count: int) -> dict:
    big = {"name": "Stream stdout", "nomadops.nomad.nomad_alloc_exec": {
        "id": alloc_id, "task": "main", "argv": ["head", "-c", str(byte_count), "/dev/zero"], "timeout": 900},
        "register": "streamed"}
    echo = {"name": "Echo", "nomadops.nomad.nomad_alloc_exec": {"id": alloc_id, "command": "echo hi"}}
    command = {"name": "Echo", "ansible.builtin.command": {"cmd": "echo hi"}, "changed_when": False}
    return {
        "stream": ansible.write_playbook("exec-stream", [big, debug_task("{{ streamed.stdout | length }}")]),
        "echo": ansible.write_playbook("exec-echo", [echo]),
        "command": ansible.write_playbook("command-echo", [command]),
    }


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
            "session": lambda: worker("exec-session", address=address, alloc_id=alloc_id, argv=argv),
            "action": lambda: ansible.playbook(playbooks["stream"], address),
            "baseline": lambda: ansible.playbook(baseline, address),
        }, settings.exec_reps)
        latency = alternate({
            "echo": lambda: ansible.playbook(playbooks["echo"], address),
            "command": lambda: ansible.playbook(playbooks["command"], address),
        }, settings.latency_reps)
    for name in ("raw", "session"):
        counts = {sample.data.get("bytes") for sample in throughput[name]}
        if counts != {settings.exec_bytes}:
            raise RuntimeError(f"exec benchmark: {name} received {counts} bytes, expected {settings.exec_bytes}")
    return exec_result(settings, throughput, latency)


def exec_result(settings: Settings, throughput: dict, latency: dict) -> SectionResult:
    size = settings.exec_bytes
    raw_rate = size / inners(throughput["raw"]).median
    session_rate = size / inners(throughput["session"]).median
    action_time = walls(throughput["action"]).median - walls(throughput["baseline"]).median
    action_rate = size / action_time
    echo = walls(latency["echo"])
    command = walls(latency["command"])
    difference = echo.median - command.median
    rows = [
        [f"floor: bare `websocket-client` loop ({mib_of(size)} stdout)", inners(throughput["raw"]).seconds(),
         walls(throughput["raw"]).seconds(), f"{raw_rate / MIB:.1f} MiB/s", "1.00x", rss(throughput["raw"]).mib()],
        ["collection: `ExecSession` in-process", inners(throughput["session"]).seconds(),
         walls(throughput["session"]).seconds(), f"{session_rate / MIB:.1f} MiB/s", ratio(session_rate, raw_rate),
         rss(throughput["session"]).mib()],
        ["collection: `ansible-playbook`, one `nomad_alloc_exec` task (register + length)",
         f"{action_time:.3f} s (wall − baseline)", walls(throughput["action"]).seconds(),
         f"{action_rate / MIB:.1f} MiB/s", ratio(action_rate, raw_rate), rss(throughput["action"]).mib()],
        ["Ansible's fixed cost: playbook with `debug: msg=hi`", "—", walls(throughput["baseline"]).seconds(), "—", "—",
         rss(throughput["baseline"]).mib()],
        ["latency: playbook with one `nomad_alloc_exec` `echo hi` task", "—", echo.seconds(), "—", "—", rss(latency["echo"]).mib()],
        ["latency: playbook with one `ansible.builtin.command` `echo hi` task", "—", command.seconds(), "—", "—",
         rss(latency["command"]).mib()],
    ]
    targets = [
        Target(f"exec {mib_of(size)}: `ExecSession` ≥ 0.8x the websocket-client floor's throughput",
               ratio(session_rate, raw_rate), session_rate >= 0.8 * raw_rate),
        Target(f"exec {mib_of(size)}: `nomad_alloc_exec` task ≥ 0.8x the floor's throughput (task time)",
               ratio(action_rate, raw_rate), action_rate >= 0.8 * raw_rate),
        Target("exec `echo hi` task ≤ +150 ms over an `ansible.builtin.command` task (playbook wall, medians)",
               f"{difference * 1000:+.0f} ms", difference <= 0.150),
    ]
    notes = [
        f"Output: `head -c {size} /dev/zero` in the task of a virtual allocation (the emulator runs it as a real "
        "process and sends Nomad's base64 JSON frames). Throughput = bytes ÷ work time; for the task, bytes ÷ "
        "(playbook wall − Ansible's fixed cost).",
        f"Latency: {settings.latency_reps} runs each, interleaved; difference of medians {difference * 1000:+.0f} ms "
        f"(`nomad_alloc_exec` reads the allocation, then opens the WebSocket; `command` forks a module process).",
    ]
    return SectionResult(4, "Exec: stdout throughput and latency",
                         "Exec output streamed through the collection against a bare websocket-client loop.",
                         ["command", "work", "wall", "throughput", "÷ floor", "peak RSS"], rows, targets, notes)


from benchmarks import section_connection  # noqa: E402  (it uses this module's helpers)

ORDER = ("list", "lookup", "bulk", "exec", "connection")
RUNNERS = {"list": run_list, "lookup": run_lookup, "bulk": run_bulk, "exec": run_exec, "connection": section_connection.run}
