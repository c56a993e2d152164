# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Runs a command in a task of a Nomad allocation, from the controller.

The documentation lives in plugins/modules/nomad_alloc_exec.py. Connection options the task does not set
come from the play (``ansible_nomad_*`` variables, ``[nomadops_nomad]`` ini) through ModuleLikeActionBase.
"""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.exec import (
    EXEC_ARGUMENT_SPEC,
    EXEC_MUTUALLY_EXCLUSIVE,
    EXEC_REQUIRED_ONE_OF,
    HAS_WEBSOCKET,
    WEBSOCKET_IMPORT_ERROR,
    ExecArgumentError,
    ExecError,
    ExecTimeoutError,
    allocation_exec_result,
    check_task_runs,
    choose_task,
    exec_in_allocations,
    exec_request_from_params,
    failures_message,
    format_seconds,
    is_single_allocation,
    run_exec,
    shape_output,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
    connection_options_from_params,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import read_allocation
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import ListOptions, empty_selection_message, select
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_KEYS, resolve_allocation_id
from ansible_collections.nomadops.nomad.plugins.plugin_utils._controller_action import ArgumentSpec, ModuleLikeActionBase


class ActionModule(ModuleLikeActionBase):
    """Run a command in a task of a Nomad allocation, from the controller."""

    # Honest: running a command cannot be predicted; ansible-core answers --check with "skipped".
    _supports_check_mode = False
    _supports_async = False

    def argument_spec(self) -> ArgumentSpec:
        return ArgumentSpec(
            argument_spec=dict(CONNECTION_ARGUMENT_SPEC, **EXEC_ARGUMENT_SPEC),
            mutually_exclusive=EXEC_MUTUALLY_EXCLUSIVE,
            required_one_of=EXEC_REQUIRED_ONE_OF,
        )

    def run_module(self, module, task_vars):
        if not HAS_WEBSOCKET:
            module.fail_json(msg=missing_required_lib("websocket-client"), exception=WEBSOCKET_IMPORT_ERROR)
        self._refuse_a_list_as_command()
        params = module.params
        self._warn_about_a_leftover_timeout(module)
        output = output_settings(params)
        options = connection_options_from_params(params)
        if not is_single_allocation(params):
            self._run_in_many(module, options, output)
        request, outcome = self._run_command(module, options)
        returned = dict(
            changed=True,
            allocation_id=request.allocation_id,
            task=request.task,
            cmd=request.argv,
            **shape_output(outcome, **output),
        )
        if outcome.exit_code != 0:
            module.fail_json(msg="non-zero return code", **returned)
        module.exit_json(**returned)

    def _refuse_a_list_as_command(self):
        """ansible-core turns a YAML list given as the string option `command` into its text ("[ls, -l]"),
        which would run a program named "[ls,"."""
        if isinstance(self._task.args.get("command"), (list, tuple)):
            raise ExecArgumentError("command is one string, split into words like a shell would split it; give a "
                                    "list of words as argv instead (argv: [ls, -l])")

    def _run_command(self, module, options):
        """(ExecRequest, ExecOutcome): everything is checked before the first request to Nomad."""
        params = module.params
        request = exec_request_from_params(params, allocation_id="", task=params["task"] or "")
        module.add_no_log_values(options.secrets)
        with NomadClient(options, pool_size=1, warn=module.warn) as client:
            allocation = full_allocation(client, params["id"][0], options.namespace)
            task = choose_task(allocation, params["task"])
            check_task_runs(allocation, task)
            request = request._replace(allocation_id=allocation["ID"], task=task, namespace=allocation.get("Namespace"))
            self._display.vvv(f"nomad_alloc_exec: allocation {request.allocation_id}, task {task} at {options.address}")
            return request, run_exec(client, request)

    def _run_in_many(self, module, options, output):
        """The selector's allocations, the command run in each one concurrently; ends the module."""
        params = module.params
        base = exec_request_from_params(params, allocation_id="", task=params["task"] or "")
        module.add_no_log_values(options.secrets)
        selector = {key: params.get(key) for key in SELECTOR_KEYS}
        with NomadClient(options, pool_size=params["parallelism"], warn=module.warn) as client:
            selection = select(client, selector, ListOptions(namespace=options.namespace), acting=True)
            if not selection.allocations:
                module.fail_json(msg=f"{empty_selection_message(selection.filter)} at {options.address}",
                                 address=options.address, allocations=[], filter=selection.filter)
            entries = exec_in_allocations(client, selection.allocations, base, params["task"], params["parallelism"],
                                          selection.explicit_ids)
        returned = dict(changed=any(entry.request is not None for entry in entries), cmd=base.argv,
                        allocations=[allocation_exec_result(entry, **output) for entry in entries])
        if any(entry.failed for entry in entries):
            module.fail_json(msg=failures_message(entries), **returned)
        module.exit_json(**returned)

    def _leftover_timeout(self, module):
        """The task's `timeout` when it looks like the command deadline of before 0.2.0: larger than
        command_timeout, with command_timeout not given."""
        timeout = module.params.get("timeout")
        if "command_timeout" in self._task.args or "timeout" not in self._task.args or timeout is None:
            return None
        return timeout if timeout > module.params["command_timeout"] else None

    def _warn_about_a_leftover_timeout(self, module):
        timeout = self._leftover_timeout(module)
        if timeout is not None:
            module.warn(
                f"timeout ({format_seconds(timeout)} s) is the limit of each HTTP request; the command itself may run "
                f"command_timeout ({format_seconds(module.params['command_timeout'])} s): set command_timeout for a "
                "longer command"
            )

    def failure_fields(self, error, module):
        """A failed exec session: the output received before the failure, the address, and a hint on timeouts."""
        if not isinstance(error, ExecError):
            return super().failure_fields(error, module)
        failure = {} if error.partial is None else shape_output(error.partial, **output_settings(module.params))
        failure["address"] = module.connection_options().address
        return dict(failure, msg=self._exec_failure_message(error, module))

    def _exec_failure_message(self, error, module):
        message = str(error)
        if isinstance(error, ExecTimeoutError):
            message += " (raise command_timeout)"
            if self._leftover_timeout(module) is not None:
                message += "; timeout is the limit of each HTTP request, command_timeout the command's"
        return message


def output_settings(params):
    """How shape_output() renders the command's output, from the task's options."""
    return dict(output_encoding=params["output_encoding"], strip_empty_ends=params["strip_empty_ends"],
                output_lines=params["output_lines"])


def full_allocation(client, id_or_prefix, namespace):
    """The allocation with its job, found by full ID or unique short prefix, read in its own namespace."""
    allocation = resolve_allocation_id(client, id_or_prefix, namespace)
    if "Job" not in allocation:
        allocation = read_allocation(client, allocation)
    return allocation
