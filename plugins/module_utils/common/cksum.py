# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The CRC of POSIX `cksum`, computed on the controller to check files moved through exec.

POSIX `cksum` is in every task image that has a shell (coreutils, busybox) and, with coreutils' carry-less
multiplication, checks a file at memory speed, where `sha256sum` took a third of a transfer's time. Its CRC
(polynomial 0x04C11DB7, most significant bit first, the length appended, the result complemented) is the
reflected CRC-32 of zlib over bit-reversed bytes, so zlib computes it in C.
"""

from __future__ import annotations

import zlib

_BIT_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))
_ZERO_REGISTER = 0xFFFFFFFF  # zlib complements its start value: this starts the register at 0, as cksum does


class PosixCksum:
    """Incremental `cksum` of a byte stream: update() with each chunk, then crc() and size."""

    def __init__(self) -> None:
        self.size = 0
        self._reflected = _ZERO_REGISTER

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._reflected = zlib.crc32(data.translate(_BIT_REVERSED), self._reflected)

    def crc(self) -> int:
        """The first number `cksum` prints for the bytes seen so far."""
        length = self.size.to_bytes((self.size.bit_length() + 7) // 8, "little")
        reflected = zlib.crc32(length.translate(_BIT_REVERSED), self._reflected)
        return int(f"{reflected:032b}"[::-1], 2)
