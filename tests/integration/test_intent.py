# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Acting on what the user meant: typos fail naming the missing thing (and send nothing), node ID prefixes,
explicit IDs of finished allocations, readable results (summary, filter, fields) and --diff."""

from __future__ import annotations

import pytest

from tests.integration.conftest import AnsibleRunner

INFO = "nomadops.nomad.nomad_alloc_info"
STOP = "nomadops.nomad.nomad_alloc_stop"
SIGNAL = "nomadops.nomad.nomad_alloc_signal"
RESTART = "nomadops.nomad.nomad_alloc_restart"
MANAGEMENT = "00000000-0000-4000-8000-000000000001"
MUTATIONS = ("/stop", "/signal", "/restart")
EXISTENCE = ("GET /v1/job/", "GET /v1/namespace/", "GET /v1/node/", "GET /v1/nodes")


EMULATOR_SCENARIO = "intent.yml"


def scenario_ready(emulator):
    """web and api run, report has completed."""
    return (_running(emulator, "web") == 2 and _running(emulator, "api") == 1
            and _statuses(emulator, "report") == ["complete"])


EMULATOR_READY = scenario_ready


@pytest.fixture(scope="module")
def runner(emulator, tmp_path_factory):
    return AnsibleRunner(emulator.address, tmp_path_factory.mktemp("intent"), extra_env={"NOMAD_TOKEN": MANAGEMENT})


@pytest.fixture
def requests_seen(emulator):
    emulator.control.reset_requests()
    return emulator.control.requests


def _statuses(emulator, job):
    return [a["ClientStatus"] for a in emulator.allocations("*", token=MANAGEMENT) if a["JobID"] == job]


def _running(emulator, job):
    return _statuses(emulator, job).count("running")


def allocations_of(emulator, job):
    allocs = [a for a in emulator.allocations("*", token=MANAGEMENT) if a["JobID"] == job]
    return sorted(allocs, key=lambda a: a["Name"])


def result_of(run):
    return run.results[-1]["result"]


def mutations(counts):
    return {path: n for path, n in counts.items() if path.endswith(MUTATIONS)}


@pytest.mark.parametrize("module", [STOP, SIGNAL + " signal=HUP", RESTART])
@pytest.mark.parametrize("typo, named", [
    ("job=wbe", 'job "wbe" not found in namespace "default"'),
    ("job=web namespace=prd", 'namespace "prd" not found'),
    ("node=node-9", 'node "node-9" not found'),
    ("job=wbe namespace=*", 'job "wbe" not found in any namespace'),
])
def test_typo_fails_naming_it_and_sends_nothing(emulator, runner, requests_seen, module, typo, named):
    name, _sep, extra = module.partition(" ")
    run = runner.adhoc(name, f"{typo} {extra}".strip())

    assert run.rc != 0 and run.results[-1]["status"] == "failed", run.output
    assert result_of(run)["msg"] == f"{named} at {emulator.address}"
    assert mutations(requests_seen()) == {}


def test_info_warns_and_returns_nothing(emulator, runner):
    run = runner.adhoc(INFO, "job=wbe").assert_ok()

    assert result_of(run)["allocations"] == [] and result_of(run)["summary"] == []
    assert f'job "wbe" not found in namespace "default" at {emulator.address}' in run.output


def test_existing_selection_costs_no_existence_request(runner, requests_seen):
    run = runner.adhoc(SIGNAL, "job=web signal=HUP", check=True).assert_ok()

    assert len(result_of(run)["allocations"]) == 2
    assert [path for path in requests_seen() if path.startswith(EXISTENCE)] == []


def test_empty_selection_of_existing_job_is_ok_and_says_so(runner, requests_seen):
    run = runner.adhoc(STOP, "job=web client_status=failed").assert_ok()

    result = result_of(run)
    assert result["changed"] is False and result["allocations"] == []
    assert result["msg"].startswith("no allocation matched the selector (filter: JobID == ")
    assert mutations(requests_seen()) == {}


def test_node_id_prefix_selects_like_nomad_node_status(emulator, runner):
    run = runner.adhoc(INFO, "node=aa11c0de").assert_ok()

    assert sorted(s["name"] for s in result_of(run)["summary"]) == ["web.frontend[0]", "web.frontend[1]"]
    assert "aa11c0de-0000-4000-8000-000000000001" in result_of(run)["filter"]


NODE_PREFIX = "aa11c0de"
LOOKUP = "nomadops.nomad.nomad_alloc"


@pytest.mark.parametrize("module, args, check", [
    (INFO, f"node={NODE_PREFIX}", False),
    (INFO, f"node={NODE_PREFIX} wait_for=running wait_timeout=30", False),
    (SIGNAL, f"node={NODE_PREFIX} signal=HUP", True),
    (STOP, f"node={NODE_PREFIX} job=wbe", False),  # empty: the existence check trusts the resolved node
    ("ansible.builtin.debug", f"msg={{{{ lookup('{LOOKUP}', node='{NODE_PREFIX}') | length }}}}", False),
    ("ansible.builtin.debug", f"msg={{{{ lookup('{LOOKUP}', node='{NODE_PREFIX}', job='wbe') | length }}}}", False),
    ("nomadops.nomad.nomad_alloc_exec", f"node={NODE_PREFIX} job=web command=true", False),
])
def test_a_node_prefix_is_resolved_once_per_task(runner, requests_seen, module, args, check):
    run = runner.adhoc(module, args, check=check)

    assert run.results, run.output
    assert requests_seen().get("GET /v1/nodes") == 1, (requests_seen(), run.output)


def test_ambiguous_node_prefix_lists_candidates(runner, requests_seen):
    run = runner.adhoc(STOP, "node=aa")

    assert run.rc != 0
    assert result_of(run)["msg"] == (f'node prefix "aa" matched 2 nodes at {runner.address}: aa11c0de (node-1), '
                                     'aa22c0de (node-2) '
                                     "(give more characters or the node name)")
    assert mutations(requests_seen()) == {}


def test_summary_and_filter(emulator, runner):
    run = runner.adhoc(INFO, "job=web").assert_ok()

    result = result_of(run)
    assert result["filter"] == 'JobID == "web"'
    first = next(entry for entry in result["summary"] if entry["name"] == "web.frontend[0]")
    assert first["id"] == allocations_of(emulator, "web")[0]["ID"][:8]
    assert (first["node"], first["client_status"], first["desired_status"]) == ("node-1", "running", "run")
    task = first["tasks"][0]
    assert (task["task"], task["state"], task["restarts"]) == ("server", "running", 0)
    assert task["last_event"].startswith("Started") and task["last_event_time"].endswith("Z")
    assert "T" in task["last_event_time"]


def test_fields_keeps_only_those_keys_and_warns_about_unknown(runner):
    run = runner.adhoc(INFO, {"job": "web", "fields": ["ID", "ClientStatus", "Bogus"]}).assert_ok()

    assert {tuple(sorted(a)) for a in result_of(run)["allocations"]} == {("ClientStatus", "ID")}
    assert "fields Bogus name no key of the returned allocations" in run.output


def test_fields_alone_keeps_complete_summaries_and_summary_false_leaves_them_out(runner):
    kept = result_of(runner.adhoc(INFO, {"job": "web", "fields": ["ID"]}).assert_ok())
    bare = result_of(runner.adhoc(INFO, {"job": "web", "fields": ["ID"], "summary": False}).assert_ok())

    assert {entry["client_status"] for entry in kept["summary"]} == {"running"}
    assert "summary" not in bare
    assert bare["allocations"] == kept["allocations"] and bare["count"] == kept["count"] == len(kept["summary"])


def test_explicit_finished_allocation_restart_fails_but_selected_is_skipped(emulator, runner, requests_seen):
    report = allocations_of(emulator, "report")[0]

    explicit = runner.adhoc(RESTART, f"id={report['ID'][:8]}")
    selected = runner.adhoc(RESTART, "job=report").assert_ok()

    assert explicit.rc != 0
    assert result_of(explicit)["msg"] == (
        f"1 of 1 allocation failed: {report['ID'][:8]} (report.report[0]): cannot restart an allocation given by id: "
        "allocation is terminal (ClientStatus complete); its tasks no longer run")
    assert result_of(selected)["allocations"][0]["skipped_reason"].startswith("allocation is terminal")
    assert mutations(requests_seen()) == {}


def test_finished_prestart_task_hints_all_tasks(runner):
    run = runner.adhoc(RESTART, "job=api task=init")

    assert run.rc != 0 and "use all_tasks=true instead of task" in result_of(run)["msg"]


def test_diff_in_check_mode_shows_node_and_client_status(runner, requests_seen):
    run = runner.adhoc(STOP, "job=web", check=True, args=("--diff",)).assert_ok()

    assert "-desired_status: run" in run.stdout and "+desired_status: stop" in run.stdout
    assert "web.frontend[0] on node-1 (client status running, desired status run)" in run.stdout
    assert len(result_of(run)["diff"]) == 2
    assert mutations(requests_seen()) == {}


def test_diff_of_a_real_signal(runner, requests_seen):
    run = runner.adhoc(SIGNAL, "job=web signal=HUP", args=("--diff",)).assert_ok()

    assert "+task server: running, restarts 0, SIGHUP sent" in run.stdout
    assert sum(n for path, n in requests_seen().items() if path.endswith("/signal")) == 2
