# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The allocation selector shared by nomad_alloc_info, the lifecycle modules and the lookup."""

    DOCUMENTATION = r"""
options:
  id:
    description:
      - Allocation IDs, or unique ID prefixes of at least two characters, resolved like C(nomad alloc status <prefix>).
      - An odd-length prefix is looked up without its last digit (Nomad needs whole bytes) and then matched
        against the full text given. A prefix that matches no allocation, or several, is an error that lists the matches.
      - Prefixes are resolved in O(namespace); use O(namespace=*) to search every namespace.
      - Combined with the other selector options, only the given allocations that also match them are selected.
    type: list
    elements: str
  job:
    description:
      - Only allocations of this job ID (C(JobID)).
    type: str
  task_group:
    description:
      - Only allocations of this task group (C(TaskGroup)).
    type: str
  node:
    description:
      - Only allocations placed on this node, given as node name, full node ID, or unique node ID prefix (like
        C(nomad node status <prefix>); an odd-length prefix is looked up without its last digit).
      - A prefix that several nodes share is an error listing them. Resolving a prefix costs one request
        (C(GET /v1/nodes?prefix=)) and needs C(node:read); names and full IDs cost none.
    type: str
  client_status:
    description:
      - Only allocations whose client status is one of these.
    type: list
    elements: str
    choices: [pending, running, complete, failed, lost, unknown]
  filter:
    description:
      - A raw L(go-bexpr filter expression,https://developer.hashicorp.com/nomad/api-docs#filtering),
        evaluated by Nomad against the full allocation object (for example V(Job.Type == "batch") or
        V("web" in TaskStates)). Field names are case-sensitive Go names; use C(Job.Type), not C(JobType).
      - Nomad answers an invalid expression with status 400, whose text is reported.
    type: str
  prefix:
    description:
      - Only allocations whose ID starts with this hexadecimal prefix (server side, Nomad's C(prefix) parameter).
      - Hyphens are allowed. Nomad only accepts whole bytes, so an odd number of hex digits is sent one digit shorter
        (as Nomad's CLI does) and narrowed with a filter, so that only IDs starting with the full text are selected.
    type: str
notes:
  - >-
    All given selector options are combined with C(and) into one server-side filter expression, with every value
    quoted and escaped, so only matching allocations are transferred. Pages (C(X-Nomad-NextToken)) are followed
    transparently and every allocation is returned once, also on Nomad versions with string-compared page tokens.
  - >-
    When the selection is empty, the O(namespace), O(job) and O(node) given are checked (C(GET /v1/namespace/<name>),
    C(GET /v1/job/<id>), C(GET /v1/nodes)); a selection that matched costs no extra request. Modules that act fail
    with one line naming what does not exist and the address; modules that read warn and return nothing.
  - >-
    The server-side filter expression sent is returned as C(filter), so a result with no allocation shows what
    was asked for (it is visible at default verbosity in ad-hoc runs and with C(-v) in playbooks).
"""
