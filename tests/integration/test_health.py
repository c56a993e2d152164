# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Real health: wait_for=healthy of nomad_alloc_info, restart's wait_for=healthy and the rolling-restart role,
against Nomad service checks the emulator really runs (tests/emulator/scenarios/health.yml)."""

from __future__ import annotations

import os
import threading

import pytest

from tests.integration.conftest import AnsibleRunner
from tests.integration.observe import play, running_allocations
from tests.waiting import wait_until

INFO = "nomadops.nomad.nomad_alloc_info"
RESTART = "nomadops.nomad.nomad_alloc_restart"
ROLE = "nomadops.nomad.alloc_rolling_restart"
NO_FILE = 'check "ready" failure: no healthy file'


EMULATOR_SCENARIO = "health.yml"


def scenario_ready(emulator):
    return len(running_allocations(emulator, "probe")) == 2


EMULATOR_READY = scenario_ready


@pytest.fixture(scope="module")
def runner(emulator, tmp_path_factory):
    return AnsibleRunner(emulator.address, tmp_path_factory.mktemp("ansible"))


def probes(emulator):
    return running_allocations(emulator, "probe")


def set_healthy(emulator, alloc, healthy):
    """Create or remove the file the "ready" script check tests for."""
    marker = os.path.join(emulator.control.tasks(alloc["ID"])["server"]["task_dir"], "healthy")
    if healthy:
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write("yes\n")
    elif os.path.exists(marker):
        os.remove(marker)


def task(name, module, ignore_errors=False, **args):
    entry = {"name": name, module: args}
    if ignore_errors:
        entry["ignore_errors"] = True
    return entry


def restarts(emulator, alloc):
    return emulator.control.tasks(alloc["ID"])["server"]["restarts"]


def test_checks_are_attached_and_a_failing_one_is_named_on_timeout(emulator, runner):
    healthy, sick = probes(emulator)
    set_healthy(emulator, healthy, True)
    set_healthy(emulator, sick, False)
    run = runner.playbook(play(
        task("one healthy", INFO, id=[healthy["ID"]], wait_for="healthy", wait_timeout=30, checks=True),
        task("job not healthy", INFO, job="probe", wait_for="healthy", wait_timeout=2, ignore_errors=True),
        task("job running", INFO, job="probe", wait_for="running", wait_timeout=5),
    )).assert_ok()
    checks = run.task("one healthy")["allocations"][0]["Checks"]
    by_name = {result["Check"]: result for result in checks.values()}
    assert set(by_name) == {"ready", "alive"}
    assert by_name["ready"]["Status"] == "success" and by_name["ready"]["Output"] == "ready\n"
    assert by_name["ready"]["Mode"] == "healthiness" and by_name["alive"]["Mode"] == "readiness"
    assert by_name["ready"]["Group"] == healthy["Name"]
    failed = run.task("job not healthy")
    assert failed["msg"] == (
        "timed out after 2 s waiting for the allocations to be healthy: 1 allocation(s) not healthy yet: "
        f"{sick['ID'][:8]} ({sick['Name']}): {NO_FILE}")
    assert all("Checks" not in allocation for allocation in failed["allocations"])  # only with checks=true
    assert all(allocation["ClientStatus"] == "running" for allocation in run.task("job running")["allocations"])


def test_healthy_waits_for_the_check_to_pass(emulator, runner):
    first, second = probes(emulator)
    set_healthy(emulator, first, True)
    set_healthy(emulator, second, False)
    outcome = {}
    emulator.control.reset_requests()
    waiting = threading.Thread(target=lambda: outcome.update(run=runner.playbook(play(
        task("healthy", INFO, job="probe", wait_for="healthy", wait_timeout=60)))))
    waiting.start()
    # The wait has read the failing check several times (it re-reads checks at least every 2 s) and goes on.
    checks_path = f"GET /v1/allocation/{second['ID']}/checks"
    wait_until(lambda: emulator.control.requests().get(checks_path, 0) >= 3, timeout=60, what="the wait to re-read")
    assert waiting.is_alive(), "wait_for=healthy returned while a check was failing"
    set_healthy(emulator, second, True)
    waiting.join(timeout=60)
    result = outcome["run"].assert_ok().task("healthy")
    assert result["count"] == 2


def test_a_failed_allocation_that_was_not_replaced_keeps_the_wait_going(emulator, runner):
    wait_until(lambda: any(a["ClientStatus"] == "failed" for a in emulator.allocations("*") if a["JobID"] == "broken"),
               what="broken.worker[1] to fail")
    run = runner.playbook(play(
        task("broken healthy", INFO, job="broken", wait_for="healthy", wait_timeout=1, ignore_errors=True),
        task("broken running", INFO, job="broken", wait_for="running", wait_timeout=1, ignore_errors=True),
        task("worker 0 only", INFO, job="broken", client_status=["running"], wait_for="healthy", wait_timeout=5),
    )).assert_ok()
    for name in ("broken healthy", "broken running"):
        message = run.task(name)["msg"]
        assert message.startswith("timed out after 1 s waiting for the allocations to be ")
        assert message.endswith(f"1 allocation(s) not {name.split()[1]} yet: "
                                f"{_id_of(emulator, 'broken.worker[1]')[:8]} (broken.worker[1]): client status failed")
    assert run.task("worker 0 only")["count"] == 1


def _id_of(emulator, name):
    return next(a["ID"] for a in emulator.allocations("*") if a["Name"] == name)


def test_restart_waits_for_healthy_and_names_the_check_when_it_does_not_pass(emulator, runner):
    first, second = probes(emulator)
    set_healthy(emulator, first, True)
    set_healthy(emulator, second, False)
    before = restarts(emulator, first), restarts(emulator, second)
    run = runner.playbook(play(
        task("restart healthy", RESTART, id=[first["ID"]], wait_for="healthy", wait_timeout=30),
        task("restart sick", RESTART, id=[second["ID"]], wait_for="healthy", wait_timeout=2, ignore_errors=True),
    )).assert_ok()
    assert run.task("restart healthy")["allocations"][0]["changed"] is True
    sick = run.task("restart sick")
    assert sick["msg"] == (f"1 of 1 allocation failed: {second['ID'][:8]} ({second['Name']}): "
                           f"restarted, but not healthy within 2s: {NO_FILE}")
    assert sick["allocations"][0]["changed"] is True
    assert (restarts(emulator, first), restarts(emulator, second)) == (before[0] + 1, before[1] + 1)


def role_run(name, **variables):
    """The role as a task that cannot end the play: its failure message is shown by a task named `name`."""
    return {"block": [{"name": "run the role", "ansible.builtin.include_role": {"name": ROLE}, "vars": variables}],
            "rescue": [{"name": name, "ansible.builtin.debug": {"msg": "{{ ansible_failed_result.msg }}"}}]}


def test_the_role_is_gated_on_health_fails_before_acting_and_summarises(emulator, runner):
    first, second = probes(emulator)
    set_healthy(emulator, first, True)
    set_healthy(emulator, second, False)
    before = {alloc["ID"]: emulator.control.tasks(alloc["ID"])["server"] for alloc in probes(emulator)}
    marker = os.path.join(before[second["ID"]]["task_dir"], "healthy")
    run = runner.playbook(play(
        role_run("typo", alloc_rolling_restart_job="wbe"),
        role_run("bad signal", alloc_rolling_restart_job="probe", alloc_rolling_restart_signal="SIGFOO"),
        {"name": "nothing was touched", "ansible.builtin.assert": {"that": ["true"]}},
        role_run("not healthy", alloc_rolling_restart_job="probe", alloc_rolling_restart_health_timeout=2),
        {"name": "make the second probe healthy", "ansible.builtin.copy": {"dest": marker, "content": "yes\n"}},
        role_run("healthy", alloc_rolling_restart_job="probe"),
    )).assert_ok()
    # The role passes its selector as task arguments, not as one templated string (argsplat-unsafe warning).
    assert "argsplat" not in run.output
    # The existence check of nomad_alloc_restart (check mode) catches the typo before the role's own message.
    assert run.task("typo")["msg"] == f'job "wbe" not found in namespace "default" at {emulator.address}'
    assert run.task("bad signal")["msg"].startswith("Nothing was signalled: unknown signal 'SIGFOO'; use one of")
    stopped = run.task("not healthy")["msg"]
    assert f"stopped at batch 2 of 2 ({second['Name']})" in stopped
    assert NO_FILE in stopped
    assert "healthy" not in [entry["task"] for entry in run.results if entry["status"] == "failed"]
    summary = [entry["result"]["msg"] for entry in run.results if entry["task"].endswith("Summarise the rolling restart")]
    assert summary == [[
        'Restarted 2 allocation(s) of job "probe" in 2 batch(es):',
        f"{first['Name']} ({first['ID'][:8]}) restarted in batch 1, healthy",
        f"{second['Name']} ({second['ID'][:8]}) restarted in batch 2, healthy",
    ]]
    # typo and bad signal touched nothing; the failed run restarted both (the second never became healthy),
    # the good run restarted both again; no signal was ever sent
    after = {alloc["ID"]: emulator.control.tasks(alloc["ID"])["server"] for alloc in probes(emulator)}
    assert {key: (value["restarts"], value["signals"]) for key, value in after.items()} == {
        key: (value["restarts"] + 2, value["signals"]) for key, value in before.items()}
