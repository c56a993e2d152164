# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Copies a file of a Nomad allocation's directory to the controller.

The documentation lives in plugins/modules/nomad_alloc_fetch.py. Connection options the task does not set
come from the play (``ansible_nomad_*`` variables, ``[nomadops_nomad]`` ini) through ModuleLikeActionBase.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import is_uuid
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.files import (
    chmod_like_a_new_file,
    copy_file,
    refuse_unreadable,
    stat_path,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import resolve_allocation_id
from ansible_collections.nomadops.nomad.plugins.plugin_utils._controller_action import ArgumentSpec, ModuleLikeActionBase

FETCH_ARGUMENT_SPEC = dict(
    id=dict(type="str", required=True),
    src=dict(type="str", required=True),
    dest=dict(type="path", required=True),
    flat=dict(type="bool", default=False),
    validate_checksum=dict(type="bool", default=True),
)
READ_SIZE = 1024 * 1024


class FetchError(OperationFailed):
    """A one-line refusal on the controller side (dest not writable, checksum mismatch)."""


def local_sha1(path):
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(READ_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def destination(dest, src, alloc_id, flat):
    """Where the file lands, like ansible.builtin.fetch: dest/<alloc id>/<src>, or with flat dest itself
    (dest/<basename> when dest ends with a slash).  The path is checked to stay under dest."""
    relative = os.path.normpath(src.strip("/"))
    if flat:
        return os.path.join(dest, os.path.basename(relative)) if dest.endswith(os.sep) else dest
    if not is_uuid(alloc_id):
        raise FetchError(f"refusing to use the allocation ID {alloc_id!r} from Nomad's answer in a path: it is not a UUID")
    return inside(dest, os.path.join(dest, alloc_id, relative))


def inside(dest, path):
    """`path` normalised, when it stays under `dest` (also normalised); else FetchError."""
    base = os.path.normpath(os.path.abspath(dest))
    normalised = os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([base, normalised]) != base or normalised == base:
        raise FetchError(f"the file would land at {normalised!r}, outside dest {dest!r}; check src (no '..' that leaves dest)")
    return normalised


def prepare_directory(path):
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot create the directory {directory!r} for dest: {error.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FetchError(f"dest directory {directory!r} is not writable; choose another dest")
    if os.path.isdir(path):
        raise FetchError(f"dest {path!r} is a directory; with flat=true end dest with a slash to fetch into it")
    return directory


class ActionModule(ModuleLikeActionBase):
    """Copy a file of a Nomad allocation's directory to the controller, streamed and verified."""

    _supports_check_mode = True
    _supports_async = False

    def argument_spec(self) -> ArgumentSpec:
        return ArgumentSpec(argument_spec=dict(CONNECTION_ARGUMENT_SPEC, **FETCH_ARGUMENT_SPEC))

    def run_module(self, module, task_vars):
        with module.client(pool_size=1) as client:
            returned = self._fetch(client, module)
        module.exit_json(**returned)

    def failure_fields(self, error, module):
        """Every failure of the fetch names the src it was asked for."""
        return dict(super().failure_fields(error, module), src=module.params["src"])

    def _fetch(self, client, module):
        params = module.params
        alloc_id = resolve_allocation_id(client, params["id"])["ID"]
        src = params["src"]
        info = stat_path(client, alloc_id, src)
        refuse_unreadable(src, info, alloc_id)
        dest = destination(params["dest"], src, alloc_id, params["flat"])
        if module.check_mode and not os.path.isdir(os.path.dirname(dest) or "."):
            return dict(changed=True, checksum=None, size=info.get("Size"), dest=dest, src=src, allocation_id=alloc_id)
        directory = prepare_directory(dest)
        checksum, size = self._download_beside(client, alloc_id, src, info.get("Size") or 0, dest, directory,
                                               params["validate_checksum"], module.check_mode)
        return dict(changed=checksum[1], checksum=checksum[0], size=size, dest=dest, src=src, allocation_id=alloc_id)

    def _download_beside(self, client, alloc_id, src, expected, dest, directory, validate, check_mode):
        """((sha1, changed), size): the file streamed into a temporary file next to dest (hashed as it streams,
        never read back; not fsynced, like ansible.builtin.fetch), moved over dest only when its content differs
        (and not in check mode)."""
        handle = _temporary_file(directory)
        try:
            digest = hashlib.sha1()
            size = _written(handle, lambda: copy_file(client, alloc_id, src, handle, expected, digest), directory,
                            expected)
            checksum = digest.hexdigest()
            if validate:
                _check_written_size(handle.name, size, src)
            if os.path.isfile(dest) and os.path.getsize(dest) == size and local_sha1(dest) == checksum:
                return (checksum, False), size
            if not check_mode:
                _move(handle.name, dest)
            return (checksum, True), size
        finally:
            if os.path.exists(handle.name):
                os.unlink(handle.name)


def _written(handle, copy, directory, expected):
    """copy() into the open temporary file, closed after it; a local write failure (a full disk) as a FetchError."""
    try:
        with handle:
            return copy()
    except OSError as error:
        raise FetchError(f"cannot write the fetched file into {directory!r}: {error.strerror} (the file is "
                         f"{expected} bytes); free space there or choose another dest") from None


def _check_written_size(temporary, size, src):
    """The temporary file holds every byte received (sha1 was taken from the stream, not from the file)."""
    written = os.path.getsize(temporary)
    if written != size:
        raise FetchError(f"checksum mismatch: {temporary!r} holds {written} bytes, but Nomad sent {size} for {src!r}; "
                         "retry")


def _temporary_file(directory):
    try:
        return tempfile.NamedTemporaryFile(dir=directory, prefix=".nomad_alloc_fetch.", delete=False)
    except OSError as error:
        raise FetchError(f"cannot write into the dest directory {directory!r}: {error.strerror}; choose another dest") from None


def _move(temporary, dest):
    try:
        chmod_like_a_new_file(temporary)
        os.replace(temporary, dest)
    except OSError as error:
        raise FetchError(f"cannot move the fetched file to dest {dest!r}: {error.strerror}") from None
