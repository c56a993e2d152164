# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The actions' connection options go through ansible-core's config manager (C.config), which has no public way for
an action plugin to declare options: action_option_source() registers the connection fragment's definitions for the
action. These tests fail loudly when an ansible-core release changes the config manager methods it relies on, and
check that an action really reads ``ansible_nomad_*`` variables through them, on every supported ansible-core."""

from __future__ import annotations

import inspect

from ansible import constants as C
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import play_connection_values

ACTION = "nomadops.nomad.nomad_alloc_info"


class FakeTask:
    resolved_action = ACTION
    action = "nomad_alloc_info"


class FakeAction:
    """What play_connection_values() reads of an ActionBase: its task and its templar."""

    def __init__(self, variables):
        self._task = FakeTask()
        self._templar = Templar(loader=DataLoader(), variables=variables)


def parameters(method):
    return list(inspect.signature(method).parameters)


def test_the_config_manager_methods_keep_the_signatures_the_actions_rely_on():
    assert parameters(C.config.get_configuration_definitions)[:2] == ["plugin_type", "name"]
    assert parameters(C.config.initialize_plugin_configuration_definitions) == ["plugin_type", "name", "defs"]
    assert parameters(C.config.get_config_value_and_origin)[:5] == [
        "config", "cfile", "plugin_type", "plugin_name", "keys"
    ]
    assert "variables" in parameters(C.config.get_config_value_and_origin)


def test_an_action_reads_the_plays_connection_variables_and_skips_what_the_task_sets():
    variables = {"ansible_nomad_address": "https://nomad.example:4646", "ansible_nomad_region": "eu",
                 "ansible_nomad_namespace": "ops"}
    values = play_connection_values(FakeAction(variables), variables, skip=["namespace"])
    assert values == {"address": "https://nomad.example:4646", "region": "eu"}
    assert "address" in C.config.get_configuration_definitions("action", ACTION)
