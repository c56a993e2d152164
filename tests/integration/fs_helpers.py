# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What test_logs.py and test_fs_fetch.py share: when the fs.yml emulator is ready (its jobs run), its tokens."""

from __future__ import annotations

MANAGEMENT = "00000000-0000-4000-8000-0000000000f1"
LOGS_ONLY = "00000000-0000-4000-8000-0000000000f2"
FS_ONLY = "00000000-0000-4000-8000-0000000000f3"
NO_FS = "00000000-0000-4000-8000-0000000000f4"


def allocation_of(emulator, job):
    allocations = [a for a in emulator.allocations("*", token=MANAGEMENT) if a["JobID"] == job]
    return allocations[0] if len(allocations) == 1 else None


def fs_jobs_ready(emulator):
    """chatty, slow and pair run; the batch job crashed has finished."""
    statuses = {job: (allocation_of(emulator, job) or {}).get("ClientStatus") for job in ("chatty", "slow", "pair", "crashed")}
    return statuses["crashed"] in ("failed", "complete") and all(
        statuses[job] == "running" for job in ("chatty", "slow", "pair"))


def result_of(run):
    return run.results[-1]["result"]
