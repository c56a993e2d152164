# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""go-memdb UUIDFieldIndex argument parsing, which decides Nomad's 500 texts for bad IDs (reference §1, §2)."""
from __future__ import annotations


class IndexError_(ValueError):
    """str() is the memdb message, without the `alloc lookup failed: index error: ` wrapper."""


def _invalid_byte(value: int) -> str:
    char = chr(value)
    if char.isprintable() and value < 0x80 or (0xa0 <= value <= 0xff and char.isprintable()):
        return f"U+{value:04X} '{char}'"
    return f"U+{value:04X}"


def parse_uuid(text: str, *, exact: bool) -> str:
    """Return the lowercase hex (no hyphens) of an ID or prefix, or raise IndexError_ with memdb's text."""
    raw = text.encode("utf-8")
    length = len(raw)
    if exact and length != 36:
        raise IndexError_("UUID must be 36 characters")
    if length > 36:
        raise IndexError_(f"Invalid UUID length. UUID have 36 characters; got {length}")
    hyphens = raw.count(b"-")
    if hyphens > 4:
        raise IndexError_(f'UUID should have maximum of 4 "-"; got {hyphens}')
    sanitized = raw.replace(b"-", b"")
    if len(sanitized) % 2:
        raise IndexError_("Input (without hyphens) must be even length")
    for value in sanitized:
        if not (48 <= value <= 57 or 65 <= value <= 70 or 97 <= value <= 102):
            raise IndexError_(f"Invalid UUID: encoding/hex: invalid byte: {_invalid_byte(value)}")
    return sanitized.decode("ascii").lower()


def lookup_error(err: IndexError_) -> str:
    return f"alloc lookup failed: index error: {err}"
