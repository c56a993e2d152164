#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_fetch
short_description: Copy a file from a Nomad allocation's directory to the controller
version_added: 0.1.0
description:
  - Copies one file of an allocation's directory (for example V(alloc/data/dump.bin) or V(web/local/app.conf))
    to the controller through Nomad's client file system API (C(GET /v1/client/fs/stat/<id>) then
    C(GET /v1/client/fs/cat/<id>)), like C(nomad alloc fs <id> <path>), byte-exact for binary content of any size.
  - This is an action plugin; it runs on the controller and needs no connection to a host.
  - The file is streamed into a temporary file next to the destination in one pass (its SHA-1 is computed from
    the bytes as they arrive), its size is checked against Nomad's stat (Nomad answers read errors with status 200,
    so this is how an error text is told from content) and the written file's against the bytes received
    (O(validate_checksum)), and only then is it moved over the destination.
  - Like M(ansible.builtin.fetch), the file is not synced to disk (no C(fsync)) before the move.
  - Idempotent like M(ansible.builtin.fetch) - when the destination already holds the same content (same size and
    SHA-1), nothing is changed and the task reports no change. Nomad has no checksum API, so the file is always
    read to compare.
  - Refused with one line, leaving nothing under O(dest) - a directory as O(src), a path escaping the allocation
    directory, a file in a task's C(secrets) or C(private) directory, a missing path, a destination directory that
    cannot be written.
author:
  - nomadops.nomad developers (@nomadops)
options:
  id:
    description:
      - The allocation ID, or a unique ID prefix of at least two characters.
    type: str
    required: true
  src:
    description:
      - The file to copy, relative to the allocation directory. Must be a file, not a directory.
    type: str
    required: true
  dest:
    description:
      - A directory on the controller; the file is saved as C(<dest>/<allocation ID>/<src>).
      - With O(flat=true), the file path itself, or a directory when it ends with a slash.
    type: path
    required: true
  flat:
    description:
      - Save to O(dest) directly instead of under the allocation ID and O(src), like M(ansible.builtin.fetch).
    type: bool
    default: false
  validate_checksum:
    description:
      - Check that the written temporary file holds as many bytes as Nomad sent before moving it into place (a
        short write, for example on a full or failing disk, fails the task and leaves dest untouched).
      - The SHA-1 returned as C(checksum) is computed while the bytes stream, so the file is not read a second
        time.
    type: bool
    default: true
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - In check mode the file is read into a temporary file and compared, but O(dest) is not written; when the
        destination directory does not exist yet, a change is reported without reading the file.
  diff_mode:
    support: none
notes:
  - Needs the C(read-fs) capability in the allocation's namespace.
seealso:
  - module: ansible.builtin.fetch
  - module: nomadops.nomad.nomad_alloc_fs_info
  - name: Read File API
    description: The Nomad API this action reads.
    link: https://developer.hashicorp.com/nomad/api-docs/client#read-file
"""

EXAMPLES = r"""
- name: Copy a dump out of an allocation into ./dumps/<alloc id>/alloc/data/dump.bin
  nomadops.nomad.nomad_alloc_fetch:
    id: 5a22c3f1
    src: alloc/data/dump.bin
    dest: ./dumps

- name: Copy a rendered config to one fixed path
  nomadops.nomad.nomad_alloc_fetch:
    id: 5a22c3f1
    src: web/local/app.conf
    dest: /tmp/app.conf
    flat: true
"""

RETURN = r"""
dest:
  description: The path on the controller.
  returned: success
  type: str
  sample: ./dumps/5a22c3f1-1111-2222-3333-444444444444/alloc/data/dump.bin
src:
  description: The path in the allocation directory.
  returned: always
  type: str
checksum:
  description: SHA-1 of the file (null in check mode when nothing was read).
  returned: success
  type: str
size:
  description: Size of the file in bytes.
  returned: success
  type: int
allocation_id:
  description: The full ID of the allocation.
  returned: success
  type: str
"""
