# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Nomad version the emulator answers as, and the behaviour switches that depend on it.

Every answer that differs between the supported versions asks a named predicate here, never a version string.
Row numbers are those of /work/shared/reference/nomad-alloc-api-changes-1.6-to-1.11.md §1.
"""
from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_VERSIONS = ("1.6.5", "1.10.5", "1.11.3")
DEFAULT_VERSION = "1.10.5"


class UnsupportedVersion(ValueError):
    """A version the emulator cannot answer as; str() says which ones it can."""


def _parts(text: str) -> tuple:
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class NomadVersion:
    text: str

    @classmethod
    def parse(cls, value) -> NomadVersion:
        text = DEFAULT_VERSION if value is None else str(value).strip().lstrip("v")
        if text not in SUPPORTED_VERSIONS:
            raise UnsupportedVersion(f"nomad_version {value!r} is not supported; use one of "
                                     f"{', '.join(SUPPORTED_VERSIONS)}")
        return cls(text)

    def at_least(self, release: str) -> bool:
        return _parts(self.text) >= _parts(release)

    # --- HTTP query parsing and errors ---------------------------------------------------------------
    @property
    def numeric_pagination_tokens(self) -> bool:
        """Row 1: a `<CreateIndex>.<ID>` next_token is compared numerically (#25792, backported to 1.10.2)."""
        return self.at_least("1.10.2")

    @property
    def query_errors_end_request(self) -> bool:
        """Rows 4-5: a bad `per_page` is a 400 and a bad `stale` stops the handlers that check parse() (#20553)."""
        return self.at_least("1.8.0")

    @property
    def error_content_type_set(self) -> bool:
        """Rows 6, 25: error answers always say text/plain, also for logs (#24489)."""
        return self.at_least("1.9.4")

    # --- exec -----------------------------------------------------------------------------------------
    @property
    def exec_close_frame_after_exit(self) -> bool:
        """Row 7: a session that ends normally gets close 1000 (dropped by #19932 in 1.8.0)."""
        return not self.at_least("1.8.0")

    @property
    def exec_swallows_closed_errors(self) -> bool:
        """Row 8: stream errors whose text contains `closed` or `EOF` end the session without a close frame."""
        return self.at_least("1.8.0")

    @property
    def websocket_key_must_be_16_bytes(self) -> bool:
        """Row 29: gorilla/websocket 1.5.3 (Nomad 1.9.0) refuses a key that is not base64 of 16 bytes."""
        return self.at_least("1.9.0")

    @property
    def exec_refuses_terminal_allocs(self) -> bool:
        """Row 10: the server refuses exec on a complete/failed/lost allocation (#18904)."""
        return self.at_least("1.7.0")

    @property
    def exec_token_errors_coded(self) -> bool:
        """Row 11: a token the hosting agent cannot resolve closes with 1008, not 1011 (#18794)."""
        return self.at_least("1.7.0")

    # --- allocations ----------------------------------------------------------------------------------
    @property
    def stop_takes_reschedule(self) -> bool:
        """Rows 12-14: stop reads `reschedule`, new bool texts, DesiredTransition.Reschedule explicit (#26961)."""
        return self.at_least("1.11.0")

    @property
    def batch_stop_fails_tasks(self) -> bool:
        """Row 15: a stopped batch allocation ends `failed` (1.10.3-1.10.5 only; reverted by #26961)."""
        return self.at_least("1.10.3") and not self.at_least("1.11.0")

    @property
    def task_state_has_handle(self) -> bool:
        """Row 18: `TaskHandle` is in TaskStates until 1.10.0 (#24909)."""
        return not self.at_least("1.10.0")

    @property
    def task_state_has_paused(self) -> bool:
        """Row 18: `Paused` is in TaskStates since 1.8.0 (#22201)."""
        return self.at_least("1.8.0")

    # --- ACL ------------------------------------------------------------------------------------------
    @property
    def scale_policy_reads_jobs(self) -> bool:
        """Row 22: the `scale` shorthand also grants read-job and submit-recommendation (1.11.1)."""
        return self.at_least("1.11.1")

    # --- fs, logs, checks -----------------------------------------------------------------------------
    @property
    def logs_denied_status(self) -> int:
        """Row 23: the hosting client answers a logs refusal with 403 since 1.11.1 (500 before)."""
        return 403 if self.at_least("1.11.1") else 500

    @property
    def secret_dirs_ignore_case(self) -> bool:
        """Row 26: the secrets/ and private/ refusal ignores case since 1.9.0 (#24125)."""
        return self.at_least("1.9.0")

    @property
    def check_id_hashes_tls_skip_verify(self) -> bool:
        """Row 27: check IDs also hash `tls_skip_verify` (#24781, 1.9.6)."""
        return self.at_least("1.9.6")

    # --- nodes ----------------------------------------------------------------------------------------
    @property
    def node_legacy_resources(self) -> str:
        """Row 33: node `Resources`/`Reserved` are `filled` (1.6), `empty` objects (1.7-1.10) or `absent` (1.11)."""
        if self.at_least("1.11.0"):
            return "absent"
        return "empty" if self.at_least("1.7.0") else "filled"


DEFAULT = NomadVersion(DEFAULT_VERSION)
