# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""`make bench`: nomadops.nomad measured against the ways users do the same things today.

    .venv/bin/python benchmarks/run.py                 # everything: BENCHMARKS.md + docs/benchmarks/*.png
    .venv/bin/python benchmarks/run.py --quick         # small sizes, one repetition (smoke test, ~3 min)
    .venv/bin/python benchmarks/run.py --only list,exec
    .venv/bin/python benchmarks/run.py --charts-only build/bench-charts/results.json   # redraw the charts

Charts and results.json go to docs/benchmarks/ only with a full run of every section; otherwise to
build/bench-charts/ (the report then goes to stdout), so a smoke run never replaces the committed ones.

Every measured command runs in its own fresh process (wall time and peak RSS from os.wait4); compared
commands are interleaved. The script starts its own emulators (127.0.0.1, free ports) and stops them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import sections  # noqa: E402
from benchmarks.collection_path import REPO_ROOT  # noqa: E402
from benchmarks.measure import BenchmarkError  # noqa: E402

PYTHON_NOMAD_PIN = "python-nomad==2.1.0"
NOTES_FILE = REPO_ROOT / "benchmarks" / "analysis.md"
FULL_CHARTS_DIR = REPO_ROOT / "docs" / "benchmarks"
SCRATCH_CHARTS_DIR = REPO_ROOT / "build" / "bench-charts"


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one repetition (smoke test)")
    parser.add_argument("--only", default=",".join(sections.ORDER),
                        help=f"comma-separated sections to run: {','.join(sections.ORDER)}")
    parser.add_argument("--repetitions", type=int, help="override the repetitions of every section")
    parser.add_argument("--output", type=Path,
                        help="where to write the report (default BENCHMARKS.md; with --quick or --only: stdout only)")
    parser.add_argument("--charts-dir", type=Path,
                        help="where the PNG charts and results.json go (default docs/benchmarks for a full run of "
                             "every section, else build/bench-charts)")
    parser.add_argument("--charts-only", type=Path, metavar="RESULTS_JSON",
                        help="measure nothing: redraw the charts from a results.json of an earlier run")
    arguments = parser.parse_args(argv)
    arguments.only = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = sorted(set(arguments.only) - set(sections.ORDER))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(sections.ORDER)}")
    complete = not arguments.quick and set(arguments.only) == set(sections.ORDER)
    if arguments.output is None and complete:
        arguments.output = REPO_ROOT / "BENCHMARKS.md"
    if arguments.charts_dir is None:
        arguments.charts_dir = FULL_CHARTS_DIR if complete else SCRATCH_CHARTS_DIR
    return arguments


def ensure_python_nomad() -> str:
    """python-nomad is the peer library of the list and logs benchmarks; install the pinned version if missing."""
    try:
        version = metadata.version("python-nomad")
    except metadata.PackageNotFoundError:
        version = None
    if version != PYTHON_NOMAD_PIN.split("==")[1]:
        print(f"bench: installing {PYTHON_NOMAD_PIN} into {sys.prefix}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PYTHON_NOMAD_PIN], check=True)
        return "installed by this run"
    return "already installed"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    return "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())


def machine_facts(started: datetime.datetime, python_nomad_state: str, load_at_start: str) -> list:
    return [
        ("date (UTC)", started.strftime("%Y-%m-%d %H:%M")),
        ("load average (1/5/15 min) at start / end", f"{load_at_start} — {load_average()}"),
        ("CPU", f"{os.cpu_count()} cores, {cpu_model()}"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("ansible-core", package_version("ansible-core")),
        ("requests", package_version("requests")),
        ("websocket-client", package_version("websocket-client")),
        ("aiohttp (emulator)", package_version("aiohttp")),
        ("python-nomad (peer)", f"{package_version('python-nomad')} ({python_nomad_state})"),
    ]


HOW_TO_READ = """\
## How to read this

- Every number is from a fresh process (`python` or `ansible-playbook`), started by `benchmarks/run.py`
  against a local Nomad API emulator (`tests/emulator`, aiohttp, one process) on 127.0.0.1.
  Compared commands run interleaved (A B C, B C A, ...), so drift affects them alike.
- Cells are **median (min–max)** over the runs shown. *wall* = the whole process, start to exit
  (interpreter start, imports, Ansible's own start-up included); *work* = the measured part inside the
  process (the listing / lookup / exec itself, after imports), where a worker reports it.
- *floor* = the least a client can do for the same result: a hand-written `requests` loop or a bare
  `websocket-client` loop over the same pages / frames, same page size and concurrency. Ratios are
  collection ÷ floor (lower is better for time, higher is better for throughput).
- *peak RSS*: for Python workers, their own `VmHWM`; for `ansible-playbook`, `ru_maxrss` from `os.wait4`,
  the largest of the controller, its workers and the module process (on Linux it also carries the peak
  of the benchmark's own process inherited through fork, so that process never holds large data).
  *decoded data* is the deep `sys.getsizeof` of the decoded list (every distinct dict, list, str, ... once).
- The emulator is the same server for the collection and the floor; where it is the bottleneck (it is
  for large listings and exec output), the ratios still compare the clients, but absolute numbers say
  more about the emulator than about a real Nomad.
"""


def chart_lines(drawn: list, charts_dir: Path, report: Path | None) -> list:
    """Markdown images of the charts, relative to where the report is written."""
    if not drawn:
        return []
    base = (report.parent if report else REPO_ROOT).resolve()
    lines = ["## Charts", ""]
    for chart in drawn:
        lines += [f"![{chart.title}]({Path(os.path.relpath(charts_dir.resolve() / chart.filename, base)).as_posix()})", ""]
    return lines


def render(results: list, facts: list, arguments, seconds: float, drawn: list) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`benchmarks/run.py`); do not edit by hand. "
             f"Mode: {'quick (smoke test, not representative)' if arguments.quick else 'full'}; "
             f"sections: {', '.join(arguments.only)}; total run time {seconds / 60:.1f} min.", ""]
    lines += ["## Targets", "", "| # | target | floor | measured | met |", "|---|---|---|---|---|"]
    for result in results:
        for target in result.targets:
            lines.append(f"| {result.number} | {target.text} | {target.floor} | {target.measured} | "
                         f"{'**met**' if target.met else '**missed**'} |")
    lines.append("")
    lines += chart_lines(drawn, arguments.charts_dir, arguments.output)
    lines.append(HOW_TO_READ)
    for result in results:
        lines += result.markdown()
    if NOTES_FILE.exists():
        lines += [NOTES_FILE.read_text().rstrip(), ""]
    lines += ["## Machine", "", "| fact | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts]
    lines.append("")
    return "\n".join(lines)


def run_section(name: str, settings) -> sections.SectionResult:
    """One section; a failed command or check becomes a missed target, so the other sections still run."""
    try:
        return sections.RUNNERS[name](settings)
    except (BenchmarkError, RuntimeError) as error:
        print(f"bench: {name} FAILED: {error}", file=sys.stderr, flush=True)
        lines = str(error).splitlines() or [type(error).__name__]
        first_line = next((line for line in lines if line.startswith("[ERROR]")), lines[0])
        return sections.SectionResult(
            0, f"{name} (failed)", f"The section failed, nothing of it was measured:\n\n```\n{error}\n```",
            ["section"], [[name]], [sections.Target(f"{name}: the section runs", first_line[:200], False)],
            failed=True)


def stop_on_sigterm(signum, frame):
    """Turn SIGTERM into an exception, so that the emulators and the work directory are cleaned up."""
    raise SystemExit(128 + signum)


def write_results(results: list, directory: Path) -> Path:
    """Every section's number, title, targets and metrics as JSON (what the charts are drawn from)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps([{"number": result.number, "title": result.title, "metrics": result.metrics,
                                 "targets": [vars(target) for target in result.targets]} for result in results],
                               indent=1) + "\n")
    return path


def draw_charts(results: list, directory: Path) -> list:
    # Imported only now: matplotlib in this process before the measurements would raise the peak RSS every
    # ansible-playbook child inherits through fork (ru_maxrss).
    from benchmarks import charts

    drawn = charts.write_charts(results, directory)
    for chart in drawn:
        print(f"bench: wrote {directory / chart.filename}")
    return drawn


def redraw(results_json: Path, directory: Path) -> int:
    stored = json.loads(results_json.read_text())
    results = [sections.SectionResult(entry["number"], entry["title"], "", [], [], metrics=entry["metrics"])
               for entry in stored]
    draw_charts(results, directory)
    return 0


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    arguments = parse_arguments(argv)
    if arguments.charts_only:
        return redraw(arguments.charts_only, arguments.charts_dir)
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    load_at_start = load_average()
    peer_sections = {"list", "logs"}  # the sections with a python-nomad row
    python_nomad_state = ensure_python_nomad() if peer_sections & set(arguments.only) else "not used"
    results = []
    with tempfile.TemporaryDirectory(prefix="nomadops-bench-") as workdir:
        settings = sections.Settings.for_mode(arguments.quick, arguments.repetitions, Path(workdir))
        for name in sections.ORDER:
            if name in arguments.only:
                print(f"bench: {name} ...", flush=True)
                section_start = time.monotonic()
                results.append(run_section(name, settings))
                print(f"bench: {name} done in {time.monotonic() - section_start:.0f} s", flush=True)
    print(f"bench: wrote {write_results(results, arguments.charts_dir)}")
    drawn = draw_charts(results, arguments.charts_dir)
    report = render(results, machine_facts(started, python_nomad_state, load_at_start), arguments,
                    time.monotonic() - clock, drawn)
    if arguments.output:
        arguments.output.write_text(report)
        print(f"bench: wrote {arguments.output}")
    else:
        print(report)
    failed = [result.title for result in results if result.failed]
    if failed:
        print(f"bench: failed sections: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
