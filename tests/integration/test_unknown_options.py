# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unknown options are errors naming them, also when a required option is missing because it was misspelt
(ansible-core's own check would report only `missing required arguments: signal`)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("module, arguments, unknown, meant", [
    ("nomadops.nomad.nomad_alloc_signal", "job=web sginal=SIGHUP", "sginal", "signal"),
    ("nomadops.nomad.nomad_alloc_info", "job=web limt=3", "limt", "limit"),
    ("nomadops.nomad.nomad_alloc_exec", "job=web comand=true", "comand", "command"),
    ("nomadops.nomad.nomad_alloc_fetch", "id=abcd srcc=x dest=/tmp/x", "srcc", "src"),
    ("nomadops.nomad.nomad_job", "name=web stae=absent", "stae", "state"),
    ("nomadops.nomad.nomad_job_info", "nmae=web", "nmae", "name"),
])
def test_a_misspelt_option_is_named_with_what_was_meant(emulator, ansible_runner, module, arguments, unknown, meant):
    emulator.control.reset_requests()
    run = ansible_runner.adhoc(module, arguments)
    assert run.rc != 0
    result = run.results[-1]["result"]
    message = result["msg"]
    assert "\n" not in message and "Traceback" not in message, message
    assert f"Unsupported parameters for ({module}) module: {unknown} (did you mean {meant}?)" in message, message
    assert "missing required arguments" not in message
    assert emulator.control.requests() == {}
