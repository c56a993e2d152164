# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for the emulator's own tests: real emulator subprocesses, real HTTP.

Emulators live as long as their tests need: `shared_emulator`, `acl_emulator`, `virtual_emulator` and
`emulator_1_6_5` for the session (read-only use), `module_emulators(scenario, **options)` and the scenarios several
modules use (`jobs_api`, `jobs_acl_emulator`, `process_api`, `intent_emulator`) per module, `emulator_factory` and
`fresh_emulator` per test. `blocking_until` waits with blocking queries; tests/waiting.py polls what has none."""
from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.emulator.harness import EmulatorProcess  # noqa: E402  (needs the repo root on sys.path)

SCENARIOS = REPO_ROOT / "tests" / "emulator" / "scenarios"
MANAGEMENT = "00000000-0000-4000-8000-000000000001"
READ_ONLY = "00000000-0000-4000-8000-000000000002"
LIFECYCLE_ONLY = "00000000-0000-4000-8000-000000000003"
OPERATOR = "00000000-0000-4000-8000-000000000006"
PROD_READER = "00000000-0000-4000-8000-000000000007"


class Api:
    """requests against one emulator, ignoring proxy/CA settings from the environment."""

    def __init__(self, emulator: EmulatorProcess, token: str | None = None):
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False
        self.token = token

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        token = token if token is not None else self.token
        if token:
            headers.setdefault("X-Nomad-Token", token)
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.emulator.address + path, headers=headers,
                                    verify=self.emulator.verify, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def allocations(self, **params) -> list:
        params.setdefault("namespace", "*")
        response = self.get("/v1/allocations", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def allocation(self, alloc_id: str) -> dict:
        response = self.get(f"/v1/allocation/{alloc_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def by_job(self, job: str, **params) -> list:
        return [alloc for alloc in self.allocations(**params) if alloc["JobID"] == job]


def blocking_until(api: Api, path: str, predicate, what: str, timeout: float = 60.0, **params) -> list:
    """GET `path` with blocking queries (index = the last X-Nomad-Index) until predicate(body) holds; every body
    seen, the last one satisfying it. `timeout` is generous: under load it must never be the expected path."""
    seen = []
    index = 0
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(path, params={**params, "index": index, "wait": "5s"})
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if predicate(seen[-1]):
            return seen
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last answer: {seen[-1]}"
        index = int(response.headers["X-Nomad-Index"])


def pid_alive(pid: int) -> bool:
    """Whether a process of that ID exists (a task's, or one an exec started)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def started(stack: ExitStack, scenario: str, options: dict) -> EmulatorProcess:
    """An emulator of tests/emulator/scenarios/`scenario` with EmulatorProcess `options`, stopped with `stack`."""
    return stack.enter_context(EmulatorProcess(SCENARIOS / scenario, **options))


@pytest.fixture(scope="session")
def shared_emulator():
    """Read-only tests share one emulator of the integration scenario (do not mutate it)."""
    with EmulatorProcess(SCENARIOS / "integration.yml") as emulator:
        yield emulator


@pytest.fixture(scope="session")
def shared_api(shared_emulator) -> Api:
    return Api(shared_emulator)


@pytest.fixture(scope="session")
def emulator_1_6_5():
    """The integration scenario answering as Nomad 1.6.5, for read-only tests of 1.6 answers (do not mutate it)."""
    with EmulatorProcess(SCENARIOS / "integration.yml", nomad_version="1.6.5") as emulator:
        yield emulator


@pytest.fixture
def emulator_factory():
    """Factory: start(scenario="integration.yml", **options), emulators for one test, stopped after it."""
    with ExitStack() as stack:
        yield lambda scenario="integration.yml", **options: started(stack, scenario, options)


@pytest.fixture(scope="module")
def module_emulators():
    """Factory: start(scenario, **options), emulators shared by the tests of one module, stopped after it."""
    with ExitStack() as stack:
        yield lambda scenario, **options: started(stack, scenario, options)


@pytest.fixture(scope="module")
def jobs_api(module_emulators) -> Api:
    """scenarios/jobs.yml (virtual allocations), one per module; every test registers jobs of its own IDs."""
    return Api(module_emulators("jobs.yml"))


@pytest.fixture(scope="module")
def jobs_acl_emulator(module_emulators) -> EmulatorProcess:
    """scenarios/jobs-acl.yml (ACLs on, the job capabilities' tokens), one per module."""
    return module_emulators("jobs-acl.yml")


@pytest.fixture(scope="module")
def process_api(module_emulators) -> Api:
    """scenarios/deployments-process.yml: registered jobs run as real processes (restarts, reschedules,
    deployments), one per module."""
    return Api(module_emulators("deployments-process.yml"))


@pytest.fixture(scope="module")
def intent_emulator(module_emulators) -> EmulatorProcess:
    """scenarios/intent.yml (ACLs on; node-2 holds only a finished batch allocation), one per module."""
    return module_emulators("intent.yml")


@pytest.fixture
def fresh_emulator(emulator_factory) -> EmulatorProcess:
    """A private emulator of the integration scenario, for tests that change state."""
    return emulator_factory()


@pytest.fixture
def api(fresh_emulator) -> Api:
    return Api(fresh_emulator)


@pytest.fixture(scope="session")
def acl_emulator():
    with EmulatorProcess(SCENARIOS / "acl.yml") as emulator:
        yield emulator


@pytest.fixture(scope="session")
def virtual_emulator():
    """3,000 process-less allocations (create indexes cross the 3- and 4-digit boundaries)."""
    with EmulatorProcess(SCENARIOS / "integration.yml", virtual=3000) as emulator:
        yield emulator
