# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Text helpers every runtime shares: messages are one line, allocations are named the same way."""

from __future__ import annotations

SHORT_ID_LENGTH = 8


def one_line(text, max_length=None):
    """`text` (any object) with every run of whitespace, newlines included, turned into one space.

    With `max_length`, longer text is cut and ends in `...` (for server answers quoted in messages).
    """
    flat = " ".join(str(text).split())
    if max_length is not None and len(flat) > max_length:
        return flat[:max_length] + "..."
    return flat


def short_id(allocation_id):
    """The first 8 characters of an allocation ID, as Nomad's CLI shows it."""
    return str(allocation_id or "")[:SHORT_ID_LENGTH]
