# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomadops.nomad.nomad_alloc_exec against the emulator: real ansible runs, real processes in the tasks."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import trustme

EXEC = "nomadops.nomad.nomad_alloc_exec"
ACL_EXEC_TOKEN = "00000000-0000-4000-8000-000000000004"
ACL_READ_ONLY_TOKEN = "00000000-0000-4000-8000-000000000002"


# ------------------------------------------------------------------------------------------- helpers
def allocations_of(emulator, job, namespace="*"):
    found = [stub for stub in emulator.allocations(namespace) if stub["JobID"] == job]
    assert found, f"scenario has no allocation of job {job}"
    return sorted(found, key=lambda stub: stub["ID"])


def running_allocation(emulator, job):
    return next(stub for stub in allocations_of(emulator, job) if stub["ClientStatus"] == "running")


def play(*tasks, **keywords):
    return [dict({"name": "exec", "hosts": "localhost", "gather_facts": False}, **keywords, tasks=list(tasks))]


def exec_task(name, register=None, **arguments):
    task = {"name": name, EXEC: arguments}
    if register:
        task["register"] = register
    return task


def assert_one_line_failure(result, message_start):
    assert result["_status"] in ("failed", "ignored"), result
    assert "\n" not in result["msg"], result["msg"]
    assert result["msg"].startswith(message_start), result["msg"]


@pytest.fixture(scope="module")
def web(integration_emulator):
    """A running allocation of job web (tasks server and sidecar)."""
    return running_allocation(integration_emulator, "web")


# ------------------------------------------------------------------------------------------- output and exit codes
def test_stdout_and_stderr_are_separate_and_rc_zero_is_ok(ansible_runner, web):
    run = ansible_runner.playbook(play(exec_task(
        "both streams", id=web["ID"][:8], task="server",
        argv=["/bin/sh", "-c", "echo out; echo err >&2; echo more; echo $NOMAD_TASK_NAME"],
    ))).assert_ok()
    result = run.task("both streams")
    assert result["_status"] == "changed"
    assert result["rc"] == 0
    assert result["stdout"] == "out\nmore\nserver"
    assert result["stdout_lines"] == ["out", "more", "server"]
    assert result["stderr"] == "err" and result["stderr_lines"] == ["err"]
    assert result["allocation_id"] == web["ID"] and result["task"] == "server"
    assert result["cmd"] == ["/bin/sh", "-c", "echo out; echo err >&2; echo more; echo $NOMAD_TASK_NAME"]


def test_non_zero_rc_fails_like_command_and_failed_when_accepts_it(ansible_runner, web):
    run = ansible_runner.playbook(play(
        exec_task("rc 42 accepted", register="accepted", id=web["ID"], task="server",
                  command="sh -c 'echo partial; exit 42'") | {"failed_when": "accepted.rc != 42"},
        exec_task("rc 1 fails", id=web["ID"], task="server", command="false") | {"ignore_errors": True},
        exec_task("rc 42 fails", id=web["ID"], task="server", command="sh -c 'echo partial; exit 42'"),
    ))
    assert run.rc == 2, run.output
    accepted = run.task("rc 42 accepted")
    assert accepted["_status"] == "changed" and accepted["rc"] == 42 and accepted["stdout"] == "partial"
    rc_one = run.task("rc 1 fails")
    assert rc_one["_status"] == "ignored" and rc_one["rc"] == 1 and rc_one["msg"] == "non-zero return code"
    failed = run.task("rc 42 fails")
    assert failed["_status"] == "failed" and failed["msg"] == "non-zero return code"
    assert failed["rc"] == 42 and failed["stdout"] == "partial"


def test_stdin_is_delivered_and_closed(ansible_runner, web):
    run = ansible_runner.playbook(play(
        exec_task("cat", id=web["ID"], task="server", command="cat", stdin="hello\nworld"),
        exec_task("wc without newline", id=web["ID"], task="server", command="wc -c",
                  stdin="abc", stdin_add_newline=False),
        exec_task("wc with newline", id=web["ID"], task="server", command="wc -c", stdin="abc"),
        exec_task("cat without stdin", id=web["ID"], task="server", command="cat", command_timeout=30),
        exec_task("keep trailing newlines", id=web["ID"], task="server", command="cat",
                  stdin="x\n\n", strip_empty_ends=False),
    )).assert_ok()
    assert run.task("cat")["stdout_lines"] == ["hello", "world"]
    assert run.task("wc without newline")["stdout"].strip() == "3"
    assert run.task("wc with newline")["stdout"].strip() == "4"
    assert run.task("cat without stdin")["stdout"] == ""
    assert run.task("keep trailing newlines")["stdout"] == "x\n\n\n"


def test_64_mib_of_random_bytes_arrive_byte_exact_in_base64(ansible_runner, integration_emulator, web):
    run = ansible_runner.playbook(play(exec_task(
        "random blob", id=web["ID"], task="server", output_encoding="base64", command_timeout=600,
        argv=["/bin/sh", "-c", "head -c 67108864 /dev/urandom | tee \"$NOMAD_TASK_DIR/blob\""],
    ))).assert_ok()
    result = run.task("random blob")
    assert result["stdout_lines"] == [] and result["stderr"] == ""
    received = base64.b64decode(result["stdout"], validate=True)
    task_dir = Path(integration_emulator.control.tasks(web["ID"])["server"]["task_dir"])
    on_disk = (task_dir / "blob").read_bytes()
    assert len(received) == 67108864
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(on_disk).hexdigest()


def test_binary_stdin_round_trip_and_invalid_utf8_in_text_mode(ansible_runner, web):
    run = ansible_runner.playbook(play(
        exec_task("invalid utf-8", id=web["ID"], task="server", argv=["printf", "ok \\377\\n"]),
        exec_task("unicode stdin", id=web["ID"], task="server", command="cat", stdin="grüße ✓",
                  output_encoding="base64"),
    )).assert_ok()
    assert run.task("invalid utf-8")["stdout"] == "ok \ufffd"
    assert base64.b64decode(run.task("unicode stdin")["stdout"]) == "grüße ✓\n".encode()


# ------------------------------------------------------------------------------------------- tty, handshake, timeout
def test_tty_gets_the_requested_size(ansible_runner, web):
    run = ansible_runner.playbook(play(
        exec_task("stty", id=web["ID"], task="server", command="stty size", tty=True,
                  tty_size={"height": 33, "width": 97}),
        exec_task("tty merges stderr", id=web["ID"], task="server", tty=True,
                  argv=["/bin/sh", "-c", "test -t 0 && echo is-a-tty; echo err >&2"]),
    )).assert_ok()
    assert run.task("stty")["stdout"] == "33 97"
    merged = run.task("tty merges stderr")
    assert merged["stdout_lines"] == ["is-a-tty", "err"] and merged["stderr"] == ""


def test_a_session_longer_than_the_heartbeat_interval(ansible_runner, web):
    # The action sends {} every 10 s; the server must take it as a heartbeat, not as a bad frame.
    run = ansible_runner.playbook(play(exec_task(
        "quiet for 11 s", id=web["ID"], task="server", argv=["/bin/sh", "-c", "sleep 11; echo done"], command_timeout=60,
    ))).assert_ok()
    assert run.task("quiet for 11 s")["stdout"] == "done"


def test_a_command_that_never_ends_hits_the_timeout(ansible_runner, web):
    marker = f"exec-timeout-marker-{os.getpid()}"
    run = ansible_runner.playbook(play(exec_task(
        "sleeps", id=web["ID"], task="server", command_timeout=2,
        argv=["/bin/sh", "-c", f"echo started; sleep 120; echo {marker}"],
    )))
    assert run.rc == 2
    result = run.task("sleeps")
    assert result["_status"] == "failed"
    assert result["msg"] == "command did not finish within 2 s (raise command_timeout)"
    assert result["stdout"] == "started" and "rc" not in result  # the output so far helps to see where it hung
    # Dropping the session ends the command (the emulator kills it as Nomad does).
    deadline = time.monotonic() + 15
    while subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode == 0:
        assert time.monotonic() < deadline, "the timed-out command is still running"
        time.sleep(0.2)


def test_server_closing_before_the_exit_frame_is_an_error(ansible_runner, integration_emulator, web):
    integration_emulator.control.add_fault(method="GET", path="/exec$", count=1, action="exec_close_early")
    try:
        run = ansible_runner.playbook(play(exec_task(
            "cut off", id=web["ID"], task="server", argv=["/bin/sh", "-c", "echo first; sleep 5; echo never"],
        )))
    finally:
        integration_emulator.control.clear_faults()
    result = run.task("cut off")
    assert result["_status"] == "failed"
    # Nomad 1.8+ ends such a session without a close frame (row 8 of the 1.6-to-1.11 changes reference); the
    # 1.6.5 answer (close 1011 with the stream error) is checked in test_nomad_versions.py.
    assert result["msg"] == (
        "exec session closed before the command exited (connection dropped without a close frame)"
    )
    assert result["stdout"] == "first" and "rc" not in result


# ------------------------------------------------------------------------------------------- concurrency
def test_twenty_concurrent_sessions_lose_nothing(ansible_runner, integration_emulator, tmp_path):
    allocations = allocations_of(integration_emulator, "web")
    hosts = [f"exec{index:02d}" for index in range(20)]
    inventory = tmp_path / "hosts.ini"
    lines = ["[all:vars]", "ansible_connection=local", "ansible_python_interpreter={{ ansible_playbook_python }}",
             "[all]"]
    for index, host in enumerate(hosts):
        lines.append(f"{host} alloc_id={allocations[index % len(allocations)]['ID']} task=server")
    inventory.write_text("\n".join(lines) + "\n")
    integration_emulator.control.reset_requests()

    run = ansible_runner.playbook("exec_concurrent.yml", args=("-i", str(inventory), "--forks", "20")).assert_ok()

    results = {entry["host"]: entry for entry in run.results if entry["task"] == "Echo stdin back"}
    assert sorted(results) == hosts
    for index, host in enumerate(hosts):
        result = results[host]["result"]
        assert results[host]["status"] == "changed"
        assert result["stdout"] == f"{host}:" * 60000, f"{host}: stdout differs ({len(result['stdout'])} chars)"
        assert result["stderr"] == allocations[index % len(allocations)]["ID"]
    counts = integration_emulator.control.requests()
    exec_requests = sum(count for key, count in counts.items() if key.endswith("/exec"))
    assert exec_requests == 20


# ------------------------------------------------------------------------------------------- options from the play
def test_module_defaults_group_and_task_default(ansible_runner, integration_emulator):
    cache = running_allocation(integration_emulator, "cache")
    run = ansible_runner.playbook(play(
        exec_task("from defaults", id=cache["ID"][:6], argv=["/bin/sh", "-c", "echo $NOMAD_TASK_NAME $NOMAD_NAMESPACE"]),
        module_defaults={"group/nomadops.nomad.nomad": {"address": integration_emulator.address, "namespace": "prod"}},
    ), nomad_addr=False).assert_ok()
    result = run.task("from defaults")
    assert result["stdout"] == "redis prod"
    assert result["task"] == "redis" and result["allocation_id"] == cache["ID"]


def test_ansible_variables_set_the_connection(ansible_runner, integration_emulator):
    cache = running_allocation(integration_emulator, "cache")
    run = ansible_runner.playbook(play(
        exec_task("from variables", id=cache["ID"][:8], command="printenv NOMAD_NAMESPACE"),
        vars={"ansible_nomad_address": integration_emulator.address, "ansible_nomad_namespace": "*"},
    ), nomad_addr=False).assert_ok()
    assert run.task("from variables")["stdout"] == "prod"


def test_ansible_cfg_section_sets_the_connection_above_the_environment(ansible_runner, integration_emulator,
                                                                       tmp_path):
    cache = running_allocation(integration_emulator, "cache")
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[nomadops_nomad]\naddress = {integration_emulator.address}\nnamespace = prod\n")
    run = ansible_runner.playbook(play(exec_task("from ansible.cfg", id=cache["ID"][:8], command="true")),
                                  env={"ANSIBLE_CONFIG": str(config), "NOMAD_NAMESPACE": "default",
                                       "NOMAD_ADDR": "http://127.0.0.1:1"}).assert_ok()
    assert run.task("from ansible.cfg")["allocation_id"] == cache["ID"]


def test_check_mode_skips_and_runs_nothing(ansible_runner, integration_emulator, web):
    marker = "check-mode-ran"
    run = ansible_runner.playbook(play(exec_task(
        "would touch", id=web["ID"], task="server", argv=["touch", marker],
    )), check=True).assert_ok()
    result = run.task("would touch")
    assert result["_status"] == "skipped"
    assert "does not support check mode" in result["msg"]
    task_dir = Path(integration_emulator.control.tasks(web["ID"])["server"]["task_dir"])
    assert not (task_dir / marker).exists()


# ------------------------------------------------------------------------------------------- bad inputs
def test_bad_inputs_fail_with_one_line_messages(ansible_runner, integration_emulator, web):
    report = allocations_of(integration_emulator, "report")[0]
    api = allocations_of(integration_emulator, "api")[0]
    run = ansible_runner.playbook("exec_bad_inputs.yml", extra_vars={
        "web_id": web["ID"], "report_id": report["ID"], "api_id": api["ID"],
    }).assert_ok()
    short = web["ID"][:8]
    expected = {
        "unknown allocation": 'No allocation(s) with prefix or id "ffff0000" found',
        "id too short": 'id "f" must contain at least two characters',
        "several tasks and none chosen": f"allocation {short} has several tasks (server, sidecar); set task to one",
        "unknown task": f"allocation {short} has no task named 'nginx'; its tasks are: server, sidecar",
        "dead task of a finished batch allocation": f"task 'generate' of allocation {report['ID'][:8]} is not running",
        "finished prestart task": f"task 'migrate' of allocation {api['ID'][:8]} is not running",
        "empty command": "command must not be empty",
        "empty argv": "argv must not be empty",
        "a list as command": "command is one string, split into words like a shell would split it; give a list of "
                             "words as argv instead (argv: [ls, -l])",
        "command and argv": "parameters are mutually exclusive: command|argv",
        "neither command nor argv": "one of the following is required: command, argv",
        "unbalanced quote": "cannot split command into words: No closing quotation",
        "tty_size without tty": "tty_size needs tty=true",
        "zero tty height": "tty_size height and width must be positive integers (got 0x10)",
        "negative command_timeout": "command_timeout must be a positive number of seconds (got -1)",
        "unknown option": f"Unsupported parameters for ({EXEC}) module: shell",
        "bad output encoding": "value of output_encoding must be one of: text, base64, got: hex",
        "program that does not exist": (
            'exec session closed before the command exited (close code 1011: exec: "no-such-program-here": '
            "executable file not found in $PATH)"
        ),
        "nothing listens at the address": "cannot reach Nomad at http://127.0.0.1:1: connection refused",
    }
    for name, message_start in expected.items():
        assert_one_line_failure(run.task(name[0].upper() + name[1:]), message_start)


def test_ambiguous_short_id_lists_the_matches(ansible_runner, start_emulator):
    emulator = start_emulator("integration.yml", virtual=400)
    by_prefix = {}
    for stub in emulator.allocations():
        by_prefix.setdefault(stub["ID"][:2], []).append(stub["ID"])
    prefix = next(prefix for prefix, ids in sorted(by_prefix.items()) if len(ids) > 1)
    run = ansible_runner.playbook(play(exec_task("ambiguous", id=prefix, namespace="*", command="true")),
                                  env={"NOMAD_ADDR": emulator.address})
    result = run.task("ambiguous")
    assert_one_line_failure(result, f'Prefix "{prefix}" matched {len(by_prefix[prefix])} allocations at '
                                    f'{emulator.address}: ')


# ------------------------------------------------------------------------------------------- ACL and secrets
def test_tokens_header_handshake_and_missing_capability(ansible_runner, acl_emulator):
    web_id = running_allocation(acl_emulator, "web")["ID"]
    run = ansible_runner.playbook(play(
        exec_task("token in header", id=web_id, command="echo header"),
        exec_task("token in handshake", id=web_id, command="echo handshake", ws_handshake=True),
        exec_task("read-only token", id=web_id, command="true", token="{{ read_only }}") | {"ignore_errors": True},
        exec_task("read-only token in handshake", id=web_id, command="true", token="{{ read_only }}",
                  ws_handshake=True) | {"ignore_errors": True},
        exec_task("no token", id=web_id, command="true", token="") | {"ignore_errors": True},
        # Ansible prints a failed task's source lines, so the secret comes from a variable, as it would in real use.
        vars={"read_only": ACL_READ_ONLY_TOKEN},
    ), env={"NOMAD_ADDR": acl_emulator.address, "NOMAD_TOKEN": ACL_EXEC_TOKEN}, verbosity=4).assert_ok()
    assert run.task("token in header")["stdout"] == "header"
    assert run.task("token in handshake")["stdout"] == "handshake"
    for name in ("read-only token", "read-only token in handshake"):
        assert_one_line_failure(
            run.task(name), "exec session closed before the command exited (close code 1011: Permission denied; "
        )
    assert_one_line_failure(run.task("no token"), "GET /v1/allocations failed: 403 Permission denied")
    for secret in (ACL_EXEC_TOKEN, ACL_READ_ONLY_TOKEN):
        assert secret not in run.output
        assert secret not in json.dumps(run.results)


# ------------------------------------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    directory = tmp_path_factory.mktemp("exec-tls")
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost", "nomad.example")
    client = authority.issue_cert("client.nomad.example")
    files = {
        "ca": directory / "ca.pem",
        "server_cert": directory / "server.pem",
        "server_key": directory / "server-key.pem",
        "client_cert": directory / "client.pem",
        "client_key": directory / "client-key.pem",
    }
    authority.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["server_cert"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    return {name: str(path) for name, path in files.items()}


def test_exec_over_mutual_tls(ansible_runner, start_emulator, tls_material):
    emulator = start_emulator(
        "integration.yml", tls_cert=tls_material["server_cert"], tls_key=tls_material["server_key"],
        tls_ca=tls_material["ca"], require_client_cert=True,
        client_cert=(tls_material["client_cert"], tls_material["client_key"]),
    )
    web_id = running_allocation(emulator, "web")["ID"]
    tls = {"ca_cert": tls_material["ca"], "client_cert": tls_material["client_cert"],
           "client_key": tls_material["client_key"]}
    run = ansible_runner.playbook(play(
        exec_task("over wss", id=web_id, task="server", command="echo secure", **tls),
        exec_task("server name", id=web_id, task="server", command="echo named",
                  tls_server_name="nomad.example", **tls),
        exec_task("no verification", id=web_id, task="server", command="echo unverified", validate_certs=False,
                  client_cert=tls_material["client_cert"], client_key=tls_material["client_key"]),
        exec_task("unknown CA", id=web_id, task="server", command="true") | {"ignore_errors": True},
    ), env={"NOMAD_ADDR": emulator.address}).assert_ok()
    assert run.task("over wss")["stdout"] == "secure"
    assert run.task("server name")["stdout"] == "named"
    assert run.task("no verification")["stdout"] == "unverified"
    failure = run.task("unknown CA")
    assert_one_line_failure(failure, f"TLS verification failed for {emulator.address}")
