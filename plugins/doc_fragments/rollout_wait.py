# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The rollout wait shared by nomad_job, nomad_deployment, nomad_job_revert and nomad_job_scale.

    A module whose O(wait) means something else or has another default (nomad_job's O(state=absent), nomad_deployment's
    default false) keeps its own O(wait) entry, which replaces this one."""

    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait for the rollout of the job version the task wrote - a service job until the deployment that version created
        is C(successful); a job without a deployment until the new version's allocations run (a batch job's complete).
      - Canaries that need a manual promotion are waited for until all are placed and healthy; the task then succeeds with
        C(deployment.requires_promotion) true (promote them with nomadops.nomad.nomad_deployment).
      - A deployment that fails or is cancelled (also when Nomad rolls back with C(auto_revert)), or a placement failure,
        fails the task with one line naming the job, version, deployment and Nomad's description, and
        RV(failed_allocations).
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds O(wait) waits at most. When they pass, the task fails naming the deployment's status, with
        RV(failed_allocations) for the allocations that held the rollout up.
    type: int
    default: 600
  diagnose_lines:
    description:
      - How many of the last lines of stderr and stdout of each failing task RV(failed_allocations) carries.
    type: int
    default: 20
notes:
  - Waits follow Nomad's blocking queries (no polling interval to tune); check mode never waits.
"""
