# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for integration tests: real ansible-playbook / ansible runs against the Nomad emulator.

Every test drives Ansible as a user would (a subprocess), with the collection found through
ANSIBLE_COLLECTIONS_PATH, and reads what happened from the emulator and from the recorded task results.

Emulators: each test module gets one `emulator` (`integration_emulator` before it is ready). A module names what
it needs with `EMULATOR_SCENARIO = "x.yml"`, `EMULATOR_OPTIONS = {...}` (EmulatorProcess keywords) and
`EMULATOR_READY = predicate` (default: nothing pending); a test that needs another version or option asks for it
with an indirect parameter of `integration_emulator`. `acl_emulator` is acl.yml per module, `start_emulator`
starts extra ones for one test, and `running_emulator()` is the one place this suite starts an emulator.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.collection_tree import collections_path  # noqa: E402  (needs the repo root on sys.path)
from tests.emulator.harness import EmulatorProcess  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

INTEGRATION_DIR = Path(__file__).resolve().parent
SCENARIOS = REPO_ROOT / "tests" / "emulator" / "scenarios"
VENV_BIN = Path(sys.executable).parent


@dataclass
class AnsibleRun:
    """What one ansible / ansible-playbook run did."""

    argv: list
    rc: int
    stdout: str
    stderr: str
    results: list = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def task(self, name: str) -> dict:
        """The last recorded result of the task called `name` (the 'result' dict plus 'status')."""
        for entry in reversed(self.results):
            if entry["task"] == name:
                return dict(entry["result"], _status=entry["status"])
        raise AssertionError(f"no task named {name!r} ran; tasks: {[e['task'] for e in self.results]}\n{self.output}")

    def statuses(self) -> list:
        return [(entry["task"], entry["status"]) for entry in self.results]

    def assert_ok(self) -> AnsibleRun:
        assert self.rc == 0, f"ansible failed (rc={self.rc}):\n{self.output}"
        return self


def command_line_flags(check: bool, verbosity: int, args: tuple) -> list:
    """The flags ansible and ansible-playbook share: --check, -v..., then `args` as given."""
    return (["--check"] if check else []) + (["-" + "v" * verbosity] if verbosity else []) + list(args)


class AnsibleRunner:
    """Runs playbooks and ad-hoc commands against one emulator."""

    def __init__(self, address: str | None, workdir: Path, extra_env: dict | None = None):
        self.address = address
        self.workdir = workdir
        self.extra_env = dict(extra_env or {})
        workdir.mkdir(parents=True, exist_ok=True)
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(
            "localhost ansible_connection=local ansible_python_interpreter={{ ansible_playbook_python }}\n"
        )
        self._counter = 0

    def environment(self, env: dict | None = None, *, nomad_addr: bool = True) -> dict:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "ANSIBLE_"))}
        base.update(
            ANSIBLE_COLLECTIONS_PATH=str(collections_path()),
            ANSIBLE_CALLBACK_PLUGINS=str(INTEGRATION_DIR / "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="record_results",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_LOCAL_TEMP=str(self.workdir / "ansible-tmp"),
            ANSIBLE_REMOTE_TEMP=str(self.workdir / "ansible-remote-tmp"),
            ANSIBLE_HOME=str(self.workdir / "ansible-home"),
            ANSIBLE_INVENTORY=str(self.inventory),
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        if nomad_addr and self.address:
            base["NOMAD_ADDR"] = self.address
        base.update(self.extra_env)
        base.update(env or {})
        return {k: v for k, v in base.items() if v is not None}

    def _run(self, argv: list, env: dict | None, nomad_addr: bool, timeout: float) -> AnsibleRun:
        self._counter += 1
        record = self.workdir / f"results-{self._counter}.jsonl"
        environment = self.environment(env, nomad_addr=nomad_addr)
        environment["NOMADOPS_RECORD_RESULTS"] = str(record)
        proc = subprocess.run(
            argv, cwd=self.workdir, env=environment, capture_output=True, text=True, timeout=timeout, check=False
        )
        results = []
        if record.exists():
            results = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
        return AnsibleRun(argv=argv, rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr, results=results)

    def playbook(self, playbook, *, extra_vars: dict | None = None, env: dict | None = None, check: bool = False,
                 verbosity: int = 0, nomad_addr: bool = True, timeout: float = 600, args: tuple = ()) -> AnsibleRun:
        """Run a playbook given as a path, a YAML string, or a list of plays."""
        if isinstance(playbook, (list, dict)):
            playbook = yaml.safe_dump(playbook if isinstance(playbook, list) else [playbook], sort_keys=False)
        if isinstance(playbook, str) and "\n" in playbook:
            path = self.workdir / f"playbook-{self._counter + 1}.yml"
            path.write_text(playbook)
        else:
            path = Path(playbook)
            if not path.is_absolute():
                path = INTEGRATION_DIR / "playbooks" / path
        argv = [str(VENV_BIN / "ansible-playbook"), str(path)]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        return self._run(argv + command_line_flags(check, verbosity, args), env, nomad_addr, timeout)

    def adhoc(self, module: str, module_args=None, *, env: dict | None = None, check: bool = False,
              verbosity: int = 0, nomad_addr: bool = True, timeout: float = 300, args: tuple = ()) -> AnsibleRun:
        """Run `ansible localhost -m <module> -a <args>` (args as a dict are sent as JSON)."""
        argv = [str(VENV_BIN / "ansible"), "localhost", "-m", module]
        if module_args is not None:
            argv += ["-a", json.dumps(module_args) if isinstance(module_args, dict) else module_args]
        return self._run(argv + command_line_flags(check, verbosity, args), env, nomad_addr, timeout)


def collection_loader_ready() -> None:
    """Install Ansible's collection loader over the tree the playbooks use, once per process, as
    ansible-playbook does. Every in-process import of the collection goes through it: a plain sys.path import
    of ``ansible_collections`` would shadow the loader, and plugins loaded later would not be found."""
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([str(collections_path())])


def collection_module(name: str):
    """A module_utils module of the collection under test, e.g. collection_module("common.client")."""
    collection_loader_ready()
    return importlib.import_module(f"ansible_collections.nomadops.nomad.plugins.module_utils.{name}")


DEFAULT_SCENARIO = "integration.yml"
READY_TIMEOUT_SECONDS = 60.0


def settled(emulator) -> bool:
    """No allocation is still pending: service tasks run, batch tasks have finished."""
    allocations = emulator.allocations("*")
    return bool(allocations) and all(a["ClientStatus"] != "pending" for a in allocations)


@contextmanager
def running_emulator(scenario: str = DEFAULT_SCENARIO, *, ready=None, **options):
    """The one way this suite starts an emulator: `scenario` (a file of tests/emulator/scenarios or an absolute
    path) with EmulatorProcess `options`; once `ready(emulator)` holds (None: at once); stopped on exit."""
    path = scenario if os.path.isabs(scenario) else str(SCENARIOS / scenario)
    with EmulatorProcess(scenario=path, **options) as emulator:
        if ready is not None:
            wait_until(lambda: ready(emulator), timeout=READY_TIMEOUT_SECONDS, what=f"{scenario} to be ready")
        yield emulator


def emulator_options(request) -> dict:
    """What a test module's emulator starts with: the module's `EMULATOR_SCENARIO` (default integration.yml) and
    `EMULATOR_OPTIONS` (EmulatorProcess keywords), overridden by an indirect parameter of `integration_emulator`:
    a scenario name, or a dict of options that may name the `scenario`."""
    options = dict(getattr(request.module, "EMULATOR_OPTIONS", {}))
    options["scenario"] = getattr(request.module, "EMULATOR_SCENARIO", DEFAULT_SCENARIO)
    param = getattr(request, "param", None)
    if isinstance(param, dict):
        options.update(param)
    elif param:
        options["scenario"] = param
    return options


@pytest.fixture(scope="module")
def integration_emulator(request):
    """The test module's emulator (see emulator_options), one per module (and per indirect parameter)."""
    with running_emulator(**emulator_options(request)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def emulator(integration_emulator, request):
    """`integration_emulator` once the module's `EMULATOR_READY(emulator)` holds; by default once every
    allocation of its scenario has left `pending` (settled)."""
    ready = getattr(request.module, "EMULATOR_READY", settled)
    wait_until(lambda: ready(integration_emulator), timeout=READY_TIMEOUT_SECONDS,
               what="the module's emulator to be ready")
    return integration_emulator


@pytest.fixture(scope="module")
def acl_emulator():
    """scenarios/acl.yml (ACLs on, the tokens of tests/emulator/README.md), settled, one per test module."""
    with running_emulator("acl.yml", ready=settled) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def ansible_runner(integration_emulator, tmp_path_factory):
    """Runs ansible against `integration_emulator` (NOMAD_ADDR is set; pass nomad_addr=False to drop it)."""
    return AnsibleRunner(integration_emulator.address, tmp_path_factory.mktemp("ansible"))


@pytest.fixture
def start_emulator():
    """Factory: start extra emulators for one test (other scenarios, TLS, virtual mode); all stopped after it."""
    with ExitStack() as stack:
        yield lambda scenario=DEFAULT_SCENARIO, **options: stack.enter_context(running_emulator(scenario, **options))
