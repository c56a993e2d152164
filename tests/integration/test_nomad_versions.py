# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The collection against every Nomad version the emulator answers as (1.6.5, 1.10.5, 1.11.3).

Each test covers an answer that differs between the versions and that the collection observes; "row N" is row N
of §1 in /work/shared/reference/nomad-alloc-api-changes-1.6-to-1.11.md. One emulator per version for the module
(tests/emulator/scenarios/versions.yml plus process-less allocations); the tests that change state run last.
"""

from __future__ import annotations

import pytest
import requests

from tests.emulator.harness import EmulatorProcess
from tests.integration.conftest import AnsibleRunner, running_emulator
from tests.waiting import wait_until

VERSIONS = ("1.6.5", "1.10.5", "1.11.3")
MANAGEMENT = "00000000-0000-4000-8000-0000000000a1"
NO_FS = "00000000-0000-4000-8000-0000000000a2"
VIRTUAL = 12   # process-less allocations with create indexes 5-16: tokens cross the 1-to-2-digit boundary
EXEC = "nomadops.nomad.nomad_alloc_exec"
LOGS = "nomadops.nomad.nomad_alloc_logs"
INFO = "nomadops.nomad.nomad_alloc_info"
STOP = "nomadops.nomad.nomad_alloc_stop"


class Versioned:
    def __init__(self, version: str, emulator: EmulatorProcess, runner: AnsibleRunner):
        self.version, self.emulator, self.runner = version, emulator, runner

    def get(self, path: str, **params):
        response = requests.get(self.emulator.address + path, params=params, headers={"X-Nomad-Token": MANAGEMENT},
                                timeout=30)
        response.raise_for_status()
        return response.json()

    def allocations(self, job: str) -> list:
        return sorted(self.get("/v1/allocations", filter=f'JobID == "{job}"'), key=lambda alloc: alloc["Name"])


@pytest.fixture(scope="module", params=VERSIONS)
def nomad(request, tmp_path_factory):
    with running_emulator("versions.yml", nomad_version=request.param, virtual=VIRTUAL) as emulator:
        runner = AnsibleRunner(emulator.address, tmp_path_factory.mktemp(f"nomad-{request.param}"),
                               extra_env={"NOMAD_TOKEN": MANAGEMENT})
        yield Versioned(request.param, emulator, runner)


def result_of(run) -> dict:
    return run.results[-1]["result"]


def one_line_failure(run) -> str:
    assert run.rc != 0, run.output
    message = result_of(run)["msg"]
    assert "\n" not in message and "Traceback" not in run.output
    return message


def test_exec_result_is_complete_with_or_without_a_close_frame(nomad):
    """Row 7: 1.6.5 sends close 1000 after the exited frame, 1.8+ just closes the connection."""
    run = nomad.runner.playbook(exec_play(nomad, argv=["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]))
    result = run.assert_ok().task("exec")
    assert (result["rc"], result["stdout"], result["stderr"]) == (3, "out", "err")


def test_exec_stream_error_is_a_one_line_failure(nomad):
    """Row 8: a stream error naming a closed pipe closes 1011 at 1.6.5, and ends without a close frame since 1.8."""
    nomad.emulator.control.add_fault(method="GET", path="/exec$", count=1, action="exec_close_early")
    try:
        run = nomad.runner.playbook(exec_play(nomad, argv=["/bin/sh", "-c", "echo first; sleep 5; echo never"]))
    finally:
        nomad.emulator.control.clear_faults()
    result = run.task("exec")
    detail = ("close code 1011: io: read/write on closed pipe" if nomad.version == "1.6.5"
              else "connection dropped without a close frame")
    assert result["msg"] == f"exec session closed before the command exited ({detail})"
    assert result["stdout"] == "first" and "rc" not in result


def exec_play(nomad, **options) -> dict:
    """One exec task in the web allocation that fails only when the session did not end with an exit code."""
    target = {"id": nomad.allocations("web")[0]["ID"], "task": "main"}
    return {"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "exec", EXEC: {**target, **options}, "register": "ran", "failed_when": "ran.rc is not defined"}]}


def test_exec_on_a_finished_allocation_fails_with_one_line(nomad):
    """Row 10: Nomad answers exec on a finished allocation differently (1.6.5: 1008 `task "once" is not running.`,
    1.7+: 1008 `exec not possible, client status ...`); the module reads the task state first, so it says the same
    on every version and opens no session."""
    done = nomad.allocations("done")[0]
    wait_until(lambda: nomad.get(f"/v1/allocation/{done['ID']}")["ClientStatus"] == "complete", what="done")
    nomad.emulator.control.reset_requests()
    message = one_line_failure(nomad.runner.adhoc(EXEC, {"id": done["ID"], "task": "once", "command": "true"}))
    assert message == f"task 'once' of allocation {done['ID'][:8]} is not running (dead)"
    assert not any(path.endswith("/exec") for path in nomad.emulator.control.requests())


def test_logs_refusal_names_the_capability_whatever_the_status(nomad):
    """Row 23: 500 before 1.11.1, 403 at 1.11.3; rows 6/25: the refusal's Content-Type."""
    run = nomad.runner.adhoc(LOGS, {"job": "web"}, env={"NOMAD_TOKEN": NO_FS})
    message = one_line_failure(run)
    assert "Permission denied: the token needs the read-logs or read-fs capability in namespace 'default'" in message
    assert result_of(run)["status"] == (403 if nomad.version == "1.11.3" else 500)
    assert NO_FS not in nomad.runner.adhoc(LOGS, {"job": "web"}, env={"NOMAD_TOKEN": NO_FS}, verbosity=4).output


def test_logs_error_text_is_read_whatever_its_content_type(nomad):
    """Rows 6/25: a logs error before any payload is application/json at 1.6.5, text/plain since 1.9.4."""
    message = one_line_failure(nomad.runner.adhoc(LOGS, {"job": "web", "task": "nope"}))
    assert "nope" in message


def test_alloc_info_task_states_and_pages(nomad):
    """Rows 1, 4 and 18: every allocation exactly once over 1-item pages (string- or numerically compared tokens),
    TaskStates without `TaskHandle` and with `Paused` since 1.10, a per_page Nomad 1.8+ refuses is refused first."""
    expected = {alloc["ID"] for alloc in nomad.get("/v1/allocations")}
    listed = result_of(nomad.runner.adhoc(INFO, {"namespace": "default", "filter": 'ID != ""', "per_page": 1})
                       .assert_ok())
    assert sorted(alloc["ID"] for alloc in listed["allocations"]) == sorted(expected)
    web = result_of(nomad.runner.adhoc(INFO, {"job": "web"}).assert_ok())["allocations"][0]
    task_state = web["TaskStates"]["main"]
    assert ("TaskHandle" in task_state) == (nomad.version == "1.6.5")
    assert ("Paused" in task_state) == (nomad.version != "1.6.5")
    assert result_of(nomad.runner.adhoc(INFO, {"job": "web"}).assert_ok())["summary"][0]["tasks"][0]["state"] == \
        "running"
    nomad.emulator.control.reset_requests()
    too_big = one_line_failure(nomad.runner.adhoc(INFO, {"job": "web", "per_page": 2 ** 31}))
    assert "per_page must be at most 2147483647" in too_big
    assert not any(path.startswith("GET /v1/allocations") for path in nomad.emulator.control.requests())


def test_stop_of_a_batch_allocation_asks_nomad_to_reschedule_it(nomad):
    """Rows 12-15: the module sends reschedule=true for batch jobs, like `nomad alloc stop` since 1.11; 1.11.3
    replaces the allocation, 1.10.5 fails it (its reschedule policy replaces it), 1.6.5 completes it."""
    target = nomad.allocations("batch")[0]
    run = nomad.runner.adhoc(STOP, {"id": target["ID"], "wait": True}).assert_ok()
    assert result_of(run)["changed"] is True
    stopped = nomad.get(f"/v1/allocation/{target['ID']}")
    transition = stopped["DesiredTransition"]
    assert transition["Migrate"] is True
    assert transition["Reschedule"] is (True if nomad.version == "1.11.3" else None)
    assert stopped["ClientStatus"] == ("failed" if nomad.version == "1.10.5" else "complete")
    assert bool(stopped["NextAllocation"]) is (nomad.version != "1.6.5")
    web = nomad.allocations("web")[0]
    nomad.runner.adhoc(STOP, {"id": web["ID"], "wait": True}).assert_ok()
    assert nomad.get(f"/v1/allocation/{web['ID']}")["DesiredTransition"]["Reschedule"] is \
        (False if nomad.version == "1.11.3" else None)   # not sent for service jobs (their replacement is a migration)
