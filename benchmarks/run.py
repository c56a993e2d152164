"""`make bench`: nomadops.nomad measured against the ways users do the same things today.

    .venv/bin/python benchmarks/run.py                 # everything, writes BENCHMARKS.md
    .venv/bin/python benchmarks/run.py --quick         # small sizes, one repetition (smoke test)
    .venv/bin/python benchmarks/run.py --only list,exec

Every measured command runs in its own fresh process (wall time and peak RSS from os.wait4); compared
commands are interleaved. The script starts its own emulators (127.0.0.1, free ports) and stops them.
"""

from __future__ import annotations

import argparse
import datetime
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

PYTHON_NOMAD_PIN = "python-nomad==2.1.0"
NOTES_FILE = REPO_ROOT / "benchmarks" / "analysis.md"


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one repetition (smoke test)")
    parser.add_argument("--only", default=",".join(sections.ORDER),
                        help="comma-separated sections to run: %s" % ",".join(sections.ORDER))
    parser.add_argument("--repetitions", type=int, help="override the repetitions of every section")
    parser.add_argument("--output", type=Path,
                        help="where to write the report (default BENCHMARKS.md; with --quick or --only: stdout only)")
    arguments = parser.parse_args(argv)
    arguments.only = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = sorted(set(arguments.only) - set(sections.ORDER))
    if unknown:
        parser.error("unknown section(s) %s; choose from %s" % (", ".join(unknown), ", ".join(sections.ORDER)))
    if arguments.output is None and not arguments.quick and set(arguments.only) == set(sections.ORDER):
        arguments.output = REPO_ROOT / "BENCHMARKS.md"
    return arguments


def ensure_python_nomad() -> str:
    """python-nomad is the peer library of the list benchmark; install the pinned version if missing."""
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
    return "%.1f / %.1f / %.1f" % os.getloadavg()


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


def render(results: list, facts: list, arguments, seconds: float) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`benchmarks/run.py`); do not edit by hand. "
             f"Mode: {'quick (smoke test, not representative)' if arguments.quick else 'full'}; "
             f"sections: {', '.join(arguments.only)}; total run time {seconds / 60:.1f} min.", ""]
    lines += ["## Targets", "", "| # | target | measured | met |", "|---|---|---|---|"]
    for result in results:
        for target in result.targets:
            lines.append(f"| {result.number} | {target.text} | {target.measured} | {'**met**' if target.met else '**missed**'} |")
    lines.append("")
    lines.append(HOW_TO_READ)
    for result in results:
        lines += result.markdown()
    if NOTES_FILE.exists():
        lines += [NOTES_FILE.read_text().rstrip(), ""]
    lines += ["## Machine", "", "| fact | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts]
    lines.append("")
    return "\n".join(lines)


def stop_on_sigterm(signum, frame):
    """Turn SIGTERM into an exception, so that the emulators and the work directory are cleaned up."""
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    arguments = parse_arguments(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    load_at_start = load_average()
    python_nomad_state = ensure_python_nomad() if "list" in arguments.only else "not used"
    results = []
    with tempfile.TemporaryDirectory(prefix="nomadops-bench-") as workdir:
        settings = sections.Settings.for_mode(arguments.quick, arguments.repetitions, Path(workdir))
        for name in sections.ORDER:
            if name in arguments.only:
                print(f"bench: {name} ...", flush=True)
                section_start = time.monotonic()
                results.append(sections.RUNNERS[name](settings))
                print(f"bench: {name} done in {time.monotonic() - section_start:.0f} s", flush=True)
    report = render(results, machine_facts(started, python_nomad_state, load_at_start), arguments, time.monotonic() - clock)
    if arguments.output:
        arguments.output.write_text(report)
        print(f"bench: wrote {arguments.output}")
    else:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
