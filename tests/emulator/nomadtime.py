# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Time and duration formats Nomad uses on the wire."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def now_ns() -> int:
    return time.time_ns()


def rfc3339(ns) -> str:
    """Go's time.Time JSON form (RFC3339 with trimmed nanoseconds); zero time for None."""
    if not ns:
        return ZERO_TIME
    seconds, fraction = divmod(int(ns), 1_000_000_000)
    text = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + "Z"


def parse_go_duration(text: str) -> float:
    """Seconds for a Go duration string (time.ParseDuration); raises ValueError when Go would."""
    if text in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    body = text
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if not match or match.group(1) == ".":
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return sign * total


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class GoParseBoolError(ValueError):
    pass


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool; the error's str() is Go's message."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise GoParseBoolError(f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


def go_quote(text: str) -> str:
    """An approximation of Go's %q for the strings that reach error messages."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}" if ord(char) > 0xff else f"\\x{ord(char):02x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)
