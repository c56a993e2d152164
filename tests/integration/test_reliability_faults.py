# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fault matrix: every read path under every transient fault, and mutations under faults.

Reads (info by selector, info by full ID, short-ID resolution, the lookup, waits) must succeed when a
fault hits at most `retries` times and fail with one clear line when it hits `retries + 1` times. The
faults are armed from inside ONE playbook per matrix (a uri task against the emulator's control API
before each read), so the whole matrix costs one ansible run. Mutations (stop, signal, restart) must
never be sent twice once the server may have accepted them, and a failure must say which allocations
were and were not acted on.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import collection_module

INFO = "nomadops.nomad.nomad_alloc_info"
RETRIES = 2
TIMEOUT = 1.0

# name -> fault rule (without method/path/count).  "slow" answers late but within the timeout.
FAULTS = {
    "no_leader_500": dict(action="status", status=500, body="No cluster leader"),
    "bad_gateway_502": dict(action="status", status=502, body="Bad Gateway"),
    "unavailable_503": dict(action="status", status=503, body="Service Unavailable"),
    "too_many_429": dict(action="status", status=429, body="Too many requests", retry_after=1),
    "reset": dict(action="drop"),
    "cut_mid_body": dict(action="drop_mid_body"),
    "read_timeout": dict(action="delay", delay_ms=int(TIMEOUT * 1000) + 700),
}
SLOW = dict(action="delay", delay_ms=300)

# What the one-line failure message must contain once the retries are spent.
FAILURE_TEXT = {
    "no_leader_500": "500 No cluster leader (the Nomad servers have no leader; try again later)",
    "bad_gateway_502": "502 Bad Gateway",
    "unavailable_503": "503 Service Unavailable",
    "too_many_429": "429 Too many requests",
    "reset": "broke before a complete answer",
    "cut_mid_body": "broke before a complete answer",
    "read_timeout": "did not answer within the timeout",
}


def running(emulator, job):
    return sorted((a for a in emulator.allocations("*") if a["JobID"] == job and a["ClientStatus"] == "running"),
                  key=lambda a: a["Name"])


def arm(address, name, path, count, rule):
    """A uri task that adds one fault rule through the control API."""
    return {
        "name": f"arm {name}",
        "ansible.builtin.uri": {
            "url": f"{address}/_emulator/faults",
            "method": "POST",
            "body_format": "json",
            "body": dict(rule, method="GET", path=path, count=count),
            "use_proxy": False,
        },
    }


def connection(**extra):
    return dict(retries=RETRIES, timeout=TIMEOUT, **extra)


def read_paths(emulator):
    """name -> (fault path regex, the read task body, how to get the allocations out of the result)."""
    web = running(emulator, "web")
    target = web[0]["ID"]
    ids = [a["ID"] for a in emulator.allocations("*")]
    prefix = next(target[:n] for n in range(6, 37) if sum(i.startswith(target[:n]) for i in ids) == 1)
    lookup = f"{{{{ lookup('nomadops.nomad.nomad_alloc', job='web', retries={RETRIES}, timeout={TIMEOUT}) }}}}"
    return {
        "info_selector": ("^/v1/allocations$", {INFO: connection(job="web")}, lambda r: r["allocations"]),
        "info_full_id": (f"^/v1/allocation/{target}$", {INFO: connection(id=[target])}, lambda r: r["allocations"]),
        "short_id": ("^/v1/allocations$", {INFO: connection(id=[prefix])}, lambda r: r["allocations"]),
        "lookup": ("^/v1/allocations$", {"ansible.builtin.set_fact": {"found": lookup}},
                   lambda r: r["ansible_facts"]["found"]),
        "wait_running": ("^/v1/allocations$", {INFO: connection(job="web", wait_for="running", wait_timeout=20)},
                         lambda r: r["allocations"]),
        # The exec action resolves its short ID through the same client before opening the session.
        "exec_short_id": ("^/v1/allocations$",
                          {"nomadops.nomad.nomad_alloc_exec": dict(id=prefix, task="server", retries=RETRIES,
                                                                   argv=["/bin/sh", "-c",
                                                                         'printf %s "$NOMAD_ALLOC_ID"'])},
                          lambda r: [{"ID": r["stdout"]}]),
    }, target


# Every fault on the paths with their own request shape; the other paths (same client.read underneath)
# get the faults that break a request in different places (status, no answer, half an answer).
EVERY_FAULT_PATHS = ("info_selector", "short_id", "lookup")
SOME_FAULT_PATHS = ("info_full_id", "wait_running", "exec_short_id")
SOME_FAULTS = ("no_leader_500", "reset", "cut_mid_body")


def success_cases():
    cases = [(path, fault) for fault in FAULTS for path in EVERY_FAULT_PATHS]
    cases += [(path, fault) for fault in SOME_FAULTS for path in SOME_FAULT_PATHS]
    # Last: a slow rule's unused hits would otherwise slow down (not fail) the requests of later cases.
    return cases + [(path, "slow") for path in EVERY_FAULT_PATHS]


def failure_cases():
    # read_timeout's message has its own test below (test_read_timeout_after_retries_is_reported_as_a_timeout).
    cases = [("info_selector", fault) for fault in FAULTS if fault != "read_timeout"]
    other_paths = ("lookup", "short_id", "info_full_id", "wait_running", "exec_short_id")
    return cases + [(path, fault) for fault in SOME_FAULTS for path in other_paths]


def matrix_playbook(address, paths, cases, count_for):
    tasks = []
    for path_name, fault in cases:
        path, body, _extract = paths[path_name]
        case = f"{path_name} {fault}"
        tasks.append(arm(address, case, path, count_for(fault), SLOW if fault == "slow" else FAULTS[fault]))
        tasks.append(dict(body, name=case, ignore_errors=True))
    return [dict(hosts="localhost", gather_facts=False, tasks=tasks)]


def test_every_read_path_survives_every_fault_within_its_retries(emulator, ansible_runner):
    paths, target = read_paths(emulator)
    web_ids = sorted(a["ID"] for a in running(emulator, "web"))
    emulator.control.clear_faults()
    # `slow` hits more requests than there are retries: slow answers within the timeout are not failures.
    run = ansible_runner.playbook(matrix_playbook(emulator.address, paths, success_cases(),
                                                  lambda fault: RETRIES + 2 if fault == "slow" else RETRIES))
    try:
        problems = []
        for path_name, fault in success_cases():
            case = f"{path_name} {fault}"
            result = run.task(case)
            if result["_status"] not in ("ok", "changed"):
                problems.append(f"{case}: {result.get('msg')}")
                continue
            found = sorted(a["ID"] for a in paths[path_name][2](result))
            expected = [target] if path_name in ("info_full_id", "short_id", "exec_short_id") else web_ids
            if found != expected:
                problems.append(f"{case}: got {found}, expected {expected}")
        assert not problems, "\n".join(problems)
        # Every armed fault hit exactly `retries` requests (the retries were really used, none left over).
        leftovers = [rule for rule in emulator.control.faults() if rule["count"] and rule["action"] != "delay"]
        assert not leftovers, leftovers
    finally:
        emulator.control.clear_faults()


def test_every_read_path_fails_clearly_after_its_retries(emulator, ansible_runner):
    paths, _target = read_paths(emulator)
    emulator.control.clear_faults()
    run = ansible_runner.playbook(matrix_playbook(emulator.address, paths, failure_cases(), lambda f: RETRIES + 1))
    try:
        problems = []
        for path_name, fault in failure_cases():
            case = f"{path_name} {fault}"
            result = run.task(case)
            message = str(result.get("msg", ""))
            if result["_status"] != "ignored":
                problems.append(f"{case}: did not fail ({result['_status']})")
            elif "\n" in message or "Traceback" in message or FAILURE_TEXT[fault] not in message:
                problems.append(f"{case}: unclear message {message!r}")
        assert not problems, "\n".join(problems)
        # retries + 1 attempts, not fewer (a rule with hits left over) and not more (the next case would
        # have consumed them and succeeded, caught above).
        leftovers = [rule for rule in emulator.control.faults() if rule["count"]]
        assert not leftovers, leftovers
    finally:
        emulator.control.clear_faults()


collection = collection_module


def collection_client(address, **options):
    options = collection("common.options").connection_options_from_params(dict(address=address, **options))
    return collection("common.client").NomadClient(options)


@pytest.mark.parametrize("fault", sorted(name for name, rule in FAULTS.items() if rule["action"] != "delay"))
def test_the_blocking_query_of_waits_is_retried(emulator, fault):
    """Waits block on GET /v1/allocations?index=..&wait=..; a fault there is retried like any read."""
    with collection_client(emulator.address, retries=RETRIES, timeout=TIMEOUT, namespace="*") as client:
        index = client.read("/v1/allocations").index
        emulator.control.clear_faults()
        emulator.control.add_fault(method="GET", path="^/v1/allocations$", count=RETRIES, **FAULTS[fault])
        try:
            answer = client.blocking_read("/v1/allocations", {"per_page": 1}, index, 1)
            assert answer.status == 200 and answer.index >= index
            assert not [rule for rule in emulator.control.faults() if rule["count"]]
            emulator.control.add_fault(method="GET", path="^/v1/allocations$", count=RETRIES + 1, **FAULTS[fault])
            with pytest.raises(collection("common.client").NomadError) as failure:
                client.blocking_read("/v1/allocations", {"per_page": 1}, index, 1)
        finally:
            emulator.control.clear_faults()
    assert FAILURE_TEXT[fault] in str(failure.value) and "\n" not in str(failure.value)


def test_read_timeout_after_retries_is_reported_as_a_timeout(emulator):
    """Every attempt times out: the message must say so (and suggest raising timeout), not blame a broken
    connection or https.  Fails today: with retries >= 1, requests wraps urllib3's ReadTimeoutError in
    MaxRetryError -> requests.ConnectionError, which _client.NomadClient._connection_error does not
    recognise as a timeout."""
    with collection_client(emulator.address, retries=1, timeout=0.5) as client:
        emulator.control.clear_faults()
        emulator.control.add_fault(method="GET", path="^/v1/allocations$", count=2, action="delay", delay_ms=1200)
        try:
            with pytest.raises(collection("common.client").NomadTimeoutError) as failure:
                client.read("/v1/allocations")
        finally:
            emulator.control.clear_faults()
    message = str(failure.value)
    assert FAILURE_TEXT["read_timeout"] in message and "https://" not in message, message


# ------------------------------------------------------------------------------------------ mutations
def posts(emulator, suffix):
    return {key: count for key, count in emulator.control.requests().items()
            if key.startswith("POST ") and key.endswith(suffix)}


def signals_of(emulator, alloc_id, task="server"):
    return list(emulator.control.tasks(alloc_id)[task]["signals"])


MUTATION_FAULTS = {
    # The handler ran, then the answer broke off: the server DID act.
    "cut_mid_body": (dict(action="drop_mid_body"), True),
    # The client gave up waiting; Nomad would act after the delay (the emulator may drop it instead).
    "read_timeout": (dict(action="delay", delay_ms=2500), None),
    # Refused before the handler: the server did not act.
    "reset": (dict(action="drop"), False),
    "unavailable_503": (dict(action="status", status=503, body="Service Unavailable"), False),
    "too_many_429": (dict(action="status", status=429, body="Too many requests", retry_after=1), False),
}


@pytest.mark.parametrize("fault", sorted(MUTATION_FAULTS))
def test_signal_is_sent_once_and_the_report_names_what_was_signalled(emulator, ansible_runner, fault):
    rule, server_acted = MUTATION_FAULTS[fault]
    web = running(emulator, "web")
    victim = web[0]["ID"]
    before = {a["ID"]: signals_of(emulator, a["ID"]).count("SIGUSR1") for a in web}
    path = f"/v1/client/allocation/{victim}/signal"
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{path}$", count=1, **rule)
    try:
        run = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_signal",
                                   dict(job="web", task="server", signal="SIGUSR1", retries=5, timeout=1.5))
    finally:
        emulator.control.clear_faults()
    if rule["action"] == "delay":
        time.sleep(rule["delay_ms"] / 1000.0)
    result = run.results[-1]["result"]
    assert run.rc != 0, run.output
    assert "\n" not in result["msg"] and "Traceback" not in result["msg"]
    assert result["msg"].startswith(f"1 of 3 allocations failed: {victim[:8]} "), result["msg"]
    assert posts(emulator, "/signal") == {f"POST /v1/client/allocation/{a['ID']}/signal": 1 for a in web}
    by_id = {entry["ID"]: entry for entry in result["allocations"]}
    assert set(by_id) == set(before)
    for alloc_id, count in before.items():
        delivered = signals_of(emulator, alloc_id).count("SIGUSR1") - count
        if alloc_id == victim:
            assert by_id[alloc_id].get("error"), by_id[alloc_id]
            # None: the emulator drops a request whose client went away before the delay ended.
            assert delivered in ((0, 1) if server_acted is None else (int(server_acted),))
        else:
            assert by_id[alloc_id]["changed"] is True and not by_id[alloc_id].get("error")
            assert delivered == 1


def test_a_signal_whose_answer_was_cut_says_it_may_have_been_applied(emulator, ansible_runner):
    victim = running(emulator, "web")[1]["ID"]
    path = f"/v1/client/allocation/{victim}/signal"
    emulator.control.add_fault(method="POST", path=f"^{path}$", count=1, action="drop_mid_body")
    try:
        run = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_signal", dict(id=[victim], signal="SIGHUP"))
    finally:
        emulator.control.clear_faults()
    assert "may or may not have been applied" in run.results[-1]["result"]["msg"]


def test_a_write_that_times_out_says_it_may_have_been_applied(emulator, ansible_runner):
    """The server received the request and acts on it after the client stopped waiting, so the
    failure must not read like 'nothing happened'."""
    victim = running(emulator, "web")[2]["ID"]
    path = f"/v1/client/allocation/{victim}/signal"
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{path}$", count=1, action="delay", delay_ms=2000)
    try:
        run = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_signal",
                                   dict(id=[victim], signal="SIGHUP", timeout=1, retries=3))
    finally:
        emulator.control.clear_faults()
    message = run.results[-1]["result"]["msg"]
    assert posts(emulator, "/signal") == {f"POST {path}": 1}
    assert "may or may not have been applied" in message, message


def test_stop_and_restart_are_never_resent_after_the_server_acted(emulator, ansible_runner):
    first, second = running(emulator, "cache")
    web_target = running(emulator, "web")[0]
    pid_before = emulator.control.tasks(web_target["ID"])["server"]["pid"]
    stop_path = f"/v1/allocation/{first['ID']}/stop"
    restart_path = f"/v1/client/allocation/{web_target['ID']}/restart"
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{stop_path}$", count=1, action="drop_mid_body")
    emulator.control.add_fault(method="POST", path=f"^{restart_path}$", count=1, action="drop_mid_body")
    try:
        run = ansible_runner.playbook([dict(hosts="localhost", gather_facts=False, tasks=[
            {"name": "stop", "nomadops.nomad.nomad_alloc_stop": dict(job="cache", namespace="prod", retries=5),
             "ignore_errors": True},
            {"name": "restart", "nomadops.nomad.nomad_alloc_restart": dict(id=[web_target["ID"]], task="server",
                                                                           retries=5), "ignore_errors": True},
        ])])
    finally:
        emulator.control.clear_faults()

    stop = run.task("stop")
    assert stop["_status"] == "ignored"
    assert stop["msg"].startswith(f"1 of 2 allocations failed: {first['ID'][:8]} ({first['Name']}): "), stop["msg"]
    assert "may or may not have been applied" in stop["msg"]
    by_id = {entry["ID"]: entry for entry in stop["allocations"]}
    assert by_id[first["ID"]].get("error") and by_id[second["ID"]]["changed"] is True
    assert posts(emulator, "/stop") == {f"POST {stop_path}": 1, f"POST /v1/allocation/{second['ID']}/stop": 1}
    # The server had accepted the stop whose answer was cut: it is stopping, and was asked once.
    stopped = {a["ID"]: a for a in emulator.allocations("*")}
    assert stopped[first["ID"]]["DesiredStatus"] == "stop"

    restart = run.task("restart")
    assert restart["_status"] == "ignored"
    assert "\n" not in restart["msg"] and "may or may not have been applied" in restart["msg"], restart["msg"]
    assert posts(emulator, "/restart") == {f"POST {restart_path}": 1}
    tasks = emulator.control.tasks(web_target["ID"])
    assert tasks["server"]["restarts"] >= 1 and tasks["server"]["pid"] != pid_before


def test_a_failed_restart_among_many_names_it_and_the_others_restart_once(emulator, ansible_runner):
    web = running(emulator, "web")
    victim = web[1]["ID"]
    restarts = {a["ID"]: emulator.control.tasks(a["ID"])["server"]["restarts"] for a in web}
    path = f"/v1/client/allocation/{victim}/restart"
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{path}$", count=1, action="status", status=503,
                               body="Service Unavailable")
    try:
        run = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_restart", dict(job="web", task="server", retries=5))
    finally:
        emulator.control.clear_faults()
    result = run.results[-1]["result"]
    assert run.rc != 0
    assert result["msg"].startswith(f"1 of 3 allocations failed: {victim[:8]} "), result["msg"]
    assert result["msg"].endswith("Service Unavailable") and "\n" not in result["msg"]
    assert posts(emulator, "/restart") == {f"POST /v1/client/allocation/{a['ID']}/restart": 1 for a in web}
    by_id = {entry["ID"]: entry for entry in result["allocations"]}
    for alloc_id, before in restarts.items():
        after = emulator.control.tasks(alloc_id)["server"]["restarts"]
        if alloc_id == victim:
            assert by_id[alloc_id].get("error") and after == before
        else:
            assert by_id[alloc_id]["changed"] is True and after == before + 1


def test_stop_whose_wait_fails_reports_the_stops_as_done(emulator, ansible_runner):
    """The stops were accepted, then every read of the wait fails: the result must still say which
    allocations were stopped (changed, EvalID) and that only the waiting failed."""
    targets = running(emulator, "cache")
    emulator.control.reset_requests()
    # The ID resolutions (one list each) only get a harmless delay; every later list (the wait) fails.
    emulator.control.add_fault(method="GET", path="^/v1/allocations$", count=len(targets), action="delay",
                               delay_ms=10)
    emulator.control.add_fault(method="GET", path="^/v1/allocations$", count=50, action="status", status=500,
                               body="No cluster leader")
    try:
        run = ansible_runner.adhoc("nomadops.nomad.nomad_alloc_stop",
                                   dict(id=[a["ID"] for a in targets], namespace="prod", wait=True, wait_timeout=10,
                                        retries=1))
    finally:
        emulator.control.clear_faults()
    result = run.results[-1]["result"]
    assert run.rc != 0 and "\n" not in result["msg"]
    assert result["changed"] is True
    by_id = {entry["ID"]: entry for entry in result["allocations"]}
    assert set(by_id) == {a["ID"] for a in targets}
    for entry in by_id.values():
        assert entry["changed"] is True and entry["EvalID"], entry
        assert entry["error"].startswith("stopped, but waiting for it to finish failed"), entry
    assert sorted(result["evaluation_ids"]) == sorted(entry["EvalID"] for entry in by_id.values())
    assert posts(emulator, "/stop") == {f"POST /v1/allocation/{a['ID']}/stop": 1 for a in targets}
