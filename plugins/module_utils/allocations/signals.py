# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""POSIX signal names accepted by nomad_alloc_signal.

Nomad's exec and raw_exec drivers turn a signal name they do not know into SIGINT without telling the
caller, so the module validates the name itself before anything is sent.
"""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOptionError

# The signals of POSIX.1-2017 (<signal.h>), plus SIGWINCH (added in POSIX.1-2024). Real-time signals
# and platform extras (SIGIO, SIGPWR, ...) are left out on purpose: they are not portable across the
# operating systems Nomad clients run on.
POSIX_SIGNALS = (
    "SIGABRT",
    "SIGALRM",
    "SIGBUS",
    "SIGCHLD",
    "SIGCONT",
    "SIGFPE",
    "SIGHUP",
    "SIGILL",
    "SIGINT",
    "SIGKILL",
    "SIGPIPE",
    "SIGPOLL",
    "SIGPROF",
    "SIGQUIT",
    "SIGSEGV",
    "SIGSTOP",
    "SIGSYS",
    "SIGTERM",
    "SIGTRAP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGUSR1",
    "SIGUSR2",
    "SIGVTALRM",
    "SIGWINCH",
    "SIGXCPU",
    "SIGXFSZ",
)


class UnknownSignalError(NomadOptionError):
    """The name is not a POSIX signal; str() is a one-line message listing the valid names."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(
            f"unknown signal {name!r}; use one of the POSIX signal names (the SIG prefix and the case are "
            f"optional): {', '.join(POSIX_SIGNALS)}"
        )


def normalize_signal(name: str) -> str:
    """Return the canonical SIGXXX spelling of `name` (`hup`, `HUP`, `sighup` -> `SIGHUP`)."""
    candidate = (name or "").strip().upper()
    if not candidate.startswith("SIG"):
        candidate = "SIG" + candidate
    if candidate not in POSIX_SIGNALS:
        raise UnknownSignalError(name)
    return candidate
