# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Measuring helpers for benchmarks/run.py: child processes with wall time and peak RSS, alternation, stats."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmarks.collection_path import REPO_ROOT, collections_path

PYTHON = sys.executable
VENV_BIN = Path(sys.executable).parent
WORKERS = REPO_ROOT / "benchmarks" / "workers.py"


class BenchmarkError(RuntimeError):
    """A measured command failed; the message carries the tail of its output."""


@dataclass
class Sample:
    """One run of one measured command."""

    wall: float                 # seconds, whole process (start to exit)
    peak_rss_kib: int           # ru_maxrss of the child and the descendants it waited for
    data: dict = field(default_factory=dict)  # what a worker reported (its inner time etc.)
    cpu: float = 0.0            # seconds of CPU (user + system) of the child and the descendants it waited for

    @property
    def inner(self) -> float:
        return self.data.get("seconds", self.wall)


def run_child(argv: list, env: dict | None = None, cwd: Path | None = None) -> Sample:
    """Run argv to completion; wall time and peak RSS from os.wait4; parse a worker's last JSON line."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                   cwd=str(cwd or REPO_ROOT))
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if process.returncode != 0:
        tail = (stdout + stderr)[-3000:]
        raise BenchmarkError(f"{' '.join(map(str, argv[:4]))} ... exited with {process.returncode}:\n{tail}")
    data = _last_json_line(stdout)
    # A worker reports its own peak (VmHWM); ru_maxrss also holds the parent's peak inherited through fork.
    return Sample(wall=wall, peak_rss_kib=data.get("peak_kib", usage.ru_maxrss), data=data,
                  cpu=usage.ru_utime + usage.ru_stime)


def _last_json_line(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}


def worker(name: str, **arguments) -> Sample:
    return run_child([PYTHON, str(WORKERS), name, json.dumps(arguments)], env=worker_environment())


def worker_environment() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "ANSIBLE_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def alternate(variants: dict, repetitions: int) -> dict:
    """Run each variant `repetitions` times, interleaved (A B C, B C A, ...): {name: [Sample, ...]}."""
    names = list(variants)
    samples = {name: [] for name in names}
    for repetition in range(repetitions):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            sample = variants[name]()
            samples[name].append(sample)
            print(f"bench:   {name} #{repetition + 1}: {sample.wall:.2f} s wall, {sample.peak_rss_kib // 1024} MiB",
                  flush=True)
    return samples


@dataclass
class Summary:
    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: list) -> Summary:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def seconds(self) -> str:
        return f"{self.median:.3f} s ({self.low:.3f}–{self.high:.3f})"

    def mib(self) -> str:
        return f"{self.median / 1024:.0f} MiB ({self.low / 1024:.0f}–{self.high / 1024:.0f})"


def walls(samples: list) -> Summary:
    return Summary.of([sample.wall for sample in samples])


def cpus(samples: list) -> Summary:
    """CPU seconds: on a loaded machine they move far less than wall time."""
    return Summary.of([sample.cpu for sample in samples])


def inners(samples: list) -> Summary:
    return Summary.of([sample.inner for sample in samples])


def rss(samples: list) -> Summary:
    return Summary.of([sample.peak_rss_kib for sample in samples])


# ------------------------------------------------------------------------------------------ ansible
class Ansible:
    """Runs ansible-playbook against one emulator with the collection from this checkout."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(
            "localhost ansible_connection=local ansible_python_interpreter=\"{{ ansible_playbook_python }}\"\n")
        self._written = 0

    def environment(self, address: str | None) -> dict:
        env = worker_environment()
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collections_path()),
            ANSIBLE_INVENTORY=str(self.inventory),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_LOCAL_TEMP=str(self.workdir / "tmp"),
            ANSIBLE_REMOTE_TEMP=str(self.workdir / "remote-tmp"),
            ANSIBLE_HOME=str(self.workdir / "home"),
            ANSIBLE_DEPRECATION_WARNINGS="0",
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        if address:
            env["NOMAD_ADDR"] = address
        return env

    def write_playbook(self, name: str, tasks: list) -> Path:
        play = [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
        path = self.workdir / f"{name}.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        return path

    def write_vars(self, name: str, variables: dict) -> Path:
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(variables))
        return path

    def playbook(self, path: Path, address: str | None, extra_vars: dict | None = None,
                 vars_file: Path | None = None) -> Sample:
        argv = [str(VENV_BIN / "ansible-playbook"), str(path)]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        if vars_file:
            argv += ["-e", f"@{vars_file}"]
        return run_child(argv, env=self.environment(address), cwd=self.workdir)
