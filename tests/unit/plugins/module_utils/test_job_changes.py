# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure rules of nomad_job_scale: a count outside the group's scaling block bounds is refused in Nomad's words."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.changes import (
    JobChangeRefused,
    refuse_outside_scaling_policy,
)

BOUNDED = {"Name": "web", "Count": 2, "Scaling": {"Min": 1, "Max": 3, "Enabled": True}}


def test_counts_within_the_bounds_or_without_a_scaling_block_pass():
    for count in (1, 3):
        refuse_outside_scaling_policy("web", BOUNDED, count)
    refuse_outside_scaling_policy("web", {"Name": "web", "Count": 2, "Scaling": None}, 100)
    refuse_outside_scaling_policy("web", {"Name": "web", "Scaling": {"Max": 5}}, 0)  # Min is optional


def test_counts_outside_the_bounds_are_refused_in_nomads_words():
    with pytest.raises(JobChangeRefused, match=r"^job 'web' not scaled: group count was greater than scaling policy "
                                               r"maximum: 4 > 3$"):
        refuse_outside_scaling_policy("web", BOUNDED, 4)
    with pytest.raises(JobChangeRefused, match=r"group count was less than scaling policy minimum: 0 < 1$"):
        refuse_outside_scaling_policy("web", BOUNDED, 0)
