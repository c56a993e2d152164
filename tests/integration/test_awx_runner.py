# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The AWX job template playbook, run by ansible-runner from a private data directory shaped as AWX builds it.

What AWX does for a job, and what this test does likewise (AWX's awx/main/tasks/jobs.py and
CredentialType.inject_credential):
- the credential type's injectors are rendered with a sandboxed Jinja environment: the namespace holds the
  inputs that were filled in (empty strings are left out, so they render empty), booleans as given (False
  when missing), and ``tower.filename.<name>`` for each ``file`` injector, whose rendered text AWX writes
  to a file of mode 0600 under ``<private data dir>/env``; the ``env`` injectors become the job's
  environment, which runner reads from ``env/envvars``. Here they are rendered from
  extensions/awx/nomad_credential_type.yml itself.
- survey answers and AWX's own variables go to ``env/extravars``; the playbook is in ``project/``.
- the inventory comes from an inventory sync: ``ansible-inventory --list --export`` with the inventory
  source (here ``nomadops.nomad.nomad_allocs``) and the same credential injected; AWX stores the hosts and
  writes the job's inventory as ``inventory/hosts``, an executable script that prints that JSON.
- runner does not write the environment into its artifacts (AWX sets ``suppress_env_files``;
  ``--omit-env-files`` here), and the job runs at verbosity 3 so that task invocations are in the events.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import types
from pathlib import Path

import jinja2.sandbox
import pytest
import yaml

from conftest import REPO_ROOT, SCENARIOS, VENV_BIN, collections_path

AWX_DIR = REPO_ROOT / "extensions" / "awx"
CREDENTIAL_TYPE = AWX_DIR / "nomad_credential_type.yml"
JOB_TEMPLATE_PLAYBOOK = AWX_DIR / "job_template_playbook.yml"
ACL_SCENARIO = SCENARIOS / "acl.yml"
JOB = "web"
RUNNER_TIMEOUT_SECONDS = 300


def scenario_token(name: str) -> str:
    scenario = yaml.safe_load(ACL_SCENARIO.read_text(encoding="utf-8"))
    return next(str(token["secret"]) for token in scenario["tokens"] if token["name"] == name)


OPERATOR_TOKEN = scenario_token("operator")  # read-job and alloc-lifecycle in the default namespace


# --- what AWX builds -------------------------------------------------------------------------------


def injector_namespace(credential_type: dict, inputs: dict) -> dict:
    """The template namespace AWX renders injectors with (file paths are added by write_file_injectors)."""
    namespace: dict = {"tower": types.SimpleNamespace()}
    for field in credential_type["inputs"]["fields"]:
        value = inputs.get(field["id"])
        if field["type"] == "boolean":
            namespace[field["id"]] = bool(value)
        elif value:
            namespace[field["id"]] = value
    return namespace


def write_file_injectors(credential_type: dict, namespace: dict, env_dir: Path, sandbox) -> None:
    """Render each `file` injector into a mode 0600 file under env/ and publish its path as tower.filename."""
    filenames = types.SimpleNamespace()
    for label, template in credential_type["injectors"].get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." in label:
            setattr(filenames, label.split(".", 1)[1], path)
        else:
            namespace["tower"].filename = path
    if vars(filenames):
        namespace["tower"].filename = filenames


def injected_environment(inputs: dict, env_dir: Path) -> dict:
    """The environment a credential of extensions/awx/nomad_credential_type.yml with these inputs injects."""
    credential_type = yaml.safe_load(CREDENTIAL_TYPE.read_text(encoding="utf-8"))
    sandbox = jinja2.sandbox.ImmutableSandboxedEnvironment()
    namespace = injector_namespace(credential_type, inputs)
    write_file_injectors(credential_type, namespace, env_dir, sandbox)
    return {name: sandbox.from_string(template).render(**namespace)
            for name, template in credential_type["injectors"]["env"].items()}


def ansible_environment(workdir: Path) -> dict:
    """The ANSIBLE_* settings of the job: where the execution environment has the collection, and temp dirs."""
    return {
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }


def outer_environment() -> dict:
    """The environment runner itself starts in: this venv's tools first, no NOMAD_* or ANSIBLE_* of ours."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("NOMAD_", "ANSIBLE_"))}
    environment["PATH"] = f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def static_localhost_inventory() -> dict:
    """An inventory of the shape AWX stores, with localhost only (proves the runner part on its own)."""
    return {"all": {"children": ["ungrouped"]}, "ungrouped": {"hosts": ["localhost"]},
            "_meta": {"hostvars": {"localhost": {"ansible_connection": "local"}}}}


# What AWX sets for every inventory update: a source that does not parse fails the sync.
INVENTORY_UPDATE_ENV = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_EXPORT": "True",
                        "ANSIBLE_VERBOSE_TO_STDERR": "True"}


def synced_nomad_allocs_inventory(credential_env: dict, workdir: Path) -> dict:
    """An inventory sync of a nomadops.nomad.nomad_allocs source, as AWX runs it (credential injected)."""
    source_dir = workdir / "inventory-source"
    source_dir.mkdir()
    source = source_dir / "nomad_allocs.yml"
    source.write_text(yaml.safe_dump({"plugin": "nomadops.nomad.nomad_allocs", "job": JOB}), encoding="utf-8")
    environment = dict(outer_environment(), **ansible_environment(workdir), **INVENTORY_UPDATE_ENV, **credential_env)
    completed = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list", "--export"],
        cwd=source_dir, env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, (
        "inventory sync with nomadops.nomad.nomad_allocs failed (plugins/inventory/nomad_allocs.py):\n"
        f"{completed.stdout}{completed.stderr}")
    assert OPERATOR_TOKEN not in completed.stdout + completed.stderr, "the token leaked into the inventory sync"
    return json.loads(completed.stdout)


INVENTORIES = {"static-localhost": lambda credential_env, workdir: static_localhost_inventory(),
               "nomad_allocs-sync": synced_nomad_allocs_inventory}


def write_inventory_script(inventory: dict, inventory_dir: Path) -> None:
    """inventory/hosts: an executable script that prints the stored inventory, as AWX writes it."""
    script = inventory_dir / "hosts"
    script.write_text(f"#!/usr/bin/env python3\nprint({json.dumps(inventory)!r})\n", encoding="utf-8")
    os.chmod(script, stat.S_IRUSR | stat.S_IWUSR | stat.S_IXUSR)


def private_data_dir(workdir: Path, credential_env: dict, inventory: dict) -> Path:
    """env/envvars, env/extravars, inventory/hosts and project/ as AWX prepares them for runner."""
    root = workdir / "private_data_dir"
    (root / "env").mkdir(parents=True, exist_ok=True)
    (root / "inventory").mkdir()
    (root / "project").mkdir()
    envvars = dict(ansible_environment(workdir), **credential_env)
    (root / "env" / "envvars").write_text(yaml.safe_dump(envvars), encoding="utf-8")
    extravars = {"nomad_job": JOB, "nomad_signal": "SIGHUP", "awx_job_id": 42, "awx_job_template_name": "nomad signal",
                 "tower_job_id": 42}
    (root / "env" / "extravars").write_text(yaml.safe_dump(extravars), encoding="utf-8")
    write_inventory_script(inventory, root / "inventory")
    shutil.copy2(JOB_TEMPLATE_PLAYBOOK, root / "project" / JOB_TEMPLATE_PLAYBOOK.name)
    return root


def run_job(root: Path) -> subprocess.CompletedProcess:
    command = [str(VENV_BIN / "ansible-runner"), "run", str(root), "--playbook", JOB_TEMPLATE_PLAYBOOK.name,
               "--ident", "42", "--omit-env-files", "-vvv"]
    return subprocess.run(command, env=outer_environment(), capture_output=True, text=True,
                          timeout=RUNNER_TIMEOUT_SECONDS, check=False)


def artifact_texts(root: Path) -> dict:
    """Every file runner wrote under artifacts/ (job events, stdout, status, rc, ...), by relative path."""
    return {str(path.relative_to(root)): path.read_text(encoding="utf-8", errors="replace")
            for path in sorted((root / "artifacts").rglob("*")) if path.is_file()}


# --- the test --------------------------------------------------------------------------------------


@pytest.mark.parametrize("inventory_kind", sorted(INVENTORIES))
def test_job_template_runs_under_ansible_runner_like_awx(acl_emulator, tmp_path, inventory_kind):
    env_dir = tmp_path / "private_data_dir" / "env"
    env_dir.mkdir(parents=True)
    credential_env = injected_environment({"address": acl_emulator.address, "token": OPERATOR_TOKEN}, env_dir)
    assert credential_env["NOMAD_ADDR"] == acl_emulator.address
    assert credential_env["NOMAD_TOKEN"] == OPERATOR_TOKEN
    unfilled = ("NOMAD_NAMESPACE", "NOMAD_REGION", "NOMAD_CACERT", "NOMAD_TLS_SERVER_NAME", "NOMAD_SKIP_VERIFY")
    assert {name: credential_env[name] for name in unfilled} == dict.fromkeys(unfilled, "")

    inventory = INVENTORIES[inventory_kind](credential_env, tmp_path)
    if inventory_kind == "nomad_allocs-sync":
        assert len(inventory["_meta"]["hostvars"]) == len(running_allocations(acl_emulator)) == 2, inventory
    root = private_data_dir(tmp_path, credential_env, inventory)
    acl_emulator.control.reset_requests()
    signals_before = delivered_sighups(acl_emulator)

    completed = run_job(root)

    artifacts = artifact_texts(root)
    assert completed.returncode == 0, f"runner failed:\n{completed.stdout}{completed.stderr}"
    assert_job_succeeded(artifacts)
    counts = acl_emulator.control.requests()
    signal_calls = {call: count for call, count in counts.items() if call.startswith("POST ") and "/signal" in call}
    assert counts.get("GET /v1/allocations", 0) >= 1, counts
    assert len(signal_calls) == 2 and set(signal_calls.values()) == {1}, counts
    assert delivered_sighups(acl_emulator) == signals_before + 2
    assert_token_only_in_the_environment_record(artifacts)
    assert OPERATOR_TOKEN not in completed.stdout + completed.stderr


def assert_job_succeeded(artifacts: dict) -> None:
    """runner's verdict, and the signal task's result in the job events."""
    assert artifacts["artifacts/42/status"].strip() == "successful"
    assert artifacts["artifacts/42/rc"].strip() == "0"
    events = [json.loads(text) for name, text in artifacts.items() if name.startswith("artifacts/42/job_events/")]
    results = {event["event_data"]["task"]: event["event_data"]["res"] for event in events
               if event["event"] == "runner_on_ok" and event["event_data"].get("task")}
    signal = results["Send the signal to every running task of the job's allocations"]
    assert signal["changed"] is True and len(signal["allocations"]) == 2, signal
    # ansible-core 2.19 returns the module arguments at -vvv (the token masked); 2.21 no longer does.
    if "invocation" in signal:
        assert signal["invocation"]["module_args"]["token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "ok: [localhost]" in artifacts["artifacts/42/stdout"]


def assert_token_only_in_the_environment_record(artifacts: dict) -> None:
    """No job event, no stdout, no status file holds the token. runner's `command` artifact records the job's
    environment (like env/envvars, where the credential put the token; AWX keeps only a masked copy of it):
    the token may be there under `env` and nowhere else in that file."""
    artifacts = dict(artifacts)
    command = json.loads(artifacts.pop("artifacts/42/command"))
    assert command.pop("env")["NOMAD_TOKEN"] == OPERATOR_TOKEN
    assert OPERATOR_TOKEN not in json.dumps(command)
    leaked = [name for name, text in artifacts.items() if OPERATOR_TOKEN in text]
    assert not leaked, f"the Nomad token appears in runner artifacts: {leaked}"


def running_allocations(emulator) -> list:
    return [alloc for alloc in emulator.allocations() if alloc["JobID"] == JOB and alloc["ClientStatus"] == "running"]


def delivered_sighups(emulator) -> int:
    """How many SIGHUPs the emulator delivered to the tasks of the job's allocations so far."""
    total = 0
    for alloc in emulator.allocations():
        if alloc["JobID"] == JOB:
            tasks = emulator.control.tasks(alloc["ID"])
            total += sum(task["signals"].count("SIGHUP") for task in tasks.values())
    return total
