# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Start the emulator as a subprocess for tests: `with EmulatorProcess(scenario) as emu: ...`."""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

import requests
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_PREFIX = "Nomad emulator listening on "
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


def scenario_management_token(path: str):
    """The first management token of an ACL scenario (None without ACLs)."""
    try:
        with open(path, encoding="utf-8") as handle:
            scenario = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(scenario, dict) or not scenario.get("acl"):
        return None
    for token in scenario.get("tokens") or ():
        if token.get("type") == "management":
            return str(token["secret"])
    return None


class EmulatorStartError(RuntimeError):
    """The emulator did not print its ready line in time; the message carries its stderr."""


class ControlClient:
    """The emulator's control API (`/_emulator/...`), never subject to ACL or faults."""

    def __init__(self, address: str, verify, cert=None):
        self.address = address
        self.session = requests.Session()
        self.session.trust_env = False  # a CA bundle from the environment must not override `verify`
        self.verify = verify
        self.cert = cert

    def _call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, self.address + path, verify=self.verify, cert=self.cert,
                                        timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def tasks(self, alloc_id: str) -> dict:
        return self._call("GET", f"/_emulator/allocations/{alloc_id}/tasks")

    def add_fault(self, **rule) -> dict:
        return self._call("POST", "/_emulator/faults", json=rule)

    def faults(self) -> list:
        return self._call("GET", "/_emulator/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/_emulator/faults")

    def requests(self) -> dict:
        """{"METHOD /path": count, ...}"""
        return self._call("GET", "/_emulator/requests")["counts"]

    def reset_requests(self) -> None:
        self._call("DELETE", "/_emulator/requests")

    def settings(self, **changes) -> dict:
        if not changes:
            return self._call("GET", "/_emulator/settings")
        return self._call("POST", "/_emulator/settings", json=changes)


class EmulatorProcess:
    def __init__(self, scenario, *, port=0, virtual=None, tls_cert=None, tls_key=None, tls_ca=None,
                 require_client_cert=False, string_token_compare=False, extra_args=(), client_cert=None,
                 management_token=None, state_dir=None, nomad_version=None):
        self.scenario = os.path.join(REPO_ROOT, scenario) if not os.path.isabs(str(scenario)) else str(scenario)
        self.port = port
        self.virtual = virtual
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.tls_ca = tls_ca
        self.require_client_cert = require_client_cert
        self.string_token_compare = string_token_compare
        self.extra_args = list(extra_args)
        self.client_cert = client_cert  # (cert, key) used by .control/.allocations() under mutual TLS
        self.management_token = management_token or scenario_management_token(self.scenario)
        self.state_dir = state_dir
        self.nomad_version = nomad_version   # None: the scenario's `nomad_version`, else the emulator's default
        self.process = None
        self.address = None
        self._control = None
        self._stderr_lines: list = []

    # --- lifecycle ---------------------------------------------------------------------------------
    def command(self) -> list:
        command = [sys.executable, "-m", "tests.emulator", "--scenario", self.scenario, "--port", str(self.port)]
        if self.virtual is not None:
            command += ["--virtual", str(self.virtual)]
        if self.tls_cert:
            command += ["--tls-cert", str(self.tls_cert), "--tls-key", str(self.tls_key)]
        if self.tls_ca:
            command += ["--tls-ca", str(self.tls_ca)]
        if self.require_client_cert:
            command.append("--tls-require-client-cert")
        if self.string_token_compare:
            command.append("--string-token-compare")
        if self.state_dir:
            command += ["--state-dir", str(self.state_dir)]
        if self.nomad_version:
            command += ["--nomad-version", str(self.nomad_version)]
        return command + self.extra_args

    def start(self) -> EmulatorProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(self.command(), cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._collect_stderr, daemon=True).start()
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_stdout, args=(lines,), daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail("did not become ready within 30 s")
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.process.poll() is not None:
                    self._fail(f"exited with status {self.process.returncode}")
                continue
            if line is None:
                self.process.wait(timeout=5)
                self._fail(f"exited with status {self.process.returncode}")
            if line.startswith(READY_PREFIX):
                self.address = line[len(READY_PREFIX):].strip()
                return self

    def _read_stdout(self, lines: queue.Queue) -> None:
        for line in self.process.stdout:
            lines.put(line)
        lines.put(None)

    def _collect_stderr(self) -> None:
        for line in self.process.stderr:
            self._stderr_lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr_lines)

    def _fail(self, why: str):
        self.stop()
        time.sleep(0.1)
        raise EmulatorStartError(f"emulator {why}: {' '.join(self.command())}\n{self.stderr}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- helpers -----------------------------------------------------------------------------------
    @property
    def verify(self):
        """What requests should pass as `verify` for this emulator (its CA when TLS is on)."""
        if not self.tls_cert:
            return True
        return str(self.tls_ca) if self.tls_ca else False

    @property
    def control(self) -> ControlClient:
        if self._control is None:
            self._control = ControlClient(self.address, self.verify, self.client_cert)
        return self._control

    def allocations(self, namespace: str = "*", token=None) -> list:
        headers = {}
        token = token or self.management_token
        if token:
            headers["X-Nomad-Token"] = token
        response = self.control.session.get(f"{self.address}/v1/allocations", params={"namespace": namespace},
                                            headers=headers, verify=self.verify, cert=self.client_cert, timeout=30)
        response.raise_for_status()
        return response.json()
