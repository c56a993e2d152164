#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_job_info
short_description: Read Nomad jobs - one by ID or a list - with versions, the stored source, deployments and group counts
version_added: 0.1.0
description:
  - With O(name), the job with that ID (C(GET /v1/job/<id>), the full job); otherwise the jobs of the namespace
    (C(GET /v1/jobs), job stubs, every page), narrowed by O(prefix) and O(filter). O(namespace=*) reads every namespace.
  - A named job that does not exist is not an error - RV(jobs) is empty and a warning names the missing job or namespace.
  - Extras are attached to each job when asked - C(Versions), C(Submission), C(Deployments), C(Summary).
author:
  - nomadops.nomad developers (@nomadops)
options:
  name:
    description:
      - The job ID. With O(namespace=*), the job of that ID in every namespace.
    type: str
  prefix:
    description:
      - Only jobs whose ID starts with this (Nomad's C(prefix)).
    type: str
  filter:
    description:
      - A go-bexpr expression Nomad evaluates against each full job, for example V(Status == "running").
    type: str
  versions:
    description:
      - Attach C(Versions) - Nomad's retained versions of the job, newest first, specs included.
    type: bool
    default: false
  submission:
    description:
      - Attach C(Submission) - the source Nomad stored with the current version (C(Source), C(Format), C(Variables),
        C(VariableFlags), C(Version)), or null when none was stored.
    type: bool
    default: false
  deployments:
    description:
      - Attach C(Deployments) - the job's deployments, newest first.
    type: bool
    default: false
  summary:
    description:
      - Attach C(Summary) - per group the counts of queued, starting, running, complete, failed, lost and unknown
        allocations.
    type: bool
    default: false
  fields:
    description:
      - Keep only these keys of each job (applied after the extras are attached); an unknown key is warned about.
    type: list
    elements: str
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_READ_ONLY
notes:
  - Needs C(read-job) (and C(list-jobs) for lists) in the namespace.
seealso:
  - module: nomadops.nomad.nomad_job
  - name: Jobs HTTP API
    description: The Nomad API this module reads.
    link: https://developer.hashicorp.com/nomad/api-docs/jobs
"""

EXAMPLES = r"""
- name: Read one job with the source it was registered from
  nomadops.nomad.nomad_job_info:
    name: web
    submission: true
  register: web

- name: Show the variables of the running version
  ansible.builtin.debug:
    msg: "{{ web.jobs[0].Submission.Variables if web.jobs else 'no such job' }}"

- name: Running jobs of every namespace, only ID, namespace and version
  nomadops.nomad.nomad_job_info:
    namespace: "*"
    filter: Status == "running"
    fields: [ID, Namespace, Version]

- name: Versions and group counts of the web jobs
  nomadops.nomad.nomad_job_info:
    prefix: web
    versions: true
    summary: true
"""

RETURN = r"""
jobs:
  description:
    - The jobs - the full job for O(name), job stubs for a list - with the extras asked for.
  returned: always
  type: list
  elements: dict
  sample: [{"ID": "web", "Namespace": "default", "Type": "service", "Version": 2, "Status": "running",
            "Summary": {"web": {"Running": 3, "Queued": 0, "Starting": 0, "Complete": 0, "Failed": 0, "Lost": 0, "Unknown": 0}}}]
count:
  description: How many jobs RV(jobs) holds.
  returned: always
  type: int
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import explain_empty_selection
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.info import (
    EXTRAS,
    JOB_INFO_ARGUMENT_SPEC,
    JOB_INFO_MUTUALLY_EXCLUSIVE,
    attach_extras,
    list_jobs,
    named_jobs,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule, run_with_nomad_errors
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import keep_fields


def read_jobs(module):
    params = module.params
    namespace = module.connection_options().namespace
    with module.client(pool_size=4) as client:
        if params["name"] is not None:
            jobs = named_jobs(client, params["name"], namespace)
            if not jobs:
                module.warn(explain_empty_selection(client, {"job": params["name"]}, namespace)
                            or f'job "{params["name"]}" not found at {client.options.address}')
        else:
            jobs = list_jobs(client, namespace, params["prefix"], params["filter"])
        attach_extras(client, jobs, {extra for extra in EXTRAS if params[extra]})
    jobs, unknown = keep_fields(jobs, params["fields"])
    if unknown:
        module.warn(f"fields names keys no job has: {', '.join(unknown)}")
    module.exit_json_with_listings({"jobs": jobs}, changed=False, count=len(jobs))


def main():
    module = NomadAnsibleModule(argument_spec=JOB_INFO_ARGUMENT_SPEC, mutually_exclusive=JOB_INFO_MUTUALLY_EXCLUSIVE,
                                supports_check_mode=True)
    run_with_nomad_errors(module, lambda: read_jobs(module))


if __name__ == "__main__":
    main()
