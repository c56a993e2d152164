# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fault injection rules set through the control API."""
from __future__ import annotations

import re

ACTIONS = ("status", "delay", "drop", "drop_mid_body", "stall", "exec_close_early", "exec_drop_after_bytes",
           "redirect", "rewrite_body", "endless_pages")
# Hostile or broken endpoints: `redirect` answers `status` (default 302) with `Location: location` instead of
# handling the request (the exec upgrade included); `rewrite_body` replaces the text `old` with `new` in the
# answer's body (an ID that is not a UUID); `endless_pages` gives a listing's answer a new, never repeated
# X-Nomad-NextToken (a listing that never ends).
HOSTILE_ACTIONS = ("redirect", "rewrite_body", "endless_pages")
# Actions a streamed answer (fs logs/stream) applies itself inside its payloads; optional after_bytes.
STREAM_ACTIONS = ("drop_mid_body", "stall")
# Actions the exec handler takes itself (after the upgrade); the HTTP-level fault middleware skips them.
EXEC_ACTIONS = ("exec_close_early", "exec_drop_after_bytes")


class FaultRuleError(ValueError):
    """A rule posted to /_emulator/faults is malformed."""


class Faults:
    def __init__(self):
        self._rules: list[dict] = []

    def add(self, rule: dict) -> dict:
        if not isinstance(rule, dict):
            raise FaultRuleError("a fault rule must be a JSON object")
        action = rule.get("action")
        if action not in ACTIONS:
            raise FaultRuleError(f"action must be one of {', '.join(ACTIONS)}")
        try:
            pattern = re.compile(str(rule.get("path", "")))
        except re.error as err:
            raise FaultRuleError(f"path is not a valid regular expression: {err}") from err
        count = rule.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            raise FaultRuleError("count must be an integer")
        if action == "exec_drop_after_bytes":
            after = rule.get("after_bytes")
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                raise FaultRuleError("exec_drop_after_bytes needs after_bytes, a non-negative integer")
        if action in STREAM_ACTIONS and rule.get("after_bytes") is not None:
            after = rule["after_bytes"]
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                raise FaultRuleError(f"{action} after_bytes must be a non-negative integer")
        _check_hostile_rule(action, rule)
        stored = dict(rule, count=count)
        stored["_pattern"] = pattern
        self._rules.append(stored)
        return public_view(stored)

    def clear(self):
        self._rules.clear()

    def rules(self) -> list[dict]:
        return [public_view(rule) for rule in self._rules]

    def take(self, kind, method: str, path: str):
        """Consume one hit of the first live rule matching; kind None matches every HTTP-level action."""
        for rule in self._rules:
            if rule["count"] <= 0:
                continue
            if kind is None and rule["action"] in EXEC_ACTIONS:
                continue
            if kind is not None and rule["action"] != kind:
                continue
            wanted_method = rule.get("method")
            if wanted_method and wanted_method.upper() != method.upper():
                continue
            if not rule["_pattern"].search(path):
                continue
            rule["count"] -= 1
            return public_view(rule)
        return None


def _check_hostile_rule(action: str, rule: dict) -> None:
    if action == "redirect":
        if not isinstance(rule.get("location"), str) or not rule["location"]:
            raise FaultRuleError("redirect needs location, the URL to redirect to")
        status = rule.get("status", 302)
        if not isinstance(status, int) or isinstance(status, bool) or not 300 <= status < 400:
            raise FaultRuleError("redirect status must be a 3xx integer")
    if action == "rewrite_body":
        if not isinstance(rule.get("old"), str) or not rule["old"] or not isinstance(rule.get("new"), str):
            raise FaultRuleError("rewrite_body needs old (non-empty text) and new (text)")


def public_view(rule: dict) -> dict:
    return {key: value for key, value in rule.items() if not key.startswith("_")}
