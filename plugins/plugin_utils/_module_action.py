# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The thin action in front of every module of the collection, so that modules take part in the one
connection model: for each connection option the task does not set (``module_defaults`` included), the
value of the play's ``ansible_nomad_<option>`` variable, else of the ``[nomadops_nomad]`` section of
ansible.cfg, is added to the module's arguments; then the module runs as usual (``_execute_module``), on
whatever host the task targets. The ``NOMAD_*`` fallbacks stay in the module, so they are read from the
environment of the host the module runs on, below everything the controller resolved.

A module's action file is a subclass with a docstring::

    from ansible_collections.nomadops.nomad.plugins.plugin_utils._module_action import NomadModuleAction

    class ActionModule(NomadModuleAction):
        # runs the module of the same name with the play's connection options filled in

Private to the collection.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.nomadops.nomad.plugins.module_utils._client import failure_fields
from ansible_collections.nomadops.nomad.plugins.module_utils._options import NomadOptionError
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import play_connection_values

__all__ = ("NomadModuleAction",)


class NomadModuleAction(ActionBase):
    """Runs the module of the same name, with the connection options the play sets filled in."""

    _supports_check_mode = True  # the module decides; it declares its own check mode support
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        try:
            module_args = self.module_arguments(task_vars)
        except NomadOptionError as error:
            return merge_hash(result, dict(failed=True, **failure_fields(error)))
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
        """The task's arguments (module_defaults merged by ansible-core) + the play's connection options."""
        from_play = play_connection_values(self, task_vars, skip=self._task.args)
        return dict(from_play, **self._task.args)
