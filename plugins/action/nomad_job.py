# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Registers, stops or purges a Nomad job from the controller (documented in plugins/modules/nomad_job.py).

`src` and `variable_files` are found like ``ansible.builtin.template``'s `src` (the role's files/ and templates/,
the playbook's directory); the rest happens in module_utils/jobs/ (spec.py, deploy.py, rollout.py). Connection options the
task does not set come from the play through ModuleLikeActionBase.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.deploy import WaitSettings, deploy_job, remove_job
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec import (
    JOB_ARGUMENT_SPEC,
    JOB_MUTUALLY_EXCLUSIVE,
    JOB_REQUIRED_IF,
    JobRequest,
    JobSpecError,
    values_of_variable_file,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
)
from ansible_collections.nomadops.nomad.plugins.plugin_utils._controller_action import ArgumentSpec, ModuleLikeActionBase

display = Display()
SEARCHED = "the role's files/ and templates/, the playbook's files/ and templates/, and the playbook's directory"


class ActionModule(ModuleLikeActionBase):
    """Register (idempotent by Nomad's plan) or stop/purge a Nomad job, and wait for the rollout."""

    _supports_check_mode = True
    _supports_async = False

    def argument_spec(self) -> ArgumentSpec:
        return ArgumentSpec(argument_spec=dict(CONNECTION_ARGUMENT_SPEC, **JOB_ARGUMENT_SPEC),
                            mutually_exclusive=JOB_MUTUALLY_EXCLUSIVE, required_if=JOB_REQUIRED_IF)

    def run_module(self, module, task_vars):
        params = module.params
        settings = WaitSettings(params["wait"], params["wait_timeout"], params["diagnose_lines"], report=display.v)
        with module.client(pool_size=4) as client:
            namespace = client.options.namespace
            if params["state"] == "absent":
                returned = remove_job(client, params["name"], namespace, params["purge"], module.check_mode, settings)
            else:
                returned = deploy_job(client, self._job_request(params), namespace, module.check_mode, settings)
        for warning in returned.pop("warnings_nomad", []):
            module.warn(f"Nomad: {warning}")
        diff_text = returned.pop("diff_text", None)
        if self._task.diff and diff_text is not None and returned["changed"]:
            returned["diff"] = dict(prepared=diff_text)
        module.exit_json(**returned)

    # ----------------------------------------------------------------------------------- controller files
    def _find(self, path, option):
        """A controller path found like template's src: the role's files/ then templates/, then the playbook's."""
        for directory in ("files", "templates"):
            try:
                return self._find_needle(directory, path)
            except AnsibleError:
                continue
        raise JobSpecError(f"{option} {path!r} not found on the controller (searched {SEARCHED})")

    def _read(self, path, option):
        found = self._find(path, option)
        try:
            with open(found, "rb") as handle:
                return to_text(handle.read(), errors="surrogate_or_strict")
        except (OSError, UnicodeError) as error:
            raise JobSpecError(f"cannot read {option} {path!r}: {error}") from None

    def _job_request(self, params):
        if params["src"] is not None:
            source, source_name = self._read(params["src"], "src"), params["src"]
        else:
            source, source_name = params["spec"], "spec"
        variables = {}
        for path in params["variable_files"] or []:
            variables.update(values_of_variable_file(self._read(path, "variable file"), path))
        variables.update(params["variables"] or {})
        return JobRequest(source=source, format=params["format"], variables=variables, name=params["name"],
                          check_index=params["check_index"], preserve_counts=params["preserve_counts"],
                          source_name=source_name)
