# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Secrets: the token and the http_auth password never appear in any output or file of a run.

ACL is on (tests/emulator/scenarios/acl.yml): the management token really authorises the calls and the
read-only token really gets 403s, so the failure paths are the real ones.  Every plugin runs at -vvvv,
succeeding and failing (bad filter, 403, unreachable), once with the secrets as task arguments and once
from NOMAD_TOKEN / NOMAD_HTTP_AUTH with ANSIBLE_DEBUG=1.  Searched: stdout, stderr, the recorded results
and every file left under the run's work directory (temp dirs, ansible home, results).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from tests.integration.observe import closed_address

from conftest import INTEGRATION_DIR, AnsibleRunner, settled

MANAGEMENT_TOKEN = "00000000-0000-4000-8000-000000000001"
READONLY_TOKEN = "00000000-0000-4000-8000-000000000002"
PASSWORD = "nomadops-secret-password-123"
HTTP_AUTH = f"ops:{PASSWORD}"


def secret_forms():
    """The secrets as they could leak: plain, and the Basic credentials they would travel as."""
    forms = {"management token": MANAGEMENT_TOKEN, "read-only token": READONLY_TOKEN, "password": PASSWORD}
    forms["basic credentials"] = base64.b64encode(HTTP_AUTH.encode()).decode()
    forms["token without dashes"] = MANAGEMENT_TOKEN.replace("-", "")
    return forms


def leaks(run, workdir: Path, ignore=()):
    """Where each secret shows up: [(secret name, place)]."""
    found = []
    places = {"stdout": run.stdout, "stderr": run.stderr, "recorded results": json.dumps(run.results)}
    for path in sorted(workdir.rglob("*")):
        if path.is_file():
            places[str(path.relative_to(workdir))] = path.read_bytes().decode("utf-8", "replace")
    for name, secret in secret_forms().items():
        if name in ignore:
            continue
        for place, text in places.items():
            if secret in text:
                found.append((name, place))
    return found


@pytest.fixture
def acl_emulator(start_emulator):
    """A settled acl.yml emulator of its own for each test (conftest's acl_emulator is shared by the module)."""
    return start_emulator("acl.yml", ready=settled)


def secrets_run(emulator, tmp_path, name, use_arguments, env, verbosity=4):
    """Run reliability_secrets.yml; the secrets reach it through an extra-vars file OUTSIDE the work dir."""
    web = sorted((a for a in emulator.allocations("*") if a["JobID"] == "web" and a["ClientStatus"] == "running"),
                 key=lambda a: a["Name"])
    variables = dict(nomad_token=MANAGEMENT_TOKEN, readonly_token=READONLY_TOKEN, nomad_http_auth=HTTP_AUTH,
                     signal_id=web[0]["ID"], restart_id=web[0]["ID"], exec_id=web[0]["ID"], stop_id=web[1]["ID"],
                     closed_address=closed_address(), use_arguments=use_arguments)
    secrets_file = tmp_path / f"{name}-secrets.yml"
    secrets_file.write_text(yaml.safe_dump(variables))
    workdir = tmp_path / name
    runner = AnsibleRunner(emulator.address, workdir)
    run = runner.playbook(INTEGRATION_DIR / "playbooks" / "reliability_secrets.yml", env=env, verbosity=verbosity,
                          args=("-e", f"@{secrets_file}"))
    return run, workdir


def assert_the_playbook_really_ran(run):
    ok = ("Info ok", "Lookup ok", "Signal ok", "Restart ok", "Exec ok", "Exec ok with the token in the handshake frame",
          "Stop ok")
    failing = ("Info bad filter", "Signal denied", "Info denied in prod", "Exec denied",
               "Exec denied in the handshake frame", "Lookup denied", "Info unreachable", "Exec unreachable",
               "Lookup unreachable")
    assert [name for name in ok if run.task(name)["_status"] not in ("ok", "changed")] == [], run.output[-3000:]
    assert [name for name in failing if run.task(name)["_status"] != "ignored"] == [], run.output[-3000:]
    assert "Permission denied" in run.task("Signal denied")["msg"]
    assert "exec-ran" in run.task("Exec ok")["stdout"]


def test_secrets_as_arguments_never_appear_at_vvvv(acl_emulator, tmp_path):
    run, workdir = secrets_run(acl_emulator, tmp_path, "arguments", use_arguments=True, env={})
    assert_the_playbook_really_ran(run)
    assert leaks(run, workdir) == []


def test_secrets_from_the_environment_never_appear_with_ansible_debug(acl_emulator, tmp_path):
    env = {"NOMAD_TOKEN": MANAGEMENT_TOKEN, "NOMAD_HTTP_AUTH": HTTP_AUTH, "ANSIBLE_DEBUG": "1"}
    run, workdir = secrets_run(acl_emulator, tmp_path, "environment", use_arguments=False, env=env)
    assert_the_playbook_really_ran(run)
    # The denied tasks pass the read-only token as a task argument, and ansible-core's own debug output
    # ("done with _execute_module (<module>, {<args>})") prints module arguments despite no_log, as its
    # documentation of DEFAULT_DEBUG warns.  What comes from the environment must still never show.
    assert leaks(run, workdir, ignore=("read-only token",)) == []


def test_password_in_the_address_userinfo_never_appears(acl_emulator, tmp_path):
    """address may carry user:password@ (Nomad's SDK reads it as HTTP basic auth, so does _options);
    `address` is not a no_log option, so the password must still not be echoed back by any runtime."""
    runner = AnsibleRunner(None, tmp_path / "userinfo")
    web_id = next(a["ID"] for a in acl_emulator.allocations("*") if a["JobID"] == "web")
    env = {"ADDR_OK": acl_emulator.address.replace("http://", f"http://{HTTP_AUTH}@"),
           "ADDR_CLOSED": closed_address().replace("http://", f"http://{HTTP_AUTH}@"),
           "NOMAD_TOKEN": MANAGEMENT_TOKEN}
    tasks = []
    for outcome, variable in (("ok", "ADDR_OK"), ("unreachable", "ADDR_CLOSED")):
        address = f"{{{{ lookup('env', '{variable}') }}}}"
        tasks += [
            {"name": f"info {outcome}",
             "nomadops.nomad.nomad_alloc_info": dict(job="web", retries=0, address=address)},
            {"name": f"lookup {outcome}", "ansible.builtin.set_fact": {
                "found": f"{{{{ lookup('nomadops.nomad.nomad_alloc', job='web', retries=0, address=lookup('env', '{variable}')) }}}}"}},
            {"name": f"exec {outcome}", "nomadops.nomad.nomad_alloc_exec": dict(id=web_id, command="true",
                                                                                address=address)},
        ]
    for task in tasks:
        task["ignore_errors"] = True
    run = runner.playbook([dict(hosts="localhost", gather_facts=False, tasks=tasks)], verbosity=4,
                          nomad_addr=False, env=env)
    assert [run.task(f"{kind} ok")["_status"] for kind in ("info", "lookup", "exec")] == ["ok", "ok", "changed"], \
        run.output[-3000:]
    assert {run.task(f"{kind} unreachable")["_status"] for kind in ("info", "lookup", "exec")} == {"ignored"}
    assert [leak for leak in leaks(run, tmp_path / "userinfo") if leak[0] in ("password", "basic credentials")] == []
