#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_fs_info
short_description: Stat a file or list a directory in a Nomad allocation's directory
version_added: 0.1.0
description:
  - Reads the allocation directory of one allocation through Nomad's client file system API
    (C(GET /v1/client/fs/stat/<id>) and C(GET /v1/client/fs/ls/<id>), like C(nomad alloc fs)).
  - A directory returns RV(stat) and its entries in RV(files); a file returns RV(stat) only.
  - A path that does not exist, or that escapes the allocation directory, fails with one line naming it.
author:
  - nomadops.nomad developers (@nomadops)
options:
  id:
    description:
      - The allocation ID, or a unique ID prefix of at least two characters.
    type: str
    required: true
  path:
    description:
      - A path relative to the allocation directory, such as V(alloc/logs), V(alloc/data/file) or
        V(web/local/app.conf). V(/) is the allocation directory itself.
    type: str
    default: /
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
  - nomadops.nomad.attributes.CHECK_MODE_READ_ONLY
notes:
  - Needs the C(read-fs) capability in the allocation's namespace.
  - The task's C(secrets) and C(private) directories can be listed and stat-ed, but not read.
seealso:
  - module: nomadops.nomad.nomad_alloc_fetch
  - module: nomadops.nomad.nomad_alloc_logs
  - name: Client file system API
    description: The Nomad API this module reads.
    link: https://developer.hashicorp.com/nomad/api-docs/client#list-files
"""

EXAMPLES = r"""
- name: List the log files of an allocation
  nomadops.nomad.nomad_alloc_fs_info:
    id: 5a22c3f1
    path: alloc/logs
  register: logs_dir

- name: Show their names and sizes
  ansible.builtin.debug:
    msg: "{{ logs_dir.files | map(attribute='Name') | zip(logs_dir.files | map(attribute='Size')) }}"

- name: Stat a file
  nomadops.nomad.nomad_alloc_fs_info:
    id: 5a22c3f1
    path: web/local/app.conf
  register: conf
"""

RETURN = r"""
stat:
  description: Nomad's description of O(path).
  returned: success
  type: dict
  contains:
    Name:
      description: The base name (the allocation ID for V(/)).
      type: str
    IsDir:
      description: Whether it is a directory.
      type: bool
    Size:
      description: Size in bytes.
      type: int
    FileMode:
      description: The mode as Go prints it, for example C(-rw-r--r--) or C(drwxrwxrwx).
      type: str
    ModTime:
      description: The modification time, RFC 3339.
      type: str
    ContentType:
      description: The content type Nomad sniffed.
      type: str
files:
  description: The entries of the directory, sorted by name (empty for a file).
  returned: success
  type: list
  elements: dict
  contains:
    Name:
      description: The entry's name.
      type: str
    IsDir:
      description: Whether it is a directory.
      type: bool
    Size:
      description: Size in bytes.
      type: int
    FileMode:
      description: The mode as Go prints it.
      type: str
    ModTime:
      description: The modification time, RFC 3339.
      type: str
allocation_id:
  description: The full ID of the allocation read.
  returned: success
  type: str
path:
  description: The path read.
  returned: always
  type: str
"""

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.files import list_directory, stat_path
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule, run_with_nomad_errors
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import resolve_allocation_id

ARGUMENT_SPEC = dict(
    id=dict(type="str", required=True),
    path=dict(type="str", default="/"),
)

FILE_KEYS = ("Name", "IsDir", "Size", "FileMode", "ModTime")


def describe(module):
    client = module.client(pool_size=1)
    alloc_id = resolve_allocation_id(client, module.params["id"])["ID"]
    path = module.params["path"]
    stat = stat_path(client, alloc_id, path)
    files = []
    if stat.get("IsDir"):
        files = [{key: entry.get(key) for key in FILE_KEYS} for entry in list_directory(client, alloc_id, path)]
    module.exit_json(changed=False, allocation_id=alloc_id, path=path, stat=stat, files=files)


def main():
    module = NomadAnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not module.params["path"].strip():
        module.fail_json(msg="path is empty: give a path in the allocation directory, such as alloc/logs", path="")
    run_with_nomad_errors(module, lambda: describe(module))


if __name__ == "__main__":
    main()
