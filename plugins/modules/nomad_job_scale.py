#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_job_scale
short_description: Set the count of a Nomad job's task group and wait for the rollout
version_added: 0.1.0
description:
  - Sets the count of task group O(group) of job O(name) (C(POST /v1/job/<id>/scale), like C(nomad job scale)), then
    waits for the rollout like nomad_job.
  - Unchanged (C(ok), nothing sent) when the group's count already is O(count) - Nomad itself would write a new version.
  - Bad input fails with one line and nothing changed - an unknown job or group, a negative count, a stale O(check_index);
    Nomad's refusals (a scaling policy's bounds, an active deployment) in Nomad's words.
author:
  - nomadops.nomad developers (@nomadops)
options:
  name:
    description: The job ID.
    type: str
    required: true
  group:
    description: The task group to scale.
    type: str
    required: true
  count:
    description: The new count (0 or more).
    type: int
    required: true
  message:
    description: The message of the scaling event Nomad records (shown by C(nomad job scaling-events)).
    type: str
  check_index:
    description:
      - Scale only if the job's C(JobModifyIndex) equals this (C(job.JobModifyIndex) of nomad_job's result);
        otherwise fail with Nomad's C(Enforcing job modify index) text.
    type: int
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.rollout_wait
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_PREDICT
notes:
  - Needs C(read-job) and C(scale-job) (or C(submit-job)) in the job's namespace.
seealso:
  - module: nomadops.nomad.nomad_job
  - name: Jobs HTTP API - scale
    description: The Nomad API this module uses.
    link: https://developer.hashicorp.com/nomad/api-docs/jobs#scale-task-group
"""

EXAMPLES = r"""
- name: Five web servers for the sale, recorded with a reason
  nomadops.nomad.nomad_job_scale:
    name: web
    group: app
    count: 5
    message: scaled up for the sale (ticket OPS-42)

- name: Back to two, only if nobody changed the job since it was read
  nomadops.nomad.nomad_job_scale:
    name: web
    group: app
    count: 2
    check_index: "{{ web.job.JobModifyIndex }}"
"""

RETURN = r"""
job:
  description: The job after scaling (ID, Namespace, Type, Version, JobModifyIndex, Status, Stop).
  returned: always
  type: dict
previous_count:
  description: The group's count before.
  returned: always
  type: int
count:
  description: The group's count asked for.
  returned: always
  type: int
eval_id:
  description: The evaluation of the scaling, or null when nothing was sent.
  returned: always
  type: str
deployment:
  description: With O(wait), the deployment the scaling created (the shape nomad_job returns), or null.
  returned: always
  type: dict
summary:
  description: With O(wait), the summaries of the job's current allocations.
  returned: always
  type: list
  elements: dict
failed_allocations:
  description: When the rollout failed, the failure report of nomad_job.
  returned: failure
  type: list
  elements: dict
"""
