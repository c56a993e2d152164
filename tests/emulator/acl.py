# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ACL tokens and capability checks (reference §3, §8)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .nomadversion import DEFAULT as DEFAULT_NOMAD
from .nomadversion import NomadVersion

PERMISSION_DENIED = "Permission denied"

# Policy shorthands as Nomad expands them (reference §8).
# `parse-job` is in the read list (acl/policy.go:239-251 at v1.10.5; nomad-jobs-behaviour.md §1.1 step 4).
_READ = {"read-job", "list-jobs", "parse-job", "read-job-scaling", "read-logs", "read-fs", "csi-read-volume",
         "list-scaling-policies"}
_WRITE = _READ | {"alloc-exec", "alloc-lifecycle", "submit-job", "dispatch-job", "scale-job",
                  "csi-write-volume", "csi-mount-volume", "submit-recommendation", "read-scaling-policy"}
_SCALE = {"list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job"}
# Nomad 1.11.1 widened `scale` (row 22 of nomad-alloc-api-changes-1.6-to-1.11.md).
_SCALE_SINCE_1_11_1 = _SCALE | {"read-job", "submit-recommendation"}
SHORTHANDS = {"read": _READ, "write": _WRITE, "deny": set()}


def shorthands(version: NomadVersion = DEFAULT_NOMAD) -> dict:
    return dict(SHORTHANDS, scale=_SCALE_SINCE_1_11_1 if version.scale_policy_reads_jobs else _SCALE)


class PermissionDenied(Exception):
    """Raised when a token lacks a capability; str() is Nomad's body text."""

    def __init__(self, message: str = PERMISSION_DENIED):
        super().__init__(message)


@dataclass
class Token:
    name: str
    secret: str
    management: bool = False
    capabilities: dict = field(default_factory=dict)  # namespace (or "*") -> set of capabilities

    def allows(self, namespace: str, capability: str) -> bool:
        if self.management:
            return True
        granted = self.capabilities.get(namespace)
        if granted is None:
            granted = self.capabilities.get("*", set())
        return capability in granted

    def allows_in_any(self, namespaces, capability: str) -> bool:
        return any(self.allows(ns, capability) for ns in namespaces)


def expand_capabilities(names, version: NomadVersion = DEFAULT_NOMAD) -> set:
    known = shorthands(version)
    expanded = set()
    for name in names or ():
        expanded |= known.get(name, {name})
    return expanded


def token_from_scenario(entry: dict, version: NomadVersion = DEFAULT_NOMAD) -> Token:
    return Token(
        name=str(entry.get("name", "")),
        secret=str(entry["secret"]),
        management=entry.get("type", "client") == "management",
        capabilities={str(ns): expand_capabilities(caps, version) for ns, caps in (entry.get("namespaces") or {}).items()},
    )


def token_from_headers(headers) -> str:
    """X-Nomad-Token (trimmed) wins; else `Authorization: Bearer <first word>` (reference §3)."""
    direct = headers.get("X-Nomad-Token", "").strip()
    if direct:
        return direct
    authorization = headers.get("Authorization", "").strip()
    scheme, rest = (authorization.split(" ", 1) + [""])[:2]
    if scheme.lower() != "bearer":
        return ""
    words = rest.strip().split(" ")
    return words[0] if words else ""
