# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PosixCksum against the real POSIX `cksum` of this machine, the tool the connection plugin's scripts run."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.common.cksum import PosixCksum


def real_cksum(data: bytes) -> tuple:
    crc, size = subprocess.run(["cksum"], input=data, capture_output=True, check=True).stdout.split()
    return int(crc), int(size)


def cksum_of(*chunks: bytes) -> tuple:
    cksum = PosixCksum()
    for chunk in chunks:
        cksum.update(chunk)
    return cksum.crc(), cksum.size


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65535, 65536, 1 << 24 | 3])
def test_crc_and_size_are_those_of_cksum(size):
    data = os.urandom(size)
    assert cksum_of(data) == real_cksum(data)


def test_known_values():
    assert cksum_of(b"") == (4294967295, 0)
    assert cksum_of(b"123456789") == (930766865, 9)   # CRC-32/CKSUM check value, with the length appended


def test_chunking_does_not_change_the_crc():
    data = os.urandom(300_001)
    assert cksum_of(data[:1], data[1:4096], data[4096:], b"") == cksum_of(data) == real_cksum(data)
