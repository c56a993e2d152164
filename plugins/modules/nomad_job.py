#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_job
short_description: Register, stop or purge a Nomad job, idempotent by Nomad's plan, and wait for the rollout
version_added: 0.1.0
description:
  - Registers a job from HCL2 or JSON (O(spec) or a controller file O(src)), like C(nomad job run), or stops
    (and with O(purge) purges) it, like C(nomad job stop).
  - This is an action plugin; it runs on the controller and needs no connection to a host. O(src) and
    O(variable_files) are found like the C(src) of M(ansible.builtin.template) - in the role's C(files/) and
    C(templates/) directories, then the playbook's, then relative to the playbook. Files are sent as they are,
    without Jinja templating; use O(spec) with P(ansible.builtin.template#lookup) to template one.
  - HCL2 is parsed by the Nomad server (C(POST /v1/jobs/parse)) with the variables sent as HCL assignments; the
    source and those variables are stored with the registration as its C(Submission), so Nomad's UI shows them.
    JSON (a Job, or an object with a top-level C(Job) key as C(nomad job inspect) prints it) and dicts are sent as
    they are.
  - Idempotent through Nomad's plan (C(POST /v1/job/<id>/plan) with the diff) - when the plan's diff type is
    C(None), nothing is registered and the task is C(ok); a reformatted file is therefore unchanged, a stopped job
    is started again. A plan whose only effect is an in-place update of unchanged allocations (a job registered
    with another token, hashicorp/nomad#26810) is not a change.
  - The server parses less strictly than Nomad's CLI, and this module refuses what the CLI refuses - a variable the
    job file does not declare (the server ignores it silently; the declared variables are read on the controller
    with the Python library C(pygohcl)), and file functions such as C(file()) (disabled in server-side parsing;
    inline the content, see the examples).
  - Bad input fails with one line and registers nothing - an HCL syntax error (Nomad's text with line and column),
    a missing or mistyped variable, an undeclared variable, a file function, a JSON spec that is not a job, a
    O(name) that differs from the spec's job ID, a O(src) that does not exist, a O(check_index) conflict, a
    namespace that does not exist, a token without C(submit-job).
  - >-
    With O(wait) (the default) the task waits, with blocking queries, until the rollout is done - the deployment
    the registration created is C(successful); without a deployment (a job without an C(update) block, batch
    jobs) every allocation of the new version runs, and batch allocations have completed. A placement failure
    (a blocked evaluation) fails at once with Nomad's reasons per group, for example
    C(group "cache": 0 of 3 placed: resources exhausted on 3 nodes (memory)). A failed or cancelled deployment
    (also when Nomad rolled back with C(auto_revert)) fails naming job, version, deployment and Nomad's
    StatusDescription, followed by why in the words of C(nomad alloc status) - the first failing check with its
    output, or the task's exit with its last stderr line - for example
    C(job 'web' version 10: deployment df2cc5fd failed: Failed due to unhealthy allocations - rolling back to job
    version 9 (why: alloc dc095913 web.app[0] task "server": Exit Code: 2, stderr: panic: config key database.url
    missing)); RV(failed_allocations) holds the whole report. Canaries that need a manual promotion are waited
    for until all are placed and healthy, then the task succeeds (changed) with
    RV(deployment.requires_promotion=true); an unhealthy canary fails the task like any unhealthy allocation.
  - At C(-v) one line is printed per change of the rollout (placed, running, healthy counts; canaries while they
    wait for a promotion), and with O(state=absent) per change of the count of terminal allocations.
author:
  - nomadops.nomad developers (@nomadops)
options:
  state:
    description:
      - V(present) registers the job; V(absent) stops it (and with O(purge=true) removes it).
    type: str
    choices: [present, absent]
    default: present
  spec:
    description:
      - The job as HCL2 text, JSON text, or a dict (a Job, or an object with a top-level C(Job) key).
      - Mutually exclusive with O(src).
    type: raw
  src:
    description:
      - A job file on the controller (HCL2 or JSON), found like M(ansible.builtin.template)'s C(src).
      - Mutually exclusive with O(spec).
    type: str
  format:
    description:
      - How to read the job. V(auto) - a dict, or text starting with C({), is JSON (unless it is HCL's JSON syntax
        with a top-level C(job) key, which is HCL2); anything else is HCL2.
    type: str
    choices: [auto, hcl2, json]
    default: auto
  variables:
    description:
      - HCL2 input variables (name to value; strings, numbers, booleans, lists and maps). Applied after
        O(variable_files). Every name must be declared by the job file.
      - Needs the Python library C(pygohcl) on the controller; without it the task fails with a message saying
        so rather than sending variables it cannot check.
    type: dict
  variable_files:
    description:
      - HCL variable files (C(name = value) lines) on the controller, found like O(src); a later file wins over an
        earlier one, O(variables) over all of them. Needs C(pygohcl) on the controller.
    type: list
    elements: str
  name:
    description:
      - The job ID. Required with O(state=absent). With O(state=present) it must equal the spec's job ID.
    type: str
  check_index:
    description:
      - Register only if the job's current C(JobModifyIndex) equals this (C(nomad job run -check-index));
        V(0) registers only if the job does not exist yet. RV(plan.job_modify_index) of a check-mode run is the value to
        pass. A conflict fails with Nomad's words and registers nothing.
    type: int
  preserve_counts:
    description:
      - Keep the current count of every group that already exists (for example after a scale), like
        C(nomad job run -preserve-counts). The plan is made with those counts, so a count-only difference is no change.
    type: bool
    default: false
  purge:
    description:
      - With O(state=absent), remove the job and its history instead of only stopping it. Idempotent - a job that is
        gone is C(ok).
    type: bool
    default: false
  wait:
    description:
      - Wait until the rollout is done (O(state=present)) or until every allocation is terminal (O(state=absent)).
    type: bool
    default: true
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.rollout_wait
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - In check mode the job is parsed and planned only; nothing is registered, stopped or purged.
  diff_mode:
    support: full
    details:
      - With C(--diff) the plan is shown the way C(nomad job plan) prints it, with the scheduler's per-group updates
        (create, destroy, in-place update, create/destroy update, canary, migrate) and placement failures.
requirements:
  - pygohcl (on the controller, only for O(variables) and O(variable_files))
notes:
  - Needs C(submit-job) in the job's namespace (C(parse-job) is enough for the parse, C(read-job) for the waits;
    the failure report reads logs with C(read-logs)).
  - A job's namespace is the spec's C(namespace) when it has one, else O(namespace); both set and different is refused.
  - C(nomad job run) would read files referenced by C(file()) on the machine it runs on; the Nomad server refuses
    file functions, so render such content on the controller (see the examples).
  - This action runs in the controller's C(ansible-playbook) process. The C(NOMAD_*) variables of the task's (or
    play's) C(environment) keyword are read as a module would read them, below the task options, C(module_defaults)
    and the C(ansible_nomad_<option>) variables; then the C(NOMAD_*) variables of the controller's own environment.
  - Waiting reads the evaluation and then the deployment (or, without one, the job's allocations) with Nomad's
    blocking queries - one request per change of what is watched, no polling.
seealso:
  - module: nomadops.nomad.nomad_job_info
  - name: Jobs HTTP API
    description: The Nomad API this action uses.
    link: https://developer.hashicorp.com/nomad/api-docs/jobs
"""

EXAMPLES = r"""
# In roles/web/tasks/main.yml: src and variable_files are found in roles/web/files/ (or templates/)
- name: Deploy the role's files/web.nomad.hcl with variables and a variable file
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl
    variable_files:
      - prod.vars.hcl
    variables:
      image: "registry.example.com/web:{{ web_version }}"
      replicas: 3

- name: In CI - show what would change, register nothing (run with --check --diff)
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl
    variables:
      image: "registry.example.com/web:{{ web_version }}"
  check_mode: true
  diff: true
  register: web_plan

- name: Register only if nobody changed the job since the plan above
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl
    variables:
      image: "registry.example.com/web:{{ web_version }}"
    check_index: "{{ web_plan.plan.job_modify_index }}"

- name: File functions are disabled on the server - inline the file with a lookup instead of file("app.conf")
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl
    variables:
      app_conf: "{{ lookup('ansible.builtin.template', 'app.conf.j2') }}"
  # web.nomad.hcl declares: variable "app_conf" { type = string }
  # and uses it in a template block: data = var.app_conf

- name: Deploy and show why the rollout failed
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl
    variables:
      version: "10"
  register: rollout
  ignore_errors: true
# A real result (a new version whose task exits at start; the group's update block has auto_revert = true):
#   msg: >-
#     job 'web' version 10: deployment df2cc5fd failed: Failed due to unhealthy allocations - rolling back to job
#     version 9 (why: alloc dc095913 web.app[0] task "server": Exit Code: 2, stderr: panic: config key database.url missing)
#   deployment: {ID: df2cc5fd-25da-455f-8e02-da38f9e3c4b0, Status: failed, requires_promotion: false,
#                StatusDescription: Failed due to unhealthy allocations - rolling back to job version 9,
#                groups: {app: {desired: 2, placed: 1, healthy: 0, unhealthy: 1, canaries: 0, promoted: false}}}
#   failed_allocations:
#     - id: dc095913
#       summary: {name: web.app[0], node: node-1, client_status: failed, health: unhealthy, ...}
#       checks: []
#       tasks:
#         - task: server
#           state: dead
#           failed: true
#           events:
#             - {type: Started, message: Task started by client, time: "2026-12-07T17:01:46Z"}
#             - {type: Terminated, message: "Exit Code: 2", time: "2026-12-07T17:01:46Z"}
#             - {type: Alloc Unhealthy, message: Unhealthy because of failed task, time: "2026-12-07T17:01:46Z"}
#           stderr_lines: ["panic: config key database.url missing"]
#           stdout_lines: ["starting v3"]

- name: Deploy a new version as canaries; the task returns once they are placed and healthy
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl   # its group's update block has canary = 1 and no auto_promote
    variables:
      version: "11"
  register: canary

- name: Look at the canaries before promoting them
  nomadops.nomad.nomad_alloc_info:
    job: web
    checks: true
  when: canary.deployment.requires_promotion

- name: Promote the canaries and wait until the rollout is done
  nomadops.nomad.nomad_deployment:
    id: "{{ canary.deployment.ID }}"
    state: promoted
    wait: true
  when: canary.deployment.requires_promotion

- name: Connection options for the play, with module_defaults
  nomadops.nomad.nomad_job:
    src: web.nomad.hcl
  module_defaults:
    group/nomadops.nomad.nomad:
      address: https://nomad.example.com:4646
      token: "{{ vault_nomad_token }}"

- name: Register a job from JSON, as nomad job inspect prints it, keeping counts set by nomad job scale
  nomadops.nomad.nomad_job:
    spec: "{{ lookup('ansible.builtin.file', 'web.json') }}"
    preserve_counts: true

- name: Run a batch job and show why it failed
  nomadops.nomad.nomad_job:
    src: migrate.nomad.hcl
    diagnose_lines: 50
  register: migration
  ignore_errors: true

- name: Print the last stderr lines of each failed task
  ansible.builtin.debug:
    msg: "{{ migration.failed_allocations | map(attribute='tasks') | flatten | map(attribute='stderr_lines', default=[]) }}"
  when: migration is failed

- name: Stop a job
  nomadops.nomad.nomad_job:
    name: web
    state: absent

- name: Stop and purge a job (idempotent; a job that is gone is ok)
  nomadops.nomad.nomad_job:
    name: web
    state: absent
    purge: true

# Ad hoc, from the directory holding the file:
#   ansible localhost -m nomadops.nomad.nomad_job -a 'src=web.nomad.hcl'
"""

RETURN = r"""
job:
  description: The job after the task (ID, Namespace, Type, Version, JobModifyIndex, Status, Stop); null when it does not exist.
  returned: always
  type: dict
  sample: {"ID": "web", "Namespace": "default", "Type": "service", "Version": 3, "JobModifyIndex": 120,
           "Status": "running", "Stop": false}
plan:
  description:
    - Nomad's plan - C(changed), the diff type (V(None), V(Added), V(Edited), V(Deleted)), C(job_modify_index) (the value for
      O(check_index)), C(desired_updates) (per group, the scheduler's counts) and C(failed_groups) (groups that would not be placed).
  returned: state=present
  type: dict
  sample: {"changed": true, "diff_type": "Edited", "job_modify_index": 118,
           "desired_updates": {"web": {"Place": 0, "DestructiveUpdate": 3, "Ignore": 0}}, "failed_groups": []}
  contains:
    changed:
      description: Whether the plan's diff changes the job (its type is not V(None)).
      type: bool
    diff_type:
      description: The diff type of the job.
      type: str
    job_modify_index:
      description: The job's current C(JobModifyIndex) (V(0) when it does not exist), the value for O(check_index).
      type: int
    desired_updates:
      description: Per group, the scheduler's counts (Place, Stop, InPlaceUpdate, DestructiveUpdate, Canary, ...).
      type: dict
    failed_groups:
      description: The groups the scheduler could not place.
      type: list
      elements: str
eval_id:
  description: The evaluation of the registration or stop; null when nothing was sent.
  returned: always
  type: str
deployment:
  description:
    - The deployment the registration created (ID, Status, StatusDescription, requires_promotion, and per group desired, placed,
      healthy, unhealthy, canaries, promoted); null when there is none or nothing was waited for.
  returned: state=present
  type: dict
  contains:
    ID:
      description: The deployment ID.
      type: str
    Status:
      description: Nomad's status of the deployment (V(running), V(successful), V(failed), V(cancelled), ...).
      type: str
    StatusDescription:
      description: Nomad's description of the status.
      type: str
    requires_promotion:
      description: Canaries are placed and healthy and wait for a promotion (promote them with M(nomadops.nomad.nomad_deployment) and V(state=promoted)).
      type: bool
    groups:
      description: Per group C(desired), C(placed), C(healthy), C(unhealthy), C(canaries), C(promoted).
      type: dict
summary:
  description: One short entry per allocation of the new version (as in M(nomadops.nomad.nomad_alloc_info)) after the wait.
  returned: state=present
  type: list
  elements: dict
failed_allocations:
  description:
    - When the rollout failed - per failed or unhealthy allocation of the new version (at most 5) its C(summary), C(id), failing
      C(checks) (name, service, status, output) and C(tasks) (task, state, failed, the last 3 C(events), and for failing tasks
      C(stderr_lines) and C(stdout_lines), the last O(diagnose_lines) lines, at most 8 KiB each).
    - When O(wait_timeout) passed first, the allocations of the deployment that had no health verdict yet are reported
      too (what held the rollout up).
  returned: failure
  type: list
  elements: dict
  sample:
    - id: dc095913
      summary: {"id": "dc095913", "name": "web.app[0]", "node": "node-1", "client_status": "failed",
                "desired_status": "run", "health": "unhealthy", "modified": "2026-12-07T17:01:46Z", "tasks": []}
      checks: []
      tasks:
        - task: server
          state: dead
          failed: true
          events:
            - {"type": "Terminated", "message": "Exit Code: 2", "time": "2026-12-07T17:01:46Z"}
            - {"type": "Alloc Unhealthy", "message": "Unhealthy because of failed task", "time": "2026-12-07T17:01:46Z"}
          stderr_lines: ["panic: config key database.url missing"]
          stdout_lines: ["starting v3"]
diff:
  description: With C(--diff), C(prepared) holds the plan as C(nomad job plan) prints it.
  returned: state=present and diff mode
  type: dict
"""
