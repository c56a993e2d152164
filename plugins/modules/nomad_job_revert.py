#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_job_revert
short_description: Revert a Nomad job to an earlier version and wait for the rollout
version_added: 0.1.0
description:
  - Registers the spec of O(version) of job O(name) again as a new version (C(POST /v1/job/<id>/revert), like
    C(nomad job revert)), then waits for its rollout like nomad_job.
  - Unchanged (C(ok), nothing sent) when O(version) is the current version, or when Nomad's plan of that version's spec
    shows no difference from the running job. With C(--diff) the plan is shown as C(nomad job plan) renders it.
  - Bad input fails with one line and nothing changed - an unknown job or version, an O(enforce_prior_version) that is
    not the current version.
author:
  - nomadops.nomad developers (@nomadops)
options:
  name:
    description: The job ID.
    type: str
    required: true
  version:
    description: The job version to go back to (see nomad_job_info's O(nomadops.nomad.nomad_job_info#module:versions)).
    type: int
    required: true
  enforce_prior_version:
    description:
      - Revert only if the current version is this one (C(nomad job revert -check-index)); otherwise fail with Nomad's
        C(Current job has version N; enforcing version M).
    type: int
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.rollout_wait
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_PREDICT_DIFF
notes:
  - Needs C(read-job) and C(submit-job) in the job's namespace.
seealso:
  - module: nomadops.nomad.nomad_job
  - module: nomadops.nomad.nomad_job_info
  - module: nomadops.nomad.nomad_deployment
  - name: Jobs HTTP API - revert
    description: The Nomad API this module uses.
    link: https://developer.hashicorp.com/nomad/api-docs/jobs#revert-to-older-job-version
"""

EXAMPLES = r"""
- name: Read the versions of the job
  nomadops.nomad.nomad_job_info:
    name: web
    versions: true
  register: web

- name: Go back to the version before the current one, unless someone deployed meanwhile
  nomadops.nomad.nomad_job_revert:
    name: web
    version: "{{ web.jobs[0].Version - 1 }}"
    enforce_prior_version: "{{ web.jobs[0].Version }}"
  diff: true
"""

RETURN = r"""
job:
  description: The job after the revert (ID, Namespace, Type, Version, JobModifyIndex, Status, Stop).
  returned: always
  type: dict
eval_id:
  description: The evaluation of the revert, or null when nothing was sent.
  returned: always
  type: str
deployment:
  description: With O(wait), the deployment of the reverted version (the shape nomad_job returns), or null.
  returned: always
  type: dict
summary:
  description: With O(wait), the summaries of the reverted version's allocations.
  returned: always
  type: list
  elements: dict
failed_allocations:
  description: When the rollout failed, the failure report of nomad_job.
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.changes import REVERT_ARGUMENT_SPEC, revert_job
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule, run_with_nomad_errors


def run(module):
    namespace = module.connection_options().namespace or "default"
    with module.client(pool_size=4) as client:
        result = revert_job(client, module.params, namespace, module.check_mode)
    for warning in result.pop("warnings_nomad"):
        module.warn(f"Nomad: {warning}")
    diff_text = result.pop("diff_text")
    if module._diff and diff_text is not None and result["changed"]:
        result["diff"] = dict(prepared=diff_text)
    module.exit_json(**result)


def main():
    module = NomadAnsibleModule(argument_spec=REVERT_ARGUMENT_SPEC, supports_check_mode=True)
    run_with_nomad_errors(module, lambda: run(module))


if __name__ == "__main__":
    main()
