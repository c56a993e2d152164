# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What test_logs.py and test_fs_fetch.py share: the fs.yml emulator once its jobs run, its tokens."""

from __future__ import annotations

from tests.emulator.harness import EmulatorProcess
from tests.integration.conftest import SCENARIOS
from tests.waiting import wait_until

MANAGEMENT = "00000000-0000-4000-8000-0000000000f1"
LOGS_ONLY = "00000000-0000-4000-8000-0000000000f2"
FS_ONLY = "00000000-0000-4000-8000-0000000000f3"
NO_FS = "00000000-0000-4000-8000-0000000000f4"


def allocation_of(emulator, job):
    allocations = [a for a in emulator.allocations("*", token=MANAGEMENT) if a["JobID"] == job]
    return allocations[0] if len(allocations) == 1 else None


def _ready(emulator):
    statuses = {job: (allocation_of(emulator, job) or {}).get("ClientStatus") for job in ("chatty", "slow", "pair", "crashed")}
    return statuses["crashed"] in ("failed", "complete") and all(
        statuses[job] == "running" for job in ("chatty", "slow", "pair"))


def started_fs_emulator():
    """An EmulatorProcess of fs.yml (a context manager) whose jobs run and whose batch job has finished."""
    emulator = EmulatorProcess(scenario=str(SCENARIOS / "fs.yml"))
    emulator.__enter__()
    try:
        wait_until(lambda: _ready(emulator), timeout=30, what="the fs.yml jobs to run")
    except AssertionError:
        emulator.__exit__(None, None, None)
        raise
    return emulator


def result_of(run):
    return run.results[-1]["result"]
