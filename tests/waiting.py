# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one polling wait of the test suites (the emulator's own tests and the collection's integration tests), for
what the emulator offers no blocking query on: files a task writes, processes that exit, a scenario settling."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """predicate()'s first truthy value, asked every `interval` seconds; AssertionError naming `what` after
    `timeout` seconds (a generous bound: under load it must never be the expected path)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
