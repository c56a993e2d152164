# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures every unit test shares: no NOMAD_* variable from the developer's shell, a module runner, and the
one fake Nomad (an HTTP server on loopback, tests/unit/plugins/module_utils/fake_nomad_server.py)."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import CONNECTION_ENV_VARIABLES
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import FakeNomad


@pytest.fixture(autouse=True)
def no_nomad_environment(monkeypatch):
    """Every variable the connection options fall back to, taken from the argument spec itself, is unset."""
    for name in CONNECTION_ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_module(capsys):
    """Run a module's main() in-process with `args`; returns its JSON result plus `_rc` (the exit code)."""

    def run(module, args, check_mode=False):
        if check_mode:
            args = dict(args, _ansible_check_mode=True)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exit_info:
                module.main()
        output = json.loads(capsys.readouterr().out)
        output["_rc"] = exit_info.value.code
        return output

    return run


@pytest.fixture
def fake_nomad():
    """Factory: `fake_nomad(handler)` starts a FakeNomad answering `handler(request)`; stopped after the test."""
    started = []

    def start(handler, **options):
        server = FakeNomad(handler, **options)
        server.__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)
