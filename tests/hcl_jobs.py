# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HCL job files that tests of both suites build: a job of groups, a group of its blocks, a raw_exec task running
`/bin/sh -c <command>`. A block whose body is empty is left out; bodies are HCL attribute lines as written."""

from __future__ import annotations

RUNNING = "trap 'exit 0' TERM; while :; do sleep 1; done"


def hcl_block(kind: str, body: str, label: str = "") -> str:
    """`kind "label" { body }`, or nothing when `body` is empty."""
    if not body:
        return ""
    head = f'{kind} "{label}"' if label else kind
    return f"{head} {{\n{body}\n}}\n"


def job_hcl(job_id: str, *groups: str, job_type: str = "") -> str:
    """A job in datacenter dc1 (of `job_type`, else Nomad's default, service) with the `groups`."""
    type_line = f'type = "{job_type}"\n' if job_type else ""
    return hcl_block("job", f'datacenters = ["dc1"]\n{type_line}' + "".join(groups), job_id)


def group_hcl(*tasks: str, name: str = "web", count: int | None = None, update: str = "", restart: str = "",
              reschedule: str = "", service: str = "") -> str:
    """A group of `tasks` with the blocks whose bodies are given (`count` left out: Nomad's 1)."""
    count_line = f"count = {count}\n" if count is not None else ""
    blocks = (hcl_block("update", update), hcl_block("restart", restart), hcl_block("reschedule", reschedule),
              hcl_block("service", service))
    return hcl_block("group", count_line + "".join(blocks) + "".join(tasks), name)


def task_hcl(command: str | None = RUNNING, *, name: str = "server", env: dict | None = None, kill_timeout: str = "",
             restart: str = "") -> str:
    """A raw_exec task running `/bin/sh -c command` (None: /bin/sh without arguments), with `env`, `kill_timeout`
    and a task-level `restart` block when given. `command` goes into an HCL string as it is."""
    args = f'\nargs = ["-c", "{command}"]' if command is not None else ""
    env_lines = "\n".join(f'{key} = "{value}"' for key, value in (env or {}).items())
    kill_line = f'kill_timeout = "{kill_timeout}"\n' if kill_timeout else ""
    body = ('driver = "raw_exec"\n' + hcl_block("config", f'command = "/bin/sh"{args}') + hcl_block("env", env_lines)
            + kill_line + hcl_block("restart", restart))
    return hcl_block("task", body, name)
