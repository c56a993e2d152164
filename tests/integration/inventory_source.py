# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the inventory plugins' tests (test_inventory.py, test_nodes_inventory.py) share: an inventory source file
and the ansible-inventory runs over it, and how they read the listing."""

from __future__ import annotations

import json
import subprocess

import yaml

from tests.integration.conftest import VENV_BIN, AnsibleRunner


class InventorySource:
    """One source file `<name>.<plugin's short name>.yml` in the runner's work directory, read with `token`."""

    def __init__(self, runner: AnsibleRunner, name: str, options: dict, *, plugin: str, token: str):
        self.runner = runner
        self.token = token
        self.path = runner.workdir / f"{name}.{plugin.rpartition('.')[2]}.yml"
        self.path.write_text(yaml.safe_dump(dict({"plugin": plugin}, **options), sort_keys=False))

    def run(self, *args, env=None, fatal=True):
        """ansible-inventory -i <source> `args`; `fatal`: a source that fails to parse fails the run."""
        environment = self.runner.environment(dict({"NOMAD_TOKEN": self.token}, **(env or {})))
        if fatal:
            environment["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "true"
        argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(self.path), *args]
        return subprocess.run(argv, cwd=self.runner.workdir, env=environment, capture_output=True, text=True,
                              timeout=300, check=False)

    def listing(self, *args, env=None):
        """`--list --export` as a dict, plus the run's `_stdout` and `_stderr`; it must succeed without a traceback."""
        proc = self.run("--list", "--export", *args, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        data = json.loads(proc.stdout)
        data["_stdout"], data["_stderr"] = proc.stdout, proc.stderr
        return data


def unwrap(value):
    """ansible-inventory (2.19) writes untrusted strings as {"__ansible_unsafe": text}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def hostvars(listing):
    return {host: unwrap(values) for host, values in listing["_meta"]["hostvars"].items()}


def members(listing, group):
    return set(listing.get(group, {}).get("hosts", []))
