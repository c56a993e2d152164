# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The node selector shared by nomad_node_info and the nomad_nodes inventory (each documents its own status)."""

    DOCUMENTATION = r"""
options:
  prefix:
    description:
      - Only nodes whose ID starts with this (Nomad's C(prefix); an even number of hexadecimal digits).
    type: str
  filter:
    description:
      - A go-bexpr expression Nomad evaluates against each full node, for example V(Meta.rack == "r1") or
        V(Attributes["os.name"] == "ubuntu"); combined with the other selector options with C(and).
    type: str
  datacenter:
    description: Only nodes of this datacenter.
    type: str
  node_pool:
    description: Only nodes of this node pool.
    type: str
  node_class:
    description: Only nodes of this node class.
    type: str
"""
