# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Bad-input table: every plugin, every kind of wrong value, in ONE playbook run.

Each entry must fail with a one-line `msg` (no newline, no Traceback, says what is wrong) and change
nothing: no POST/exec request reaches the emulator and every task process keeps its PID and signals.
"""

from __future__ import annotations

import json
import socket


INFO = "nomadops.nomad.nomad_alloc_info"
STOP = "nomadops.nomad.nomad_alloc_stop"
SIGNAL = "nomadops.nomad.nomad_alloc_signal"
RESTART = "nomadops.nomad.nomad_alloc_restart"
EXEC = "nomadops.nomad.nomad_alloc_exec"
LOOKUP = "lookup"
UNKNOWN_ID = "0123abcd-0000-4000-8000-000000000000"


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bad_inputs(web_id, files):
    """(name, plugin, arguments, a text the message must contain)."""
    unreachable = f"http://127.0.0.1:{closed_port()}"
    return [
        # --- ids and prefixes
        ("info id of one character", INFO, dict(id=["a"]), "at least two characters"),
        ("info id not hex", INFO, dict(id=["zz-top"]), "hexadecimal"),
        ("info id longer than a UUID", INFO, dict(id=["0" * 40]), "longer than an allocation ID"),
        ("info id empty string", INFO, dict(id=[""]), "at least two characters"),
        ("info id unknown", INFO, dict(id=[UNKNOWN_ID]), "No allocation(s) with prefix or id"),
        ("info prefix not hex", INFO, dict(prefix="xyz"), "hexadecimal"),
        ("info prefix one character", INFO, dict(prefix="a"), "at least two characters"),
        # --- filters, statuses, namespaces, regions
        ("info filter syntax error", INFO, dict(filter="JobID =="), "filter"),
        ("info filter unbalanced quote", INFO, dict(filter='JobID == "web'), "filter"),
        ("info client_status unknown", INFO, dict(client_status=["sleeping"]), "client_status"),
        ("info region unknown", INFO, dict(region="mars", job="web"), "No path to region"),
        # --- list options and waits
        ("info per_page negative", INFO, dict(job="web", per_page=-5), "per_page"),
        ("info per_page not a number", INFO, dict(job="web", per_page="many"), "per_page"),
        ("info limit negative", INFO, dict(job="web", limit=-1), "limit"),
        ("info wait_for unknown", INFO, dict(job="web", wait_for="happy"), "wait_for"),
        ("info wait_timeout negative", INFO, dict(job="web", wait_for="running", wait_timeout=-1), "wait_timeout"),
        # --- connection: timeouts, retries, addresses, tokens
        ("info timeout zero", INFO, dict(job="web", timeout=0), "timeout"),
        ("info timeout negative", INFO, dict(job="web", timeout=-3), "timeout"),
        ("info timeout not a number", INFO, dict(job="web", timeout="soon"), "timeout"),
        ("info retries negative", INFO, dict(job="web", retries=-1), "retries"),
        ("info address scheme ftp", INFO, dict(job="web", address="ftp://127.0.0.1:4646"), "http://"),
        ("info address without host", INFO, dict(job="web", address="http://"), "host"),
        ("info address port out of range", INFO, dict(job="web", address="http://127.0.0.1:99999"), "address"),
        ("info address unreachable", INFO, dict(job="web", address=unreachable, retries=0), "connection refused"),
        ("info address unix socket", INFO, dict(job="web", address="unix:///var/run/nomad.sock"), "unix"),
        ("info token with a newline", INFO, dict(job="web", token="abc\ndef-secret-token"), "token"),
        # --- TLS files
        ("info ca_cert missing file", INFO, dict(job="web", ca_cert="/nonexistent/ca.pem"), "ca_cert"),
        ("info ca_cert not PEM", INFO, dict(job="web", address="https://127.0.0.1:1", ca_cert=files["garbage"]),
         "ca_cert"),
        ("info ca_path is a file", INFO, dict(job="web", ca_path=files["garbage"]), "ca_path"),
        ("info ca_path empty directory", INFO,
         dict(job="web", address="https://127.0.0.1:1", ca_path=files["empty_dir"]), "ca_path"),
        ("info client_key without client_cert", INFO, dict(job="web", client_key=files["garbage"]), "client_cert"),
        ("info client_cert missing file", INFO,
         dict(job="web", client_cert="/nonexistent/c.pem", client_key=files["garbage"]), "client_cert"),
        ("info client_cert not PEM", INFO,
         dict(job="web", address="https://127.0.0.1:1", client_cert=files["garbage"], client_key=files["garbage"]),
         "client_cert"),
        ("info validate_certs not a bool", INFO, dict(job="web", validate_certs="perhaps"), "validate_certs"),
        # --- stop
        ("stop without selector", STOP, dict(), "refusing to act on every allocation"),
        ("stop parallelism zero", STOP, dict(job="web", parallelism=0), "parallelism"),
        ("stop wait_timeout negative", STOP, dict(job="web", wait=True, wait_timeout=-1), "wait_timeout"),
        ("stop id not hex", STOP, dict(id=["web-1"]), "hexadecimal"),
        ("stop id unknown", STOP, dict(id=[UNKNOWN_ID]), "No allocation(s) with prefix or id"),
        ("stop known and unknown id", STOP, dict(id=[web_id, UNKNOWN_ID]), "No allocation(s) with prefix or id"),
        ("stop filter syntax error", STOP, dict(filter="ClientStatus = running"), "filter"),
        ("stop empty job string", STOP, dict(job="  "), "refusing to act on every allocation"),
        # --- signal
        ("signal unknown name", SIGNAL, dict(job="web", signal="SIGBOGUS"), "signal"),
        ("signal empty", SIGNAL, dict(job="web", signal=""), "signal"),
        ("signal with shell text", SIGNAL, dict(job="web", signal="HUP; kill -9 1"), "signal"),
        ("signal number out of range", SIGNAL, dict(job="web", signal="999"), "signal"),
        ("signal unknown task", SIGNAL, dict(job="web", signal="SIGHUP", task="nope"), "nope"),
        ("signal without selector", SIGNAL, dict(signal="SIGHUP"), "refusing to act on every allocation"),
        # --- restart
        ("restart task and all_tasks", RESTART, dict(job="web", task="server", all_tasks=True), "all_tasks"),
        ("restart unknown task", RESTART, dict(job="web", task="nope"), "nope"),
        ("restart without selector", RESTART, dict(), "refusing to act on every allocation"),
        ("restart parallelism negative", RESTART, dict(job="web", parallelism=-1), "parallelism"),
        # --- exec
        ("exec neither command nor argv", EXEC, dict(id=web_id, task="server"), "command"),
        ("exec command and argv", EXEC, dict(id=web_id, task="server", command="true", argv=["true"]), "command"),
        ("exec empty command", EXEC, dict(id=web_id, task="server", command="   "), "command"),
        ("exec unbalanced quote", EXEC, dict(id=web_id, task="server", command='echo "oops'), "command"),
        ("exec empty argv", EXEC, dict(id=web_id, task="server", argv=[]), "argv"),
        ("exec unknown task", EXEC, dict(id=web_id, task="nope", command="true"), "nope"),
        ("exec two tasks, none named", EXEC, dict(id=web_id, command="true"), "task"),
        ("exec id too short", EXEC, dict(id="a", task="server", command="true"), "at least two characters"),
        ("exec id unknown", EXEC, dict(id=UNKNOWN_ID, task="server", command="true"), "No allocation"),
        ("exec timeout zero", EXEC, dict(id=web_id, task="server", command="true", timeout=0), "timeout"),
        ("exec tty_size zero", EXEC, dict(id=web_id, task="server", command="true", tty=True,
                                          tty_size=dict(height=0, width=80)), "tty_size"),
        ("exec tty_size without width", EXEC, dict(id=web_id, task="server", command="true", tty=True,
                                                   tty_size=dict(height=24)), "width"),
        ("exec output_encoding unknown", EXEC, dict(id=web_id, task="server", command="true",
                                                    output_encoding="hex"), "output_encoding"),
        ("exec address scheme", EXEC, dict(id=web_id, task="server", command="true", address="ws://x:1"), "http"),
        # --- lookup
        ("lookup term of one character", LOOKUP, dict(_terms=["a"]), "at least two characters"),
        ("lookup per_page not a number", LOOKUP, dict(job="web", per_page="many"), "per_page"),
        ("lookup filter syntax error", LOOKUP, dict(filter="JobID =="), "filter"),
        ("lookup client_status unknown", LOOKUP, dict(client_status=["sleeping"]), "client_status"),
        ("lookup timeout negative", LOOKUP, dict(job="web", timeout=-1), "timeout"),
        ("lookup address unreachable", LOOKUP, dict(job="web", address=unreachable, retries=0),
         "connection refused"),
    ]


def as_task(name, plugin, args):
    if plugin == LOOKUP:
        terms = args.pop("_terms", [])
        # The arguments travel as a variable: the template itself stays free of quoting problems.
        call = "{{ lookup('nomadops.nomad.nomad_alloc', *lookup_terms, **lookup_args) }}"
        return {"name": name, "ansible.builtin.set_fact": {"found": call},
                "vars": {"lookup_terms": terms, "lookup_args": args}, "ignore_errors": True}
    return {"name": name, plugin: args, "ignore_errors": True}


def process_state(emulator):
    """PID and delivered signals of every task of every allocation."""
    return {alloc["ID"]: {name: (task["pid"], tuple(task["signals"]), task["restarts"])
                          for name, task in emulator.control.tasks(alloc["ID"]).items()}
            for alloc in emulator.allocations("*")}


def test_every_bad_input_fails_with_one_line_and_changes_nothing(emulator, ansible_runner, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    empty_dir = tmp_path / "empty-ca-dir"
    empty_dir.mkdir()
    web_id = next(a["ID"] for a in emulator.allocations("*") if a["JobID"] == "web" and a["ClientStatus"] == "running")
    table = bad_inputs(web_id, {"garbage": str(garbage), "empty_dir": str(empty_dir)})
    assert len(table) >= 40 and len({entry[0] for entry in table}) == len(table)
    before = process_state(emulator)
    emulator.control.reset_requests()

    run = ansible_runner.playbook([dict(hosts="localhost", gather_facts=False,
                                        tasks=[as_task(name, plugin, dict(args)) for name, plugin, args, _text in table])])

    problems = []
    for name, _plugin, _args, expected in table:
        result = run.task(name)
        message = result.get("msg")
        if result["_status"] != "ignored":
            problems.append(f"{name}: did not fail ({result['_status']})")
        elif not isinstance(message, str) or not message.strip():
            problems.append(f"{name}: no msg: {result}")
        elif "\n" in message or "Traceback" in message:
            problems.append(f"{name}: message is not one line: {message!r}")
        elif expected.lower() not in message.lower():
            problems.append(f"{name}: message does not mention {expected!r}: {message!r}")
        if "secret-token" in json.dumps(result):
            problems.append(f"{name}: a secret is in the result")
    assert not problems, f"{len(problems)} of {len(table)} bad inputs misbehave:\n" + "\n".join(problems)

    counts = emulator.control.requests()
    acted = {key: count for key, count in counts.items() if not key.startswith("GET ") or key.endswith("/exec")}
    assert acted == {}, acted
    assert process_state(emulator) == before


def test_a_token_or_password_outside_latin1_fails_with_one_line_not_a_traceback(emulator, ansible_runner):
    """HTTP header values are latin-1: a token or http_auth password with other characters (a pasted
    Cyrillic or emoji text) cannot be sent and must be refused with a one-line message, in every runtime."""
    web_id = next(a["ID"] for a in emulator.allocations("*") if a["JobID"] == "web" and a["ClientStatus"] == "running")
    token = "токен-не-латиница"
    password = "user:пароль-🙂"
    table = [
        ("info token", INFO, dict(job="web", token=token)),
        ("info http_auth", INFO, dict(job="web", http_auth=password)),
        ("signal token", SIGNAL, dict(id=[web_id], signal="SIGHUP", token=token)),
        ("exec token", EXEC, dict(id=web_id, task="server", command="true", token=token)),
        ("lookup token", LOOKUP, dict(job="web", token=token)),
    ]
    emulator.control.reset_requests()
    run = ansible_runner.playbook([dict(hosts="localhost", gather_facts=False,
                                        tasks=[as_task(name, plugin, dict(args)) for name, plugin, args in table])])
    problems = []
    for name, _plugin, _args in table:
        result = run.task(name)
        message = str(result.get("msg", ""))
        crashed = any(text in message for text in ("\n", "MODULE FAILURE", "Traceback", "codec can't"))
        names_the_option = "token" in message or "http_auth" in message
        if result["_status"] != "ignored" or crashed or not names_the_option:
            problems.append(f"{name}: {result['_status']}: {message[:300]!r}")
        if token in json.dumps(result, ensure_ascii=False) or "пароль" in json.dumps(result, ensure_ascii=False):
            problems.append(f"{name}: the secret is in the result")
    assert not problems, "\n".join(problems)
    assert not [key for key in emulator.control.requests() if not key.startswith("GET ")]
