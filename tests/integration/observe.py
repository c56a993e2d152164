"""What integration tests read back from the emulator while they wait for real processes to react."""

from __future__ import annotations

import time


def wait_until(predicate, timeout=20.0, what="condition"):
    """predicate()'s first truthy value; AssertionError after `timeout` seconds (polls every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def running_allocations(emulator, job):
    """The running allocations of `job` in every namespace, sorted by name."""
    allocs = [a for a in emulator.allocations("*") if a["JobID"] == job and a["ClientStatus"] == "running"]
    return sorted(allocs, key=lambda a: a["Name"])
