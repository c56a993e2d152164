# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Attribute documentation, so that every plugin describes the same behaviour with the same words."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/nomadops.nomad.nomad) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - nomadops.nomad.nomad
"""

    CHECK_MODE_READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state, so it runs the same in check mode.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
"""

    CHECK_MODE_PREDICT = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - In check mode the allocations are looked up and the result predicts what would change, without acting.
  diff_mode:
    support: none
"""

    CHECK_MODE_PREDICT_DIFF = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - In check mode the allocations are looked up and the result predicts what would change, without acting.
  diff_mode:
    support: full
    details:
      - With C(--diff), each allocation that changed (or would change in check mode) is shown with its short ID,
        name, node, client and desired status, and what changed (desired status, signalled or restarted tasks).
"""

    CHECK_MODE_NONE = r"""
options: {}
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
"""
