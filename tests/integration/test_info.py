# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomadops.nomad.nomad_alloc_info driven by real ansible-playbook / ansible runs against the emulator."""

from __future__ import annotations

import json

import pytest

from tests.integration.observe import closed_address, play

MODULE = "nomadops.nomad.nomad_alloc_info"


def info(name, ignore_errors=False, **args):
    task = {"name": name, MODULE: args}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def allocations_of(emulator, job=None, namespace="*"):
    return [a for a in emulator.allocations(namespace) if job is None or a["JobID"] == job]


def unique_prefix(alloc_id, others, length=4):
    """The shortest prefix (>= length) of alloc_id that no other ID shares."""
    while any(other != alloc_id and other.startswith(alloc_id[:length]) for other in others):
        length += 1
    return alloc_id[:length]


# ------------------------------------------------------------------------------------------ listing
def test_list_by_job_returns_stubs_count_and_index(ansible_runner, integration_emulator):
    run = ansible_runner.playbook(play(info("web", job="web"))).assert_ok()
    result = run.task("web")
    expected = sorted(a["ID"] for a in allocations_of(integration_emulator, "web"))
    assert sorted(a["ID"] for a in result["allocations"]) == expected
    assert result["count"] == len(expected) == 3
    assert isinstance(result["index"], int) and result["index"] > 0
    assert result["changed"] is False
    assert all("Job" not in a and "TaskStates" in a for a in result["allocations"])  # stubs


def test_namespace_star_lists_every_namespace(ansible_runner):
    run = ansible_runner.playbook(play(
        info("all", namespace="*"),
        info("cache in default", job="cache"),
        info("cache everywhere", namespace="*", job="cache"),
    )).assert_ok()
    namespaces = {a["Namespace"] for a in run.task("all")["allocations"]}
    assert namespaces == {"default", "prod"}
    assert run.task("cache in default")["count"] == 0  # nothing matched: not a failure
    assert [a["Namespace"] for a in run.task("cache everywhere")["allocations"]] == ["prod", "prod"]


def test_selector_options_are_combined(ansible_runner, integration_emulator):
    run = ansible_runner.playbook(play(
        info("all options", job="web", task_group="frontend", node="node-1", client_status=["running", "pending"],
             filter='"server" in TaskStates'),
        info("other node", job="web", node="node-2"),
        info("other status", job="web", client_status=["failed"]),
        info("raw filter only", filter='Job.Type == "batch"'),
        info("resources", job="web", resources=True, task_states=False, limit=2, reverse=True),
    )).assert_ok()
    assert run.task("all options")["count"] == 3
    node_id = run.task("all options")["allocations"][0]["NodeID"]
    assert run.task("other node")["count"] == 0
    assert run.task("other status")["count"] == 0
    assert [a["JobID"] for a in run.task("raw filter only")["allocations"]] == ["report"]
    limited = run.task("resources")["allocations"]
    assert len(limited) == 2
    assert all("AllocatedResources" in a and a.get("TaskStates") is None for a in limited)
    by_node_id = ansible_runner.playbook(play(info("by node id", job="web", node=node_id))).assert_ok()
    assert by_node_id.task("by node id")["count"] == 3


def test_short_ids_resolve_to_full_objects(ansible_runner, integration_emulator):
    everything = allocations_of(integration_emulator)
    ids = [a["ID"] for a in everything]
    web = allocations_of(integration_emulator, "web")[0]
    cache = allocations_of(integration_emulator, "cache")[0]
    run = ansible_runner.playbook(play(
        info("short", id=[unique_prefix(web["ID"], ids)]),
        info("odd length", id=[unique_prefix(web["ID"], ids, 5)]),
        info("other namespace needs *", id=[cache["ID"][:8]], ignore_errors=True),
        info("other namespace with *", id=[cache["ID"][:8]], namespace="*"),
    )).assert_ok()
    short = run.task("short")["allocations"]
    assert [a["ID"] for a in short] == [web["ID"]] and short[0]["Job"]["ID"] == "web"  # full object
    assert [a["ID"] for a in run.task("odd length")["allocations"]] == [web["ID"]]
    failed = run.task("other namespace needs *")
    assert failed["_status"] == "ignored"
    assert failed["msg"] == (f'No allocation(s) with prefix or id "{cache["ID"][:8]}" found in namespace "default" at '
                             f'{ansible_runner.address} (use namespace "*" to search all)')
    assert run.task("other namespace with *")["allocations"][0]["Namespace"] == "prod"


def test_services_are_attached(ansible_runner, integration_emulator):
    web = allocations_of(integration_emulator, "web")[0]
    run = ansible_runner.playbook(play(
        info("one", id=[web["ID"]], services=True),
        info("cache stubs", namespace="*", job="cache", services=True),
    )).assert_ok()
    services = run.task("one")["allocations"][0]["Services"]
    assert [(s["ServiceName"], s["Port"], s["AllocID"]) for s in services] == [("web", 8080, web["ID"])]
    for stub in run.task("cache stubs")["allocations"]:
        assert [s["ServiceName"] for s in stub["Services"]] == ["cache"]
        assert stub["Services"][0]["Namespace"] == "prod"


def test_environment_fallbacks_and_their_precedence(ansible_runner):
    run = ansible_runner.playbook(play(
        info("namespace from environment", job="cache"),
        info("argument wins", job="cache", namespace="default"),
    ), env={"NOMAD_NAMESPACE": "prod", "NOMAD_REGION": "global", "NOMAD_SKIP_VERIFY": "yes-unparsable"}).assert_ok()
    assert run.task("namespace from environment")["count"] == 2
    assert run.task("argument wins")["count"] == 0


def test_module_defaults_for_the_action_group(ansible_runner, integration_emulator):
    playbook = play(
        info("defaults", job="cache"),
        module_defaults={"group/nomadops.nomad.nomad": {"address": integration_emulator.address, "namespace": "prod"}},
    )
    run = ansible_runner.playbook(playbook, env={"NOMAD_ADDR": closed_address()}).assert_ok()
    assert run.task("defaults")["count"] == 2


def test_playbook_file_and_check_mode(ansible_runner):
    run = ansible_runner.playbook("info_basic.yml", check=True).assert_ok()
    result = run.task("List the allocations of job web")
    assert result["_status"] == "ok" and result["count"] == 3
    assert run.task("Check the result")["_status"] == "ok"


def test_adhoc(ansible_runner):
    run = ansible_runner.adhoc(MODULE, "job=web").assert_ok()
    assert [entry["result"]["count"] for entry in run.results] == [3]
    assert '"count": 3' in run.stdout


# ------------------------------------------------------------------------------------------ waiting
def test_wait_for_terminal_running_and_absent(start_emulator, tmp_path):
    from tests.integration.conftest import AnsibleRunner

    emulator = start_emulator("integration.yml")
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    victim = allocations_of(emulator, "web")[0]
    report = allocations_of(emulator, "report")[0]
    stopped = emulator.control.session.post(f"{emulator.address}/v1/allocation/{victim['ID']}/stop", timeout=30)
    stopped.raise_for_status()
    run = runner.playbook(play(
        info("terminal", id=[victim["ID"][:8]], wait_for="terminal", wait_timeout=60),
        info("running again", job="web", wait_for="running", wait_timeout=60),
        info("healthy", job="web", wait_for="healthy", wait_timeout=60),
        info("absent", id=[victim["ID"]], client_status=["running", "pending"], wait_for="absent", wait_timeout=60),
        info("never", job="report", wait_for="running", wait_timeout=2, ignore_errors=True),
        info("never by id", id=[report["ID"]], wait_for="running", wait_timeout=600, ignore_errors=True),
    )).assert_ok()
    terminal = run.task("terminal")
    assert terminal["allocations"][0]["ID"] == victim["ID"]
    assert terminal["allocations"][0]["ClientStatus"] == "complete"
    assert "waited" in terminal
    running = run.task("running again")["allocations"]
    active = [a for a in running if a["DesiredStatus"] == "run"]
    assert len(active) == 3 and all(a["ClientStatus"] == "running" for a in active)
    assert run.task("absent")["count"] == 0
    never = run.task("never")
    assert never["_status"] == "ignored"
    # A job selection keeps waiting (Nomad may place replacements), so it times out naming what it saw.
    assert never["msg"].startswith("timed out after 2 s waiting for the allocations to be running: "
                                   "none of the selected allocations should run any more: ")
    assert never["msg"].endswith("(report.report[0]): client status complete")
    # Chosen by ID, a finished allocation can never run again: no point waiting out wait_timeout.
    assert run.task("never by id")["msg"] == (
        "the allocations can no longer become running: none of the selected allocations should run any more: "
        f"{report['ID'][:8]} (report.report[0]): client status complete")


# ------------------------------------------------------------------------------------------ scale
@pytest.mark.parametrize("string_token_compare", [False, True])
def test_many_pages_every_allocation_exactly_once(start_emulator, tmp_path, string_token_compare):
    from tests.integration.conftest import AnsibleRunner

    emulator = start_emulator("integration.yml", virtual=2500, string_token_compare=string_token_compare)
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    expected = sorted(a["ID"] for a in emulator.allocations("*"))
    assert len(expected) > 2500
    run = runner.playbook(play(
        info("all pages", namespace="*", per_page=97, task_states=False),
    )).assert_ok()
    listed = [a["ID"] for a in run.task("all pages")["allocations"]]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == expected
    recovered = "hashicorp/nomad#25435" in run.output
    assert recovered is string_token_compare


def test_ambiguous_prefix_lists_matches(start_emulator, tmp_path):
    from tests.integration.conftest import AnsibleRunner

    emulator = start_emulator("integration.yml", virtual=600)
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    ids = [a["ID"] for a in emulator.allocations("default")]
    prefix = max({i[:2] for i in ids}, key=lambda p: sum(i.startswith(p) for i in ids))
    matching = sorted(i for i in ids if i.startswith(prefix))
    run = runner.playbook(play(info("ambiguous", id=[prefix], ignore_errors=True))).assert_ok()
    message = run.task("ambiguous")["msg"]
    assert message.startswith(f'Prefix "{prefix}" matched {len(matching)} allocations at {emulator.address}: ')
    assert "\n" not in message and "(give more characters)" in message
    shown = [i[:8] for i in matching[:10]]
    assert all(s in message for s in shown)


# ------------------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_fail_with_one_line_messages(ansible_runner, tmp_path):
    unreachable = closed_address()
    run = ansible_runner.playbook(play(
        info("non-hex id", id=["zz"], ignore_errors=True),
        info("one character", id=["a"], ignore_errors=True),
        info("unknown id", id=["eeeeeeee"], ignore_errors=True),
        info("unknown namespace", id=["ee"], namespace="nope", ignore_errors=True),
        info("bad prefix", prefix="xyz", ignore_errors=True),
        info("invalid filter", filter="JobID ==", ignore_errors=True),
        info("unknown field", filter='JobType == "service"', ignore_errors=True),
        info("negative per_page", per_page=-1, ignore_errors=True),
        info("bad client_status", client_status=["runing"], ignore_errors=True),
        info("unreachable", address=unreachable, retries=0, ignore_errors=True),
        info("bad ca", address="https://127.0.0.1:4646", ca_cert=str(tmp_path / "missing-ca.pem"), ignore_errors=True),
        info("bad region", region="mars", retries=0, ignore_errors=True),
        info("bad wait", wait_for="running", wait_timeout=-1, job="web", ignore_errors=True),
    )).assert_ok()
    expected = {
        "non-hex id": 'id "zz" is not an allocation ID or ID prefix (only hexadecimal digits and hyphens)',
        "one character": 'id "a" must contain at least two characters',
        "unknown id": f'No allocation(s) with prefix or id "eeeeeeee" found in namespace "default" at {ansible_runner.address} (use namespace',
        "unknown namespace": f'No allocation(s) with prefix or id "ee" found in namespace "nope" at {ansible_runner.address} (use namespace',
        "bad prefix": 'prefix "xyz" is not an allocation ID or ID prefix (only hexadecimal digits and hyphens)',
        "invalid filter": "GET /v1/allocations failed: 400 failed to create result paginator: failed to read filter expression: ",
        "unknown field": "GET /v1/allocations failed: 400 failed to read result page: error finding value in datum: /JobType",
        "negative per_page": "per_page must be 1 or more (got -1)",
        "bad client_status": "value of client_status must be one or more of",
        "unreachable": f"cannot reach Nomad at {unreachable}: connection refused (check address / NOMAD_ADDR)",
        "bad ca": "ca_cert '%s' is not a readable file" % (tmp_path / "missing-ca.pem"),
        "bad region": "GET /v1/allocations failed: 500 No path to region (check region / NOMAD_REGION)",
        "bad wait": "wait_timeout must be 0 or more seconds (got -1)",
    }
    for name, message in expected.items():
        result = run.task(name)
        assert result["_status"] == "ignored", name
        assert result["msg"].startswith(message), (name, result["msg"])
        assert "\n" not in result["msg"] and "Traceback" not in result["msg"], name
        assert "exception" not in result or "Traceback" not in result["msg"]
    assert run.task("invalid filter")["msg"].endswith("(check the filter expression)")


def test_acl_denied_with_hint_and_no_token_anywhere(start_emulator, tmp_path):
    from tests.integration.conftest import AnsibleRunner

    emulator = start_emulator("acl.yml")
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    read_only = "00000000-0000-4000-8000-000000000002"
    # The token comes from the environment through a template: at -vvvv Ansible itself prints the failing
    # task's source and the command line (-e), which therefore must not hold it.
    run = runner.playbook(play(
        info("allowed", job="web", token="{{ lookup('env', 'TEST_READ_ONLY_TOKEN') }}"),
        info("denied", namespace="prod", token="{{ lookup('env', 'TEST_READ_ONLY_TOKEN') }}", ignore_errors=True),
        info("anonymous", ignore_errors=True),
    ), verbosity=4, env={"NOMAD_TOKEN": None, "TEST_READ_ONLY_TOKEN": read_only}).assert_ok()
    assert run.task("allowed")["count"] == 2
    assert run.task("denied")["msg"] == (
        'GET /v1/allocations failed: 403 Permission denied (check that the token has read-job in namespace "prod")'
    )
    assert run.task("anonymous")["msg"] == (
        "GET /v1/allocations failed: 403 Permission denied (no token was sent: set token or NOMAD_TOKEN)"
    )
    assert read_only not in run.output
    assert read_only not in json.dumps(run.results)


def test_token_from_environment_is_not_shown(start_emulator, tmp_path):
    from tests.integration.conftest import AnsibleRunner

    emulator = start_emulator("acl.yml")
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    read_only = "00000000-0000-4000-8000-000000000002"
    run = runner.adhoc(MODULE, "namespace=prod", env={"NOMAD_TOKEN": read_only}, verbosity=4)
    assert run.rc != 0
    assert "403 Permission denied (check that the token has read-job in namespace \\\"prod\\\")" in run.output or \
        '403 Permission denied (check that the token has read-job in namespace "prod")' in run.output
    assert read_only not in run.output


# ------------------------------------------------------------------------------------------ faults
def test_reads_survive_transient_faults(ansible_runner, integration_emulator):
    control = integration_emulator.control
    try:
        control.add_fault(method="GET", path="^/v1/allocations$", count=1, action="drop_mid_body")
        control.add_fault(method="GET", path="^/v1/allocations$", count=1, action="drop")
        control.add_fault(method="GET", path="^/v1/allocations$", count=1, action="status", status=500,
                          body="No cluster leader")
        control.add_fault(method="GET", path="^/v1/allocations$", count=1, action="status", status=429,
                          body="Too many requests", retry_after=1)
        control.reset_requests()
        run = ansible_runner.playbook(play(info("flaky", job="web", retries=4))).assert_ok()
        assert run.task("flaky")["count"] == 3
        assert control.requests()["GET /v1/allocations"] == 5
        control.add_fault(method="GET", path="^/v1/allocations$", count=10, action="status", status=500,
                          body="No cluster leader")
        failing = ansible_runner.playbook(play(info("no leader", job="web", retries=1, ignore_errors=True))).assert_ok()
        assert failing.task("no leader")["msg"] == (
            "GET /v1/allocations failed: 500 No cluster leader (the Nomad servers have no leader; try again later)"
        )
    finally:
        control.clear_faults()
