# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The thin action in front of every module of the collection, so that modules take part in the one
connection model: for each connection option the task does not set (``module_defaults`` included), the
value of the play's ``ansible_nomad_<option>`` variable, else of the ``[nomadops_nomad]`` section of
ansible.cfg, is added to the module's arguments; then the module runs as usual (``_execute_module``), on
whatever host the task targets, except inside a Nomad allocation: on a host reached with the nomad_exec
connection the play's options fill nothing, and a token, http_auth or address password among them fails the
task before anything is sent (a workload must never receive the operator's credentials; use
``delegate_to: localhost``). The ``NOMAD_*`` fallbacks stay in the module, so they are read from the
environment of the host the module runs on, below everything the controller resolved.

A module's action file is a subclass with a docstring::

    from ansible_collections.nomadops.nomad.plugins.plugin_utils._remote_module_action import NomadModuleAction

    class ActionModule(NomadModuleAction):
        # runs the module of the same name with the play's connection options filled in

Private to the collection.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOpsError, NomadOptionError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import secrets_in_params
from ansible_collections.nomadops.nomad.plugins.plugin_utils._errors import failed_result
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import play_connection_values

__all__ = ("NomadModuleAction",)

NOMAD_EXEC_CONNECTION = "nomadops.nomad.nomad_exec"


class NomadModuleAction(ActionBase):
    """Runs the module of the same name, with the connection options the play sets filled in."""

    _supports_check_mode = True  # the module decides; it declares its own check mode support
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        try:
            module_args = self.module_arguments(task_vars)
        except NomadOpsError as error:  # the module itself has its own boundary (run_with_nomad_errors)
            return merge_hash(result, failed_result(error))
        wrap_async = self._task.async_val and not self._connection.has_native_async
        module_result = self._execute_module(
            module_name=self._task.resolved_action or self._task.action,
            module_args=module_args,
            task_vars=task_vars,
            wrap_async=wrap_async,
        )
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return merge_hash(result, module_result)

    def module_arguments(self, task_vars):
        """The task's arguments (module_defaults merged by ansible-core) + the play's connection options.

        Inside a Nomad allocation (the nomad_exec connection) the play's options fill nothing, and credentials
        among them fail the task: the workload must never receive the operator's token (RELIABILITY.md)."""
        from_play = play_connection_values(self, task_vars, skip=self._task.args)
        if self.runs_inside_an_allocation():
            refuse_credentials_for_a_workload(self._task.action, from_play, "the play's ansible_nomad_* variables or ansible.cfg")
            refuse_credentials_for_a_workload(self._task.action, self._task.args, "the task's arguments or module_defaults")
            return dict(self._task.args)
        return dict(from_play, **self._task.args)

    def runs_inside_an_allocation(self):
        """Whether the module would run inside a Nomad allocation: the task's connection is nomad_exec."""
        return getattr(self._connection, "transport", None) == NOMAD_EXEC_CONNECTION


def refuse_credentials_for_a_workload(module_name, arguments, source):
    """Raise NomadOptionError when `arguments` (from `source`) hold a credential (token, http_auth, a password
    in address): sending it with a module into an allocation would hand it to the workload."""
    given = [name for name in ("token", "http_auth") if arguments.get(name)]
    if secrets_in_params(arguments):
        given.append("the password in address")
    if not given:
        return
    raise NomadOptionError(
        f"{module_name} would run inside the Nomad allocation of this host (connection {NOMAD_EXEC_CONNECTION}) and "
        f"receive the {' and '.join(given)} from {source}; a workload must never get the operator's credentials: "
        "run it on the controller with delegate_to: localhost"
    )
