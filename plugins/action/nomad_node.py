# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Drains a Nomad node, cancels its drain or sets its eligibility, from the controller (documented in
plugins/modules/nomad_node.py), so that the drain's progress shows at -v while the task waits. The work happens
in module_utils/nodes/ (nodes.py, drain.py); connection options the task does not set come from the play."""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.nomadops.nomad.plugins.module_utils.nodes.drain import (
    NODE_ARGUMENT_SPEC,
    NODE_MUTUALLY_EXCLUSIVE,
    NODE_REQUIRED_ONE_OF,
    manage_node,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
)
from ansible_collections.nomadops.nomad.plugins.plugin_utils._controller_action import ArgumentSpec, ModuleLikeActionBase

display = Display()


class ActionModule(ModuleLikeActionBase):
    """Drain, undrain or set the eligibility of a Nomad node, idempotently, and wait for the drain."""

    _supports_check_mode = True
    _supports_async = False

    def argument_spec(self) -> ArgumentSpec:
        return ArgumentSpec(argument_spec=dict(CONNECTION_ARGUMENT_SPEC, **NODE_ARGUMENT_SPEC),
                            mutually_exclusive=NODE_MUTUALLY_EXCLUSIVE, required_one_of=NODE_REQUIRED_ONE_OF)

    def run_module(self, module, task_vars):
        with module.client(pool_size=4) as client:
            returned = manage_node(client, module.params, module.check_mode, module.warn, display.v)
        module.exit_json(**returned)
