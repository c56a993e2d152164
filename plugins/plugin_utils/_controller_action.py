# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A base for action plugins that behave like modules, run on the controller.

Private to the collection. The idea follows community.crypto's plugin_utils/_controller_action.py:
the task arguments (with module_defaults already merged by ansible-core) are validated with the
same ArgumentSpecValidator modules use, so types, defaults, environment fallbacks (read from the
controller's environment), choices and mutual exclusions behave as in a module; no_log values are
removed from everything returned; `exit_json`/`fail_json`/`warn` end the run like in a module.

Connection options the task does not set come from the play (``ansible_nomad_*`` variables, then the
``[nomadops_nomad]`` ini section) through ``plugin_utils/_options.py``, the same adapter every plugin kind uses,
then from the ``NOMAD_*`` variables of the task's ``environment:`` keyword (as a module would read them on the
host it runs on), before the ``NOMAD_*`` fallbacks of the argument spec read the controller's environment.
"""

from __future__ import annotations

import abc
import copy
import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOpsError, failure_fields
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
    ConnectionOptions,
    connection_options_from_params,
    connection_values_from_environment,
    secrets_in_params,
    unknown_option_names,
    unknown_options_message,
)
from ansible_collections.nomadops.nomad.plugins.plugin_utils._errors import failed_result
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import play_connection_values


class _ModuleExit(Exception):
    """Carries the finished result out of run_module()."""

    def __init__(self, result: dict) -> None:
        super().__init__()
        self.result = result


class ArgumentSpec(t.NamedTuple):
    """An argument spec with the same constraints AnsibleModule takes."""

    argument_spec: dict
    mutually_exclusive: list = []
    required_together: list = []
    required_one_of: list = []
    required_if: list = []
    required_by: dict = {}


def no_log_values_of(arguments: dict, argument_spec: dict) -> set:
    """The secrets among raw task arguments, before any validation: the values of no_log options given as
    text, and the password of a `user:password@` in address."""
    values = {value for name, value in arguments.items()
              if (argument_spec.get(name) or {}).get("no_log") and isinstance(value, str) and value}
    return values | secrets_in_params(arguments)


class ActionModuleContext:
    """The module-like object handed to ModuleLikeActionBase.run_module()."""

    def __init__(self, action: ActionBase, spec: ArgumentSpec, arguments: dict) -> None:
        self._name = action._task.action
        self.check_mode = bool(action._task.check_mode)
        self._warnings: list = []
        # Scrubbed from everything returned from the start, also when validation fails below.
        self.no_log_values = no_log_values_of(arguments, spec.argument_spec)
        self.params = arguments
        unknown = unknown_option_names(arguments, spec.argument_spec)
        if unknown:
            self.fail_json(msg=unknown_options_message(self._name, unknown, spec.argument_spec))
        validator = ArgumentSpecValidator(
            spec.argument_spec,
            mutually_exclusive=spec.mutually_exclusive or None,
            required_together=spec.required_together or None,
            required_one_of=spec.required_one_of or None,
            required_if=spec.required_if or None,
            required_by=spec.required_by or None,
        )
        validation = validator.validate(copy.deepcopy(arguments))
        self.params = validation.validated_parameters
        self.no_log_values.update(validation._no_log_values)
        for alias_warning in validation._warnings:
            self.warn(f"Both option {alias_warning['option']} and its alias {alias_warning['alias']} are set.")
        if validation.errors.errors:
            self.fail_json(msg=self._validation_message(validation.errors))

    def _validation_message(self, errors) -> str:
        message = errors.msg
        if isinstance(errors[0], UnsupportedError):
            message = f"Unsupported parameters for ({self._name}) module: {message}"
        return message

    def add_no_log_values(self, values) -> None:
        """Secrets derived from the parameters (e.g. a password inside the address) to mask as well."""
        self.no_log_values.update(value for value in values if value)

    def warn(self, warning: str) -> None:
        self._warnings.append(warning)

    def connection_options(self) -> ConnectionOptions:
        """The connection options of the validated arguments; their secrets are scrubbed from the result."""
        options = connection_options_from_params(self.params)
        self.add_no_log_values(options.secrets)
        return options

    def client(self, pool_size: int = 10) -> NomadClient:
        """A NomadClient for the task's connection options; its warnings become the task's warnings."""
        return NomadClient(self.connection_options(), pool_size=pool_size, warn=self.warn)

    def exit_json(self, **kwargs: t.Any) -> t.NoReturn:
        kwargs.setdefault("failed", False)
        self._finish(kwargs)

    def fail_json(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        kwargs.update(failed=True, msg=msg)
        self._finish(kwargs)

    def _finish(self, result: dict) -> t.NoReturn:
        result.setdefault("invocation", {"module_args": self.params})
        if self._warnings:
            result["warnings"] = list(result.get("warnings", [])) + self._warnings
        raise _ModuleExit(remove_values(result, self.no_log_values))


class ModuleLikeActionBase(ActionBase, metaclass=abc.ABCMeta):
    """Subclasses define argument_spec() and run_module(); the controller runs it, no connection needed."""

    _requires_connection = False

    @abc.abstractmethod
    def argument_spec(self) -> ArgumentSpec:
        """The argument spec and its constraints."""

    def takes_connection_options(self) -> bool:
        return set(CONNECTION_ARGUMENT_SPEC) <= set(self.argument_spec().argument_spec)

    def option_values_from_play(self, task_vars: dict) -> dict:
        """Option values from Ansible variables / ini, below the task arguments and above the environment.

        The connection options, when the argument spec has them; override to add others.
        """
        if not self.takes_connection_options():
            return {}
        return play_connection_values(self, task_vars, skip=self._task.args)

    def option_values_from_task_environment(self) -> dict:
        """Connection options from the ``NOMAD_*`` entries of the task's ``environment:`` (templated by
        ansible-core's post-validation: a dict, or a list of dicts on older paths), below the play's values."""
        if not self.takes_connection_options():
            return {}
        environments = self._task.environment or {}
        merged: dict = {}
        for environment in environments if isinstance(environments, list) else [environments]:
            merged.update(environment or {})
        return connection_values_from_environment(merged)

    @abc.abstractmethod
    def run_module(self, module: ActionModuleContext, task_vars: dict) -> t.NoReturn:
        """Do the work; must end with module.exit_json() or module.fail_json(), or raise a NomadOpsError."""

    def failure_fields(self, error: NomadOpsError, module: ActionModuleContext) -> dict:
        """The failed result's keys for an error raised by run_module(); an action adds its own context here."""
        del module
        return failure_fields(error)

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        """The action's error boundary: a NomadOpsError becomes a failed result, like a module's fail_json()."""
        result = super().run(tmp, task_vars)
        del tmp
        try:
            try:
                arguments = self.option_values_from_task_environment()
                arguments.update(self.option_values_from_play(task_vars or {}))
            except NomadOpsError as error:
                raise _ModuleExit(failed_result(error)) from None
            arguments.update(self._task.args)
            module = ActionModuleContext(self, self.argument_spec(), arguments)
            try:
                self.run_module(module, task_vars or {})
            except NomadOpsError as error:
                module.fail_json(**self.failure_fields(error, module))
        except _ModuleExit as finished:
            result.update(finished.result)
            return result
        raise RuntimeError(f"{self._task.action}: run_module() returned without exit_json() or fail_json()")
