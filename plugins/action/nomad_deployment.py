# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The action in front of the nomadops.nomad.nomad_deployment module (documented in plugins/modules/)."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.plugin_utils._remote_module_action import NomadModuleAction


class ActionModule(NomadModuleAction):
    """Runs nomad_deployment with the play's ansible_nomad_* variables / [nomadops_nomad] ini options filled in."""
