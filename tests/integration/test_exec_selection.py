# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_exec with a selector: one task runs the command in every selected allocation."""

from __future__ import annotations

from tests.integration.observe import play, running_allocations

EXEC = "nomadops.nomad.nomad_alloc_exec"


def test_the_command_runs_in_every_selected_allocation(emulator, ansible_runner):
    web = running_allocations(emulator, "web")
    run = ansible_runner.playbook(play(
        {"name": "every web", EXEC: {"job": "web", "task": "server", "parallelism": 2,
                                     "argv": ["/bin/sh", "-c", "echo $NOMAD_ALLOC_ID"]}},
    )).assert_ok()
    result = run.task("every web")
    assert sorted(entry["ID"] for entry in result["allocations"]) == sorted(a["ID"] for a in web)
    for entry in result["allocations"]:
        assert entry["rc"] == 0 and entry["stdout"] == entry["ID"] and entry["failed"] is False
    assert "rc" not in result  # the one-allocation shape is kept for one allocation only


def test_one_failing_command_fails_the_task_after_all_ran_and_names_it(emulator, ansible_runner):
    web = running_allocations(emulator, "web")
    failing = web[0]
    script = f'echo ran; test "$NOMAD_ALLOC_ID" != "{failing["ID"]}"'
    run = ansible_runner.playbook(play(
        {"name": "one fails", EXEC: {"id": [a["ID"] for a in web], "task": "server", "argv": ["/bin/sh", "-c", script]},
         "ignore_errors": True},
    )).assert_ok()
    result = run.task("one fails")
    assert result["_status"] == "ignored"
    assert result["msg"] == f"the command failed in 1 of 3 allocations: {failing['ID'][:8]} ({failing['Name']}): rc 1"
    assert [entry["stdout"] for entry in result["allocations"]] == ["ran"] * 3


def test_one_id_keeps_the_one_allocation_shape(emulator, ansible_runner):
    web = running_allocations(emulator, "web")[0]
    run = ansible_runner.playbook(play(
        {"name": "one", EXEC: {"id": [web["ID"][:8]], "task": "server", "command": "echo one"}},
    )).assert_ok()
    result = run.task("one")
    assert result["stdout"] == "one" and result["allocation_id"] == web["ID"] and "allocations" not in result
