# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Options of the controller-side plugin kinds (lookup, actions, connection, inventory), from Ansible's
config system into the one resolution of ``module_utils/_options.py``.

A plugin declares ``nomadops.nomad.connection`` + ``nomadops.nomad.connection.plugins`` in its
documentation, lets Ansible set its options (``set_options()``), and calls :func:`plugin_connection_options`.
Only values whose origin is not ``default`` are passed on, so that the ``NOMAD_*`` fallbacks of the one
argument spec apply below task arguments, inventory file options, ``ansible_nomad_*`` variables and ini
entries, exactly as for modules. Private to the collection.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.nomadops.nomad.plugins.module_utils._options import (
    CONNECTION_ARGUMENT_SPEC,
    ConnectionOptions,
    NomadOptionError,
    connection_options_from_params,
)


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
        raise NomadOptionError(" ".join("; ".join(result.error_messages).split()))
    return result.validated_parameters


def plugin_connection_options(plugin, templar=None) -> ConnectionOptions:
    """The resolved connection options of a plugin that declares the shared connection fragment."""
    explicit = explicit_option_values(plugin, CONNECTION_ARGUMENT_SPEC, templar=templar)
    return connection_options_from_params(validated_option_values(explicit, CONNECTION_ARGUMENT_SPEC))
