#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_deployment
short_description: Promote, fail, pause or resume a Nomad deployment, or wait for it to end
version_added: 0.1.0
description:
  - Finds a deployment by O(id) (a full ID or a unique prefix) or as the latest deployment of O(job), and moves it to
    O(state) - C(promoted) (its canaries), C(failed), C(paused) or C(running) (resumed). Without O(state) it is only read
    (and waited for with O(wait)).
  - Idempotent - a deployment already in that state is C(ok), also when it is terminal (failing a failed deployment,
    promoting groups already promoted). Any other change of a terminal deployment (successful, failed, cancelled) is
    refused naming its status, in Nomad's words (C(can't promote terminal deployment)); so is promoting a deployment
    without canaries or before its canaries are healthy (C(Task group "web" has 1/2 healthy allocations)).
  - O(state=failed) succeeds (C(changed)) and reports in RV(reverted_job_version) the version Nomad rolled back to when
    the job's update block has C(auto_revert).
  - An ambiguous O(id) prefix is refused listing the matching deployments; nothing is sent.
author:
  - nomadops.nomad developers (@nomadops)
options:
  id:
    description:
      - The deployment ID, or a prefix of it that matches one deployment of the namespace.
      - Exactly one of O(id) and O(job) is required.
    type: str
  job:
    description:
      - The job ID whose latest deployment is meant.
    type: str
  state:
    description:
      - V(promoted) promotes the canaries (all canary groups, or those in O(groups)); their allocations must be healthy.
      - V(failed) fails the deployment (Nomad rolls back when the job has C(auto_revert)).
      - V(paused) pauses it; V(running) resumes a paused deployment.
      - Not set - the deployment is read (and waited for with O(wait)), nothing is changed.
    type: str
    choices: [promoted, failed, paused, running]
  groups:
    description:
      - With O(state=promoted), only these task groups. Each must be a group of the deployment with canaries.
    type: list
    elements: str
  wait:
    description:
      - Wait until the deployment is terminal (C(successful) is C(ok); C(failed) or C(cancelled) fails the task with
        RV(failed_allocations)), or until its canaries are placed, healthy and wait for a promotion
        (RV(deployment.requires_promotion)).
      - Not done for O(state=failed) and O(state=paused), nor in check mode.
      - A deployment that is C(paused) when the wait begins fails the task at once - it does not end until someone
        resumes it (O(state=running)) or fails it; the task says so rather than waiting for O(wait_timeout).
      - Defaults to false here (the other rollout modules wait by default) - reading or pausing a deployment should
        not block.
    type: bool
    default: false
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.rollout_wait
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_PREDICT
notes:
  - Needs C(read-job) to find a deployment and C(submit-job) to change one, in its namespace.
seealso:
  - module: nomadops.nomad.nomad_job
  - module: nomadops.nomad.nomad_job_revert
  - name: Deployments HTTP API
    description: The Nomad API this module uses.
    link: https://developer.hashicorp.com/nomad/api-docs/deployments
"""

EXAMPLES = r"""
# A canary rollout: the job's group has update { canary = 1, max_parallel = 1 }.
- name: Deploy the new version; returns once the canary is healthy and waits for a promotion
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl
  register: web

- name: Check the canary before promoting
  ansible.builtin.assert:
    that: web.deployment.groups.app.unhealthy == 0
  when: web.deployment.requires_promotion

- name: Promote the canaries and wait for the rollout to finish
  nomadops.nomad.nomad_deployment:
    job: web
    state: promoted
    wait: true
  when: web.deployment.requires_promotion

- name: Or give up on the new version (Nomad rolls back when the job has auto_revert)
  nomadops.nomad.nomad_deployment:
    id: "{{ web.deployment.ID }}"
    state: failed
  register: failed

- name: Pause a rollout by its ID prefix, then resume it
  nomadops.nomad.nomad_deployment:
    id: 5a2e
    state: "{{ item }}"
  loop: [paused, running]

- name: Wait for the latest deployment of a job to end
  nomadops.nomad.nomad_deployment:
    job: web
    wait: true
    wait_timeout: 900
"""

RETURN = r"""
deployment:
  description: The deployment after the change, the same shape as nomad_job's C(deployment).
  returned: always
  type: dict
  contains:
    ID:
      description: The deployment ID.
      type: str
    Status:
      description: Nomad's status - running, paused, pending, blocked, unblocking, successful, failed or cancelled.
      type: str
    StatusDescription:
      description: Nomad's description of the status.
      type: str
    requires_promotion:
      description: Whether all canaries are placed and healthy and wait for a manual promotion.
      type: bool
    groups:
      description: Per task group C(desired), C(placed), C(healthy), C(unhealthy), C(canaries), C(promoted).
      type: dict
  sample: {"ID": "5a2e0b1c-3f7e-4c4e-9e55-0a5b1f3e4d21", "Status": "successful",
           "StatusDescription": "Deployment completed successfully", "requires_promotion": false,
           "groups": {"app": {"desired": 2, "placed": 2, "healthy": 2, "unhealthy": 0, "canaries": 1, "promoted": true}}}
eval_id:
  description: The evaluation Nomad created for the change, or null.
  returned: always
  type: str
reverted_job_version:
  description: With O(state=failed), the job version Nomad registered again (auto_revert), or null.
  returned: always
  type: int
summary:
  description: With O(wait), the summaries of the deployment's allocations (like nomad_job's C(summary)).
  returned: always
  type: list
  elements: dict
failed_allocations:
  description:
    - When a waited-for deployment failed, per unhealthy allocation its summary, last task events, failing checks and
      the last O(diagnose_lines) lines of stderr and stdout of the failing tasks.
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.deployments import (
    DEPLOYMENT_ARGUMENT_SPEC,
    DEPLOYMENT_MUTUALLY_EXCLUSIVE,
    DEPLOYMENT_REQUIRED_ONE_OF,
    control_deployment,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule, run_with_nomad_errors


def run(module):
    namespace = module.connection_options().namespace or "default"
    with module.client(pool_size=4) as client:
        result = control_deployment(client, module.params, namespace, module.check_mode)
    module.exit_json(**result)


def main():
    module = NomadAnsibleModule(argument_spec=DEPLOYMENT_ARGUMENT_SPEC, mutually_exclusive=DEPLOYMENT_MUTUALLY_EXCLUSIVE,
                                required_one_of=DEPLOYMENT_REQUIRED_ONE_OF, supports_check_mode=True)
    run_with_nomad_errors(module, lambda: run(module))


if __name__ == "__main__":
    main()
