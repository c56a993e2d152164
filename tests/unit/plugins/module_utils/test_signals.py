# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Signal-name validation: POSIX names, with or without SIG, any case; everything else refused."""

from __future__ import annotations

import signal

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.signals import (
    POSIX_SIGNALS,
    UnknownSignalError,
    normalize_signal,
)


@pytest.mark.parametrize(
    "given, expected",
    [
        ("SIGHUP", "SIGHUP"),
        ("HUP", "SIGHUP"),
        ("hup", "SIGHUP"),
        ("sighup", "SIGHUP"),
        (" SIGTERM ", "SIGTERM"),
        ("usr1", "SIGUSR1"),
        ("SigKill", "SIGKILL"),
        ("WINCH", "SIGWINCH"),
    ],
)
def test_accepted_spellings_become_sigxxx(given, expected):
    assert normalize_signal(given) == expected


@pytest.mark.parametrize("given", ["SIGFOO", "FOO", "9", "SIG", "", "SIGRTMIN", "SIGSIGHUP", "HUP2", None])
def test_unknown_names_are_refused_with_the_valid_list(given):
    with pytest.raises(UnknownSignalError) as caught:
        normalize_signal(given)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"unknown signal {given!r}")
    assert "SIGHUP, SIGILL, SIGINT" in message


def test_every_listed_name_is_a_real_signal_on_this_platform():
    # The table is for Nomad's POSIX clients; the test host is one of them.
    for name in POSIX_SIGNALS:
        assert isinstance(getattr(signal, name), signal.Signals)


def test_table_has_no_duplicates_and_is_sorted():
    assert list(POSIX_SIGNALS) == sorted(set(POSIX_SIGNALS))
