# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every bad input to the lifecycle modules: a failed task, a one-line msg that says what to fix, nothing changed."""

from __future__ import annotations

import pytest


STOP = "nomadops.nomad.nomad_alloc_stop"
SIGNAL = "nomadops.nomad.nomad_alloc_signal"
RESTART = "nomadops.nomad.nomad_alloc_restart"
READ_ONLY_TOKEN = "00000000-0000-4000-8000-000000000002"  # scenarios/acl.yml: read-job only
MUTATIONS = ("/stop", "/signal", "/restart")


def running_allocations(emulator, job):
    """In Nomad's list order (CreateIndex), the order the modules report in."""
    return [a for a in emulator.allocations("*") if a["JobID"] == job and a["ClientStatus"] == "running"]


def label(alloc):
    return f"{alloc['ID'][:8]} ({alloc['Name']})"


def snapshot(emulator, allocs):
    return {a["ID"]: emulator.control.tasks(a["ID"]) for a in allocs}


def mutation_requests(emulator):
    return {path: n for path, n in emulator.control.requests().items() if path.endswith(MUTATIONS)}


def failed_message(run):
    assert run.rc != 0, run.output
    result = run.results[-1]["result"]
    assert run.results[-1]["status"] == "failed"
    assert result.get("changed") in (False, None)
    message = result["msg"]
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture
def untouched(emulator):
    """Asserts after the test that no task process changed and no mutation request reached the emulator."""
    allocs = running_allocations(emulator, "web") + running_allocations(emulator, "api")
    before = snapshot(emulator, allocs)
    emulator.control.reset_requests()
    yield allocs
    assert mutation_requests(emulator) == {}
    assert snapshot(emulator, allocs) == before


@pytest.mark.parametrize("module, args", [
    (SIGNAL, "job=web signal=HUP task=nope"),
    (RESTART, "job=web task=nope"),
])
def test_unknown_task_names_every_allocation_and_the_valid_tasks(emulator, ansible_runner, untouched, module, args):
    web = running_allocations(emulator, "web")

    message = failed_message(ansible_runner.adhoc(module, args + " client_status=running"))

    assert message == (f"3 of 3 allocations failed: {', '.join(label(a) for a in web)}: task 'nope' is not in this allocation; "
                       "its tasks are: server, sidecar")


@pytest.mark.parametrize("module, args, hint", [
    (SIGNAL, "job=api client_status=running signal=HUP task=migrate", ""),
    (RESTART, "job=api client_status=running task=migrate",
     "; it is a lifecycle task that has finished and only runs again when the whole allocation restarts: "
     "use all_tasks=true instead of task"),
])
def test_task_not_running(emulator, ansible_runner, untouched, module, args, hint):
    api = running_allocations(emulator, "api")[0]

    message = failed_message(ansible_runner.adhoc(module, args))

    assert message == f"1 of 1 allocation failed: {label(api)}: task 'migrate' is not running (state dead){hint}"


def test_unknown_signal_is_refused_before_any_request(emulator, ansible_runner, untouched):
    message = failed_message(ansible_runner.adhoc(SIGNAL, "job=web signal=SIGFOO"))

    assert message.startswith("unknown signal 'SIGFOO'; use one of the POSIX signal names")
    assert "SIGHUP" in message and "SIGUSR1" in message
    assert emulator.control.requests() == {}


def test_task_and_all_tasks_are_refused_before_any_request(emulator, ansible_runner, untouched):
    message = failed_message(ansible_runner.adhoc(RESTART, "job=web task=server all_tasks=true"))

    assert message == ("task and all_tasks are mutually exclusive: set task to restart one task, "
                       "or all_tasks=true to restart every task")
    assert emulator.control.requests() == {}


@pytest.mark.parametrize("module, args", [
    (STOP, ""),
    (SIGNAL, "signal=HUP"),
    (RESTART, "task=server filter=' ' id=''"),
])
def test_empty_selector_is_refused_before_any_request(emulator, ansible_runner, untouched, module, args):
    message = failed_message(ansible_runner.adhoc(module, args or None))

    assert message.startswith("refusing to act on every allocation in the namespace: set at least one selector")
    assert emulator.control.requests() == {}


def test_parallelism_below_one(emulator, ansible_runner, untouched):
    message = failed_message(ansible_runner.adhoc(STOP, "job=web parallelism=0"))

    assert message == "parallelism must be at least 1, got 0"
    assert emulator.control.requests() == {}


@pytest.mark.parametrize("module, args", [
    (STOP, {}),
    (SIGNAL, {"signal": "HUP"}),
    (RESTART, {}),
])
def test_unknown_allocation_among_known_ones_stops_before_acting(emulator, ansible_runner, untouched, module, args):
    known = running_allocations(emulator, "web")[0]

    message = failed_message(ansible_runner.adhoc(module, dict(args, id=[known["ID"], "ffffffff-0000-4000-8000-0"])))

    assert message == ('No allocation(s) with prefix or id "ffffffff-0000-4000-8000-0" found in namespace "default" '
                       f'at {emulator.address} (use namespace "*" to search all)')


@pytest.fixture(scope="module")
def acl_runner(acl_emulator, tmp_path_factory):
    from conftest import AnsibleRunner

    return AnsibleRunner(acl_emulator.address, tmp_path_factory.mktemp("acl"))


@pytest.mark.parametrize("module, args", [
    (STOP, "job=web"),
    (SIGNAL, "job=web signal=HUP"),
    (RESTART, "job=web"),
])
def test_token_without_alloc_lifecycle_fails_every_allocation(acl_emulator, acl_runner, module, args):
    web = running_allocations(acl_emulator, "web")
    before = snapshot(acl_emulator, web)

    run = acl_runner.adhoc(module, args, env={"NOMAD_TOKEN": READ_ONLY_TOKEN}, verbosity=4)

    message = failed_message(run)
    assert message == (f"2 of 2 allocations failed: {', '.join(label(a) for a in web)}: Permission denied: the token needs "
                       "the alloc-lifecycle capability in namespace 'default'")
    assert [a["error"] for a in run.results[-1]["result"]["allocations"]] == [message.split(": ", 2)[2]] * 2
    assert READ_ONLY_TOKEN not in run.output
    assert snapshot(acl_emulator, web) == before
    assert all(a["DesiredStatus"] == "run" for a in running_allocations(acl_emulator, "web"))
