# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Scales a Nomad job's task group from the controller (documented in plugins/modules/nomad_job_scale.py).

An action, not a module, because its `message` option (Nomad's scaling event message, `nomad job scale`'s
wording) is a name AnsibleModule reserves; the work happens in module_utils/jobs/changes.py and jobs/rollout.py.
"""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.changes import SCALE_ARGUMENT_SPEC, scale_job
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
)
from ansible_collections.nomadops.nomad.plugins.plugin_utils._controller_action import ArgumentSpec, ModuleLikeActionBase

display = Display()


class ActionModule(ModuleLikeActionBase):
    """Set a task group's count (unchanged when it already is that) and wait for the rollout."""

    _supports_check_mode = True
    _supports_async = False

    def argument_spec(self) -> ArgumentSpec:
        return ArgumentSpec(argument_spec=dict(CONNECTION_ARGUMENT_SPEC, **SCALE_ARGUMENT_SPEC))

    def run_module(self, module, task_vars):
        with module.client(pool_size=4) as client:
            returned = scale_job(client, module.params, client.options.namespace or "default", module.check_mode,
                                 report=display.v)
        module.exit_json(**returned)
