# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fetch action's one-pass check: the written temporary file is compared by size with the bytes received."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.action.nomad_alloc_fetch import FetchError, _check_written_size


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
