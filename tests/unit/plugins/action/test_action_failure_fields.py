# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The actions' part of the one action boundary: the context fetch and exec add to failure_fields()."""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.nomadops.nomad.plugins.action import nomad_alloc_exec, nomad_alloc_fetch
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOpsError, OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.exec import ExecOutcome, ExecTimeoutError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import AllocationNotFoundError
from ansible_collections.nomadops.nomad.plugins.plugin_utils._controller_action import ActionModuleContext

ADDRESS = "http://127.0.0.1:4646"


def action(action_class, task_args):
    """An action object with only what failure_fields() reads (ActionBase needs a whole play to be built)."""
    made = object.__new__(action_class)
    made._task = SimpleNamespace(args=task_args)
    return made


def module_with(params):
    module = object.__new__(ActionModuleContext)
    module.params = params
    module.no_log_values = set()
    return module


def test_fetch_error_is_an_operation_failure():
    error = nomad_alloc_fetch.FetchError("dest directory '/ro' is not writable; choose another dest")
    assert isinstance(error, OperationFailed) and isinstance(error, NomadOpsError)


def test_every_fetch_failure_names_its_src():
    fetch = action(nomad_alloc_fetch.ActionModule, {})
    module = module_with({"src": "alloc/data/dump.bin"})
    missing = AllocationNotFoundError('No allocation(s) with prefix or id "ffff" found', address=ADDRESS)
    assert fetch.failure_fields(missing, module) == {"msg": 'No allocation(s) with prefix or id "ffff" found',
                                                     "address": ADDRESS, "src": "alloc/data/dump.bin"}
    refused = nomad_alloc_fetch.FetchError("dest directory '/ro' is not writable; choose another dest")
    assert fetch.failure_fields(refused, module) == {"msg": "dest directory '/ro' is not writable; choose another dest",
                                                     "src": "alloc/data/dump.bin"}


def test_an_exec_timeout_keeps_the_output_received_and_says_which_timeout_to_raise():
    params = {"address": ADDRESS, "output_encoding": "text", "strip_empty_ends": True, "output_lines": True,
              "timeout": 30, "command_timeout": 1}
    error = ExecTimeoutError("command did not finish within 1 s")
    error.partial = ExecOutcome(exit_code=None, stdout=b"hi\n", stderr=b"", truncated=False)
    fields = action(nomad_alloc_exec.ActionModule, {"command_timeout": 1}).failure_fields(error, module_with(params))
    assert fields["msg"] == "command did not finish within 1 s (raise command_timeout)"
    assert (fields["address"], fields["stdout"], fields["stdout_lines"]) == (ADDRESS, "hi", ["hi"])
