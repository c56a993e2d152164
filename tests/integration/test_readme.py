# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every command and snippet of README.md runs as written, in README.md's setup, against the demo cluster.

The blocks are read from README.md itself, so the page cannot drift from what works:

- a ```yaml or ```ini block whose first line is a comment naming a file (``# web.nomad_allocs.yml``,
  ``# inventory.ini: ...``) is written to that file in the working directory, before anything runs;
- any other ```yaml block is a playbook, run with ``ansible-playbook``;
- each ``$ `` line of a ```console block is a command, run with bash in the working directory.

A marker comment on the line just before a block changes that: ``<!-- readme-test: skip (why) -->`` (blocks
that cannot run against the emulator or from inside this test: make targets, a container build; kept few, see
MAX_SKIPPED) and ``<!-- readme-test: environment (...) -->`` (the setup's ``export`` lines: they must be the
lines ``make demo-cluster`` prints, and the test runs everything with those variables, the address being that
of its own demo cluster, the collection and the virtual environment those under test).

Everything runs in README order on one emulator; consecutive commands that change nothing (reads, check
mode, exec) run in parallel, a command that changes allocations runs alone. Each must exit 0 and print
no Ansible warning and no whole allocation as a loop label.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.collection_tree import collections_path
from tests.integration.conftest import REPO_ROOT, VENV_BIN

EMULATOR_SCENARIO = "demo.yml"
README = REPO_ROOT / "README.md"
DOCUMENTED_ADDRESS = "http://127.0.0.1:4646"
MAX_SKIPPED = 5
PARALLEL_COMMANDS = 4
MARKER = re.compile(r"^<!-- readme-test: (skip|environment) \((.+)\) -->$")
FENCE = re.compile(r"^```(\w*)$")
FILE_COMMENT = re.compile(r"^# ([\w.-]+\.(?:ya?ml|ini))\b")
# Commands that change allocations: they run alone, in README order.
CHANGES = re.compile(r"ansible-playbook|nomad_alloc_(?:stop|signal|restart)\b")


@dataclass
class Block:
    language: str
    lines: list
    line_number: int
    marker: tuple = ()
    commands: list = field(default_factory=list)

    @property
    def file_name(self):
        match = FILE_COMMENT.match(self.lines[0]) if self.lines else None
        return match.group(1) if match and self.language in ("yaml", "ini") else None


def readme_blocks(text: str) -> list:
    blocks, lines, number = [], text.splitlines(), 0
    while number < len(lines):
        fence = FENCE.match(lines[number])
        if not fence:
            number += 1
            continue
        marker = MARKER.match(lines[number - 1]) if number else None
        end = lines.index("```", number + 1)
        block = Block(fence.group(1), lines[number + 1:end], number + 1, marker.groups() if marker else ())
        if block.language == "console":
            block.commands = [line[2:] for line in block.lines if line.startswith("$ ")]
        blocks.append(block)
        number = end + 1
    return blocks


def run_demo_module():
    spec = importlib.util.spec_from_file_location("run_demo", REPO_ROOT / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_few_skipped_blocks_and_documents_the_setup_make_demo_cluster_prints():
    skipped = [block for block in BLOCKS if block.marker[:1] == ("skip",)]
    assert len(skipped) <= MAX_SKIPPED, [f"README.md:{block.line_number} {block.marker[1]}" for block in skipped]
    assert all(block.language in ("console", "yaml", "ini") for block in BLOCKS), "a block this test cannot run"
    setup = [block for block in BLOCKS if block.marker[:1] == ("environment",)]
    assert len(setup) == 1
    assert setup[0].commands == run_demo_module().export_lines(DOCUMENTED_ADDRESS)


@pytest.fixture(scope="module")
def readme_environment(emulator, tmp_path_factory):
    """README.md's setup with this test's demo cluster, collection and virtual environment."""
    workdir = tmp_path_factory.mktemp("readme")
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("NOMAD_", "ANSIBLE_"))}
    environment.update(run_demo_module().shell_environment(emulator.address))
    environment.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(collections_path()),
        ANSIBLE_HOME=str(workdir / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    return workdir, environment


def run(command: str, workdir, environment) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command.replace(DOCUMENTED_ADDRESS, environment["NOMAD_ADDR"])],
                          cwd=workdir, env=environment, capture_output=True, text=True, timeout=300, check=False)


def changes_something(command: str) -> bool:
    return bool(CHANGES.search(command)) and "--check" not in command


def steps():
    """README order, as lists of commands: a run of commands that change nothing (run in parallel), or one
    command that changes something (run alone)."""
    found = []
    for block in BLOCKS:
        if block.marker or block.file_name:
            continue
        commands = [f"ansible-playbook readme-{block.line_number}.yml"] if block.language == "yaml" else block.commands
        for command in commands:
            if changes_something(command) or not found or changes_something(found[-1][0]):
                found.append([command])
            else:
                found[-1].append(command)
    return found


def test_every_readme_command_and_playbook_runs_as_written(readme_environment):
    workdir, environment = readme_environment
    for block in BLOCKS:
        if block.marker:
            continue
        if block.file_name:
            (workdir / block.file_name).write_text("\n".join(block.lines) + "\n")
        elif block.language == "yaml":
            (workdir / f"readme-{block.line_number}.yml").write_text("\n".join(block.lines) + "\n")
    failures = []
    with ThreadPoolExecutor(PARALLEL_COMMANDS) as pool:
        for step in steps():
            for command, done in zip(step, pool.map(lambda line: run(line, workdir, environment), step)):
                output = done.stdout + done.stderr
                problems = [problem for problem, found in (
                    (f"exit code {done.returncode}", done.returncode != 0),
                    ("an Ansible warning", "[WARNING]" in output),
                    ("a whole allocation as a loop label", "(item={" in output),
                ) if found]
                if problems:
                    failures.append(f"$ {command}\n  {', '.join(problems)}:\n{output[-3000:]}")
    assert not failures, "\n\n".join(failures)
    assert (workdir / "dumps" / "5a22c1f3-9e4b-4a7c-8d2e-6f1a3b5c7d22" / "alloc" / "data" / "dump.bin").is_file()


def test_a_job_in_another_namespace_says_where_it_is(emulator, readme_environment):
    """README.md: `job=worker` without `namespace=prod` warns naming the namespace that has it (read-only)."""
    workdir, environment = readme_environment
    done = run("ansible localhost -m nomadops.nomad.nomad_alloc_info -a 'job=worker'", workdir, environment)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = (f'job "worker" not found in namespace "default" at {emulator.address}; it exists in namespace "prod" '
                '(set namespace, or use namespace "*" to search all)')
    assert expected in " ".join((done.stdout + done.stderr).split()), done.stdout + done.stderr
