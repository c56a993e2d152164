# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every module has an action plugin of the same name and is in the action group: without the action, the play's
ansible_nomad_* variables and the [nomadops_nomad] ini section would not reach it (the one connection model)."""

from __future__ import annotations

import pathlib

import yaml

COLLECTION = pathlib.Path(__file__).resolve().parents[4]
MODULES = sorted(path.stem for path in (COLLECTION / "plugins" / "modules").glob("nomad_*.py"))


def test_every_module_has_an_action_plugin():
    actions = {path.stem for path in (COLLECTION / "plugins" / "action").glob("nomad_*.py")}
    assert MODULES and [name for name in MODULES if name not in actions] == []


def test_every_module_is_in_the_action_group():
    runtime = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    assert [name for name in MODULES if name not in runtime["action_groups"]["nomad"]] == []
