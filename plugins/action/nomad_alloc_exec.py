# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The documentation lives in plugins/modules/nomad_alloc_exec.py.

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.nomadops.nomad.plugins.module_utils._client import NomadClient, NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils._exec import (
    EXEC_ARGUMENT_SPEC,
    EXEC_MUTUALLY_EXCLUSIVE,
    EXEC_REQUIRED_ONE_OF,
    HAS_WEBSOCKET,
    WEBSOCKET_IMPORT_ERROR,
    ExecError,
    check_task_runs,
    choose_task,
    exec_request_from_params,
    run_exec,
    shape_output,
)
from ansible_collections.nomadops.nomad.plugins.module_utils._options import (
    CONNECTION_ARGUMENT_SPEC,
    CONNECTION_OPTION_NAMES,
    DEFAULT_TIMEOUT,
    NomadOptionError,
    connection_options_from_params,
)
from ansible_collections.nomadops.nomad.plugins.module_utils._selector import resolve_allocation_id
from ansible_collections.nomadops.nomad.plugins.plugin_utils._action_module import (
    ArgumentSpec,
    ModuleLikeActionBase,
    ini_values,
)


VARIABLE_PREFIX = "ansible_nomad_"
INI_SECTION = "nomadops_nomad"
INI_OPTIONS = tuple(name for name in CONNECTION_OPTION_NAMES if name not in ("token", "http_auth"))


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

    def option_values_from_play(self, task_vars):
        """Connection options from `ansible_nomad_<option>` variables, then the [nomadops_nomad] ini section."""
        values = ini_values(INI_SECTION, INI_OPTIONS, self._task.resolved_action or "nomadops.nomad.nomad_alloc_exec")
        for name in CONNECTION_OPTION_NAMES:
            variable = VARIABLE_PREFIX + name
            if variable in task_vars:
                values[name] = self._templar.template(task_vars[variable])
        return values

    def run_module(self, module, task_vars):
        if not HAS_WEBSOCKET:
            module.fail_json(msg=missing_required_lib("websocket-client"), exception=WEBSOCKET_IMPORT_ERROR)
        params = module.params
        try:
            request, outcome = self._run_command(module, params)
        except ExecError as error:
            partial = {}
            if error.partial is not None:
                partial = shape_output(error.partial, params["output_encoding"], params["strip_empty_ends"])
            module.fail_json(msg=str(error), **partial)
        except (NomadOptionError, NomadError) as error:
            module.fail_json(msg=str(error))

        returned = dict(
            changed=True,
            allocation_id=request.allocation_id,
            task=request.task,
            cmd=request.argv,
            **shape_output(outcome, params["output_encoding"], params["strip_empty_ends"]),
        )
        if outcome.exit_code != 0:
            module.fail_json(msg="non-zero return code", **returned)
        module.exit_json(**returned)

    def _run_command(self, module, params):
        """(ExecRequest, ExecOutcome): everything is checked before the first request to Nomad."""
        request = exec_request_from_params(params, allocation_id="", task=params["task"] or "")
        # HTTP requests before the session: at most the connection default, never more than the whole timeout.
        options = connection_options_from_params(dict(params, timeout=min(request.timeout, DEFAULT_TIMEOUT)))
        module.add_no_log_values(options.secrets)
        with NomadClient(options, pool_size=1, warn=module.warn) as client:
            allocation = self._full_allocation(client, params["id"], options.namespace)
            task = choose_task(allocation, params["task"])
            check_task_runs(allocation, task)
            request = request._replace(allocation_id=allocation["ID"], task=task, namespace=allocation.get("Namespace"))
            self._display.vvv(f"nomad_alloc_exec: allocation {request.allocation_id}, task {task}")
            return request, run_exec(client, request)

    @staticmethod
    def _full_allocation(client, id_or_prefix, namespace):
        """The allocation with its job, found by full ID or unique short prefix."""
        allocation = resolve_allocation_id(client, id_or_prefix, namespace)
        if "Job" not in allocation:
            allocation = client.read(f"/v1/allocation/{allocation['ID']}").data
        return allocation
