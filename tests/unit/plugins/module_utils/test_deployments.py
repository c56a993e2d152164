# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure rules of nomad_deployment: which groups a promotion targets, when a deployment already is in the state
asked for, the refusals (terminal status, no canaries, unhealthy canaries) in Nomad's words, and a wait that meets a
paused deployment."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.deployments import (
    DeploymentRefused,
    RolloutFailed,
    already_in_state,
    promotion_targets,
    refuse_transition,
    wait_for_deployment,
)


def deployment(status="running", **groups):
    return {"ID": "5a2e0b1c-0000-4000-8000-000000000000", "JobID": "web", "JobVersion": 1, "Status": status,
            "StatusDescription": "Deployment is " + status, "TaskGroups": groups}


CANARY = {"DesiredCanaries": 1, "HealthyAllocs": 1, "Promoted": False}
PLAIN = {"DesiredCanaries": 0, "HealthyAllocs": 2, "Promoted": False}


def test_promotion_targets_every_canary_group_or_those_named():
    both = deployment(web=CANARY, cache=PLAIN)
    assert list(promotion_targets(both, [])) == ["web"]
    assert list(promotion_targets(both, ["web"])) == ["web"]
    with pytest.raises(DeploymentRefused, match="group 'cache' has no canaries to promote"):
        promotion_targets(both, ["cache"])
    with pytest.raises(DeploymentRefused, match="has no group 'api'"):
        promotion_targets(both, ["api"])
    with pytest.raises(DeploymentRefused, match=r"has no canaries to promote \(status running\)"):
        promotion_targets(deployment(cache=PLAIN), [])


def test_already_in_state_is_ok_even_when_terminal():
    promoted = deployment("successful", web=dict(CANARY, Promoted=True))
    assert already_in_state(promoted, "promoted", [])
    assert already_in_state(deployment("failed", web=CANARY), "failed", [])
    assert not already_in_state(deployment("running", web=CANARY), "paused", [])


def test_refusals_name_the_status_in_nomads_words():
    with pytest.raises(DeploymentRefused, match=r"can't pause terminal deployment \(status successful"):
        refuse_transition(deployment("successful", web=CANARY), "paused", [])
    with pytest.raises(DeploymentRefused, match=r"can't resume terminal deployment \(status failed"):
        refuse_transition(deployment("failed", web=CANARY), "running", [])
    unhealthy = deployment(web=dict(CANARY, HealthyAllocs=0))
    with pytest.raises(DeploymentRefused, match='Task group "web" has 0/1 healthy allocations'):
        refuse_transition(unhealthy, "promoted", [])
    refuse_transition(deployment(web=CANARY), "promoted", [])  # healthy canaries: allowed


def test_a_wait_that_meets_a_paused_deployment_says_so_without_asking_nomad():
    paused = deployment("paused", web=CANARY)
    with pytest.raises(RolloutFailed, match=r"version 1 is paused \(Deployment is paused\) and ends only when resumed "
                                            r"or failed: resume it with nomadops.nomad.nomad_deployment state=running") as raised:
        wait_for_deployment(None, paused, {"wait_timeout": 600, "diagnose_lines": 20}, None)
    assert raised.value.details["deployment"]["Status"] == "paused"
