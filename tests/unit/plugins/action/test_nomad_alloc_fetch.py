# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fetch action's one-pass check (the written temporary file is compared by size with the bytes received)
and what a local write failure becomes."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.nomadops.nomad.plugins.action.nomad_alloc_fetch import FetchError, _check_written_size, _written


def test_a_complete_write_passes(tmp_path):
    written = tmp_path / "part"
    written.write_bytes(b"\x00\xff" * 1000)
    _check_written_size(str(written), 2000, "alloc/data/dump.bin")


def test_a_short_write_fails_naming_both_sizes_and_src(tmp_path):
    written = tmp_path / "part"
    written.write_bytes(b"abc")
    with pytest.raises(FetchError) as raised:
        _check_written_size(str(written), 4, "alloc/data/dump.bin")
    assert str(raised.value) == (f"checksum mismatch: {str(written)!r} holds 3 bytes, but Nomad sent 4 for "
                                 "'alloc/data/dump.bin'; retry")


def test_a_full_disk_is_one_line_naming_the_directory_and_the_size(tmp_path):
    def copy_to_a_full_disk():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    handle = open(tmp_path / "part", "wb")
    with pytest.raises(FetchError) as raised:
        _written(handle, copy_to_a_full_disk, str(tmp_path), 268435456)
    assert str(raised.value) == (f"cannot write the fetched file into {str(tmp_path)!r}: No space left on device "
                                 "(the file is 268435456 bytes); free space there or choose another dest")
    assert handle.closed


def test_a_copy_that_succeeds_returns_its_size_with_the_file_closed(tmp_path):
    handle = open(tmp_path / "part", "wb")
    assert _written(handle, lambda: handle.write(b"abc"), str(tmp_path), 3) == 3
    assert handle.closed and (tmp_path / "part").read_bytes() == b"abc"
