# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small pieces integration tests share: plays they build, addresses nothing listens on, and what they read
back from the emulator (the wait itself is tests/waiting.py)."""

from __future__ import annotations

import socket


def running_allocations(emulator, job):
    """The running allocations of `job` in every namespace, sorted by name."""
    allocs = [a for a in emulator.allocations("*") if a["JobID"] == job and a["ClientStatus"] == "running"]
    return sorted(allocs, key=lambda a: a["Name"])


def play(*tasks, **options):
    """One localhost play (without fact gathering) running `tasks`, as AnsibleRunner.playbook() takes it."""
    return [dict(hosts="localhost", gather_facts=False, tasks=list(tasks), **options)]


def line_starting(output, prefix):
    """The first line of `output` that starts with `prefix` (AssertionError naming the output if none does).

    Tests read the line that matters, never "the first line of stderr": Python, ansible-core and libraries print
    warnings of their own there (cryptography 51 made ansible-core 2.19 warn about DSA on every start).
    """
    for line in output.splitlines():
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starts with {prefix!r} in:\n{output}")


def closed_address():
    """http://127.0.0.1:<port> with nothing listening (a port that was just free; never a fixed one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
