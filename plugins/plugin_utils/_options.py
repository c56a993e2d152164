# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Options of the controller-side plugin kinds (lookup, actions, connection, inventory), from Ansible's
config system into the one resolution of ``module_utils/common/options.py``.

A plugin declares ``nomadops.nomad.connection`` + ``nomadops.nomad.connection.plugins`` in its
documentation, lets Ansible set its options (``set_options()``), and calls :func:`plugin_connection_options`.
Action plugins are not configurable plugins in ansible-core (their documentation belongs to a module, and
module documentation may not declare ``vars``/``ini``), so :func:`action_option_source` registers the options
of the same two fragments for them with ansible-core's config manager and answers ``get_option_and_origin()``
like a configurable plugin does. No public interface declares options for an action plugin; this is the one place
that reaches into ``C.config`` for it, and tests/unit/plugins/plugin_utils/test_action_option_source.py fails when
ansible-core changes the methods it uses.

Only values whose origin is not ``default`` are passed on, so that the ``NOMAD_*`` fallbacks of the one
argument spec apply below task arguments, inventory file options, ``ansible_nomad_*`` variables and ini
entries, exactly as for modules. Variables are templated before Ansible converts their type, because a
lookup and an action receive them untemplated (``ansible_nomad_address: "{{ nomad_addr }}"``).
Private to the collection.
"""

from __future__ import annotations

import typing as t

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.yaml import yaml_load

from ansible_collections.nomadops.nomad.plugins.doc_fragments import connection as connection_fragment
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
    ConnectionOptions,
    NomadOptionError,
    connection_options_from_params,
    did_you_mean,
    unknown_names,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line


def explicit_option_values(plugin, names: t.Iterable[str], templar=None) -> dict:
    """Options the plugin's config system resolved from anything but the documented default.

    Values that came from Ansible variables are templated with ``templar`` when one is given (a lookup or an
    action receives variables untemplated; a connection plugin receives them templated already).
    """
    values = {}
    for name in names:
        value, origin = plugin.get_option_and_origin(name)
        if origin == "default" or value is None:
            continue
        if templar is not None and str(origin).startswith("var"):
            value = templar.template(value)
        values[name] = value
    return values


def validated_option_values(values: dict, argument_spec: dict, **constraints) -> dict:
    """``values`` validated against ``argument_spec`` (types, choices, NOMAD_* fallbacks, defaults).

    Raises NomadOptionError with one line naming every problem.
    """
    result = ArgumentSpecValidator(argument_spec, **constraints).validate(dict(values))
    if result.error_messages:
        raise NomadOptionError(one_line("; ".join(result.error_messages)))
    return result.validated_parameters


def plugin_connection_options(plugin, templar=None) -> ConnectionOptions:
    """The resolved connection options of a plugin that declares the shared connection fragment."""
    explicit = explicit_option_values(plugin, CONNECTION_ARGUMENT_SPEC, templar=templar)
    return connection_options_from_params(validated_option_values(explicit, CONNECTION_ARGUMENT_SPEC))


def templated_variables(variables: t.Mapping | None, templar, definitions: t.Mapping) -> dict:
    """The variables that ``definitions`` (a plugin's option definitions) read, templated with ``templar``."""
    templated = {}
    for definition in definitions.values():
        for entry in definition.get("vars") or []:
            name = entry["name"]
            if variables and name in variables:
                templated[name] = templar.template(variables[name]) if templar is not None else variables[name]
    return templated


def refuse_unknown_keywords(keywords: t.Iterable[str], known: t.Iterable[str], what: str) -> None:
    """Raise NomadOptionError naming every keyword that is not in ``known``, and the known names."""
    known = sorted(name for name in known if not name.startswith("_"))
    unknown = unknown_names(keywords, known)
    if not unknown:
        return
    plural = "s" if len(unknown) > 1 else ""
    raise NomadOptionError(
        f"{what}: unknown keyword argument{plural} {', '.join(unknown)}{did_you_mean(unknown, known)}; "
        f"known: {', '.join(known)}"
    )


def connection_option_definitions() -> dict:
    """The option definitions of the connection fragment: ``DOCUMENTATION`` with the ``vars``/``ini`` of ``PLUGINS``
    merged in, as ansible-core merges them for a plugin that extends both."""
    fragment = connection_fragment.ModuleDocFragment
    options = yaml_load(fragment.DOCUMENTATION)["options"]
    for name, sources in yaml_load(fragment.PLUGINS)["options"].items():
        options[name] = dict(options[name], **sources)
    return options


class ActionOptionSource:
    """An action plugin's view of the connection options in Ansible's config system: vars and ini of the
    connection fragments, answering get_option_and_origin() like a configurable plugin."""

    plugin_type = "action"

    def __init__(self, plugin_name: str, variables: dict) -> None:
        self.plugin_name = plugin_name
        self.variables = variables

    def get_option_and_origin(self, name: str):
        try:
            return C.config.get_config_value_and_origin(
                name, plugin_type=self.plugin_type, plugin_name=self.plugin_name, variables=self.variables
            )
        except AnsibleError as error:  # a value of the wrong type in a variable or ansible.cfg
            raise NomadOptionError(one_line(error.message)) from None


def action_option_source(action, task_vars: dict | None) -> ActionOptionSource:
    """The connection options' config view for ``action`` (an ActionBase), its variables templated."""
    plugin_name = action._task.resolved_action or action._task.action
    definitions = C.config.get_configuration_definitions("action", plugin_name)
    if not definitions:
        definitions = connection_option_definitions()
        C.config.initialize_plugin_configuration_definitions("action", plugin_name, definitions)
    return ActionOptionSource(plugin_name, templated_variables(task_vars, action._templar, definitions))


def play_connection_values(action, task_vars: dict | None, skip: t.Iterable[str] = ()) -> dict:
    """Connection options an action's play sets (``ansible_nomad_*`` variables, ``[nomadops_nomad]`` ini),
    except the ``skip`` names (those the task sets itself, module_defaults included)."""
    names = [name for name in CONNECTION_ARGUMENT_SPEC if name not in set(skip)]
    return explicit_option_values(action_option_source(action, task_vars), names)
