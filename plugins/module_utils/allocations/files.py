# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Files of an allocation directory through Nomad's client file system API (/v1/client/fs/stat|ls|cat): stat,
list, copy to a local file, and the path checks that turn Nomad's answers into one-line errors; and the mode a
file fetched to the controller gets."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id


class AllocPathError(NomadError):
    """A path in the allocation directory that cannot be used as asked (missing, escaping, secret, a directory)."""


def _fs_failure(error, alloc_id, path):
    """A one-line AllocPathError for Nomad's answer about `path`; the host path in Nomad's text is not repeated."""
    text = " ".join(str(getattr(error, "nomad_message", None) or error).split())
    where = f"in allocation {short_id(alloc_id)}"
    answer = dict(status=error.status, address=error.address)
    if "no such file or directory" in text:
        return AllocPathError(f"path {path!r} does not exist {where}", **answer)
    if "escapes the alloc directory" in text:
        return AllocPathError(f"path {path!r} escapes the allocation directory (give a path inside it, such as "
                              "alloc/data/file)", **answer)
    if text == "Permission denied" or error.status == 403:
        return AllocPathError(f"Permission denied: the token needs the read-fs capability to read {path!r} {where}",
                              **answer)
    return error


def stat_path(client, alloc_id, path):
    """Nomad's AllocFileInfo of `path` (Name, IsDir, Size, FileMode, ModTime, ContentType)."""
    try:
        return client.read(f"/v1/client/fs/stat/{alloc_id}", {"path": path}).data or {}
    except NomadError as error:
        raise _fs_failure(error, alloc_id, path) from None


def list_directory(client, alloc_id, path):
    try:
        return client.read(f"/v1/client/fs/ls/{alloc_id}", {"path": path}).data or []
    except NomadError as error:
        raise _fs_failure(error, alloc_id, path) from None


def refuse_unreadable(path, info, alloc_id):
    """Nomad's cat answers 200 with an error text for these; refuse them before reading."""
    parts = [part for part in path.strip("/").split("/") if part]
    if len(parts) >= 2 and parts[1] in ("secrets", "private"):
        raise AllocPathError(f"path {path!r} is in the task's {parts[1]} directory, which Nomad never lets anyone "
                             "read through the API")
    if info.get("IsDir"):
        raise AllocPathError(f"path {path!r} is a directory in allocation {short_id(alloc_id)}; give a file "
                             "(nomad_alloc_fs_info lists directories)")


def copy_file(client, alloc_id, path, handle, expected_size, digest):
    """Stream `path` (raw bytes of /v1/client/fs/cat) into `handle`, updating `digest`; returns the size copied.
    A size that differs from `expected_size` (the stat) fails: cat answers errors as 200 text.

    One thread writes and hashes a chunk while this one receives the next (both release the GIL), so the
    download is not paused while a chunk goes to disk; at most WRITES_IN_FLIGHT chunks wait, in order."""
    size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nomad-fetch-writer") as writer:
        in_flight = deque()
        for chunk in client.stream(f"/v1/client/fs/cat/{alloc_id}", {"path": path}):
            if size + len(chunk) > expected_size:
                # Nothing past the size stat reported is written: a file that grows, or an endpoint that never ends.
                raise AllocPathError(f"reading {path!r} of allocation {short_id(alloc_id)} returned more than the "
                                     f"{expected_size} bytes Nomad's stat reported (the file grew while it was read, "
                                     "or Nomad answered something else); retry")
            in_flight.append(writer.submit(_write_and_hash, handle, digest, chunk))
            size += len(chunk)
            if len(in_flight) > WRITES_IN_FLIGHT:
                in_flight.popleft().result()
        for write in in_flight:
            write.result()
    if size != expected_size:
        raise AllocPathError(f"reading {path!r} of allocation {short_id(alloc_id)} returned {size} bytes, but Nomad's stat "
                             f"says {expected_size} (the file changed while it was read, or Nomad answered an error); retry")
    return size


WRITES_IN_FLIGHT = 4


def _write_and_hash(handle, digest, chunk):
    handle.write(chunk)
    digest.update(chunk)


# --------------------------------------------------------------------------------------------- local copies
def current_umask() -> int:
    """The process umask (reading it means setting it: the window holds the common 022, never 0)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def chmod_like_a_new_file(path) -> None:
    """Give a fetched temporary file the mode a newly created file gets (0666 less the umask), as
    ansible.builtin.fetch leaves it: temporary files are created private."""
    os.chmod(path, 0o666 & ~current_umask())
