# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The allocation selector: its argument spec, the one server-side bexpr filter it becomes, and
short-ID resolution with the semantics of `nomad alloc status <prefix>`."""

from __future__ import annotations

import re
import unicodedata

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadPermissionDeniedError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import NomadOptionError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id

CLIENT_STATUSES = ("pending", "running", "complete", "failed", "lost", "unknown")
SELECTOR_KEYS = ("id", "job", "task_group", "node", "client_status", "filter", "prefix")
ALLOCATIONS_PATH = "/v1/allocations"

SELECTOR_ARGUMENT_SPEC = dict(
    id=dict(type="list", elements="str"),
    job=dict(type="str"),
    task_group=dict(type="str"),
    node=dict(type="str"),
    client_status=dict(type="list", elements="str", choices=list(CLIENT_STATUSES)),
    filter=dict(type="str"),
    prefix=dict(type="str"),
)

MAX_LISTED_MATCHES = 10
_HEX = re.compile(r"^[0-9a-fA-F-]+$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class SelectorError(NomadOptionError):
    """A selector that cannot work, or an ID that does not resolve to exactly one allocation."""


class AllocationNotFoundError(NotFoundError):
    """No allocation has the given ID or prefix."""


class AmbiguousPrefixError(SelectorError):
    """Several allocations start with the given prefix."""


# --------------------------------------------------------------------------------------------- quoting
_SHORT_ESCAPES = {"\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v"}


def selector_of(params):
    """The selector part of a module's (or lookup's) parameters."""
    return {key: params.get(key) for key in SELECTOR_KEYS}


def _is_printable(char):
    if char == " ":
        return True
    return unicodedata.category(char)[0] not in ("C", "Z")


def _go_escape(char):
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if char == '"':
        return "\\x22"
    if 0xD800 <= code <= 0xDFFF:
        raise SelectorError(f"value contains a lone surrogate (U+{code:04X}), which is not valid text")
    if _is_printable(char):
        return char
    if code < 0x80:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _has_surrogate(text):
    return any(0xD800 <= ord(char) <= 0xDFFF for char in text)


def bexpr_quote(value):
    """A go-bexpr string literal that evaluates to exactly `value`, whatever characters it holds.

    go-bexpr's grammar ends a double-quoted literal at the first `"` even after a backslash
    (`DoubleStringChar <- !'"' .`) and then applies Go's strconv.Unquote, so a quote is written `\\x22`.
    A quoted text shaped like `/a/b` is read as a JSON-pointer selector (its text loses the slash), so a
    leading slash is written `\\x2f`.  Backslashes and control characters get Go escapes.  Values with a
    quote but no backtick or carriage return are written as Go raw strings in backticks instead.
    """
    value = str(value)
    if '"' in value and "`" not in value and "\r" not in value and not _has_surrogate(value):
        return "`" + value + "`"  # a Go raw string reads more naturally than \x22 escapes
    body = "".join(_go_escape(char) for char in value)
    if body.startswith("/"):
        body = "\\x2f" + body[1:]
    return '"' + body + '"'


def _equals(field, value):
    return f"{field} == {bexpr_quote(value)}"


def _any_of(field, values):
    clauses = [_equals(field, value) for value in values]
    return "(" + " or ".join(clauses) + ")"


# More clauses than this make a request line longer than proxies in front of Nomad accept (nginx: 8 KiB by
# default); beyond it the IDs are matched on the client side instead.
FILTER_CLAUSE_LIMIT = 64


def id_filter(allocation_ids):
    """`(ID == "..." or ...)` for full allocation IDs."""
    return _any_of("ID", allocation_ids)


def short_id_filter(allocation_ids):
    """id_filter() when it fits a request line (FILTER_CLAUSE_LIMIT), else None: the caller keeps the IDs."""
    return id_filter(allocation_ids) if len(allocation_ids) <= FILTER_CLAUSE_LIMIT else None


def short_job_filter(job_ids):
    """`(JobID == "..." or ...)` when it fits a request line, else None."""
    return _any_of("JobID", job_ids) if 0 < len(job_ids) <= FILTER_CLAUSE_LIMIT else None


def only_ids(stubs, wanted):
    """The stubs whose ID is in `wanted` (a set), in their order."""
    return [stub for stub in stubs if stub["ID"] in wanted]


# --------------------------------------------------------------------------------------------- filter
def selector_filter(selector):
    """The selector (a dict with SELECTOR_KEYS; `id` is not part of it) as ONE bexpr expression, or None."""
    clauses = []
    if selector.get("job"):
        clauses.append(_equals("JobID", selector["job"]))
    if selector.get("task_group"):
        clauses.append(_equals("TaskGroup", selector["task_group"]))
    if selector.get("node"):
        node = selector["node"]
        node_id = selector.get("node_id") or node  # node_id: a node ID prefix resolved by resolve_node_selector()
        clauses.append(f"({_equals('NodeID', node_id)} or {_equals('NodeName', node)})")
    statuses = _unique(selector.get("client_status") or [])
    if statuses:
        clauses.append(_any_of("ClientStatus", statuses))
    raw = selector.get("filter")
    if raw is not None and raw.strip():
        clauses.append(f"({raw.strip()})")
    if not clauses:
        return None
    return " and ".join(clauses)


def _unique(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


# --------------------------------------------------------------------------------------------- prefixes
def _hex_digits(text):
    return text.replace("-", "")


def check_hex_id(text, option="id"):
    """Reject, before any request, what Nomad would answer with a 500 index error."""
    if len(_hex_digits(text)) < 2:
        raise SelectorError(f'{option} "{text}" must contain at least two characters')
    if not _HEX.match(text):
        raise SelectorError(
            f'{option} "{text}" is not an allocation ID or ID prefix (only hexadecimal digits and hyphens)'
        )
    if len(text) > 36 or text.count("-") > 4:
        raise SelectorError(f'{option} "{text}" is longer than an allocation ID')


def even_length_prefix(text):
    """The CLI's trick for odd-length prefixes: drop the last hex digit (Nomad needs whole bytes)."""
    if len(_hex_digits(text)) % 2 == 0:
        return text
    trimmed = text.rstrip("-")
    return trimmed[:-1].rstrip("-")


def normalize_prefix(prefix):
    """The value sent as `prefix`: validated hex, lower case, even length (odd: last digit dropped)."""
    prefix = prefix.strip().lower()
    check_hex_id(prefix, option="prefix")
    return even_length_prefix(prefix)


def _describe_match(stub):
    return f"{short_id(stub.get('ID'))} (job {stub.get('JobID')}, group {stub.get('TaskGroup')}, {stub.get('ClientStatus')})"


def resolve_allocation_id(client, id_or_prefix, namespace=None, on_response=None):
    """The list stub of the one allocation whose ID is `id_or_prefix` or starts with it.

    Like `nomad alloc status <prefix>`: at least two characters, an odd-length prefix is queried without
    its last digit, `GET /v1/allocations?prefix=...` in the namespace of the options (or `namespace`);
    none -> error, several -> error listing them.  Matches are then narrowed to IDs that start with the
    whole text given, so `abc` never resolves to `ab1...`.
    """
    text = str(id_or_prefix).strip().lower()
    check_hex_id(text)
    query = {"prefix": even_length_prefix(text)}
    if namespace is not None:
        query["namespace"] = namespace
    listed = client.paginate(ALLOCATIONS_PATH, query, on_response=on_response)
    matches = [stub for stub in listed if stub.get("ID", "").startswith(text)]
    if not matches:
        where = client.query(query).get("namespace", "default")
        address = client.options.address
        if where == "*":
            message = f'No allocation(s) with prefix or id "{text}" found at {address}'
        else:
            message = f'No allocation(s) with prefix or id "{text}" found in namespace "{where}" at {address} (use namespace "*" to search all)'
        raise AllocationNotFoundError(message, address=address)
    exact = [stub for stub in matches if stub.get("ID") == text]
    if exact:
        return exact[0]
    if len(matches) > 1:
        shown = ", ".join(_describe_match(stub) for stub in matches[:MAX_LISTED_MATCHES])
        more = "" if len(matches) <= MAX_LISTED_MATCHES else f" and {len(matches) - MAX_LISTED_MATCHES} more"
        raise AmbiguousPrefixError(
            f'Prefix "{text}" matched {len(matches)} allocations at {client.options.address}: {shown}{more} '
            "(give more characters)",
            address=client.options.address,
        )
    return matches[0]


def resolve_allocation_ids(client, ids, namespace=None, on_response=None, missing_ok=False):
    """resolve_allocation_id for each entry, in order, without duplicates; with `missing_ok`, entries that do
    not resolve are left out (for a wait on `absent` they are already absent)."""
    stubs = []
    seen = set()
    for entry in ids:
        try:
            stub = resolve_allocation_id(client, entry, namespace, on_response)
        except AllocationNotFoundError:
            if not missing_ok:
                raise
            continue
        if stub["ID"] not in seen:
            seen.add(stub["ID"])
            stubs.append(stub)
    return stubs


# --------------------------------------------------------------------------------------------- listing query
def list_query(selector, namespace=None, reverse=None, resources=None, task_states=None, extra_filter=None):
    """Query parameters for GET /v1/allocations from a selector and list options."""
    expression = selector_filter(selector)
    if extra_filter:
        expression = extra_filter if expression is None else f"{extra_filter} and {expression}"
    query = {}
    if selector.get("prefix"):
        given = selector["prefix"].strip().lower()
        query["prefix"] = normalize_prefix(given)
        if query["prefix"] != given:
            # Nomad needs whole bytes: list by the shorter prefix, keep only IDs that start with the full text.
            narrowing = f'ID matches "^{given}"'
            expression = narrowing if expression is None else f"{narrowing} and {expression}"
    if expression:
        query["filter"] = expression
    if namespace is not None:
        query["namespace"] = namespace
    if reverse:
        query["reverse"] = True
    if resources is not None:
        query["resources"] = resources
    if task_states is not None:
        query["task_states"] = task_states
    return query


def is_full_uuid(text):
    return bool(_UUID.match(str(text).lower()))


# --------------------------------------------------------------------------------------------- nodes
NODES_PATH = "/v1/nodes"


class AmbiguousNodePrefixError(SelectorError):
    """Several nodes start with the given node ID prefix."""


def _looks_like_node_prefix(text):
    return bool(_HEX.match(text)) and len(_hex_digits(text)) >= 2 and len(text) <= 36 and not is_full_uuid(text)


def resolve_node_id(client, node, on_response=None):
    """The full node ID for a unique node ID prefix (like `nomad node status <prefix>`), else None.

    Only texts that can be an ID prefix cost a request (`GET /v1/nodes?prefix=`, odd lengths without their
    last digit, as the CLI does); names and full IDs are returned as None and matched as given. Several
    matches raise AmbiguousNodePrefixError listing them. A token without node:read cannot resolve prefixes.
    """
    text = str(node).strip().lower()
    if not _looks_like_node_prefix(text):
        return None
    try:
        response = client.read(NODES_PATH, params={"prefix": even_length_prefix(text), "namespace": None})
    except NomadPermissionDeniedError:
        return None
    if on_response is not None:
        on_response(response)
    matches = [stub for stub in response.data or [] if str(stub.get("ID", "")).startswith(text)]
    if len(matches) > 1:
        shown = ", ".join(f"{short_id(stub.get('ID', ''))} ({stub.get('Name')})" for stub in matches[:MAX_LISTED_MATCHES])
        raise AmbiguousNodePrefixError(
            f'node prefix "{text}" matched {len(matches)} nodes at {client.options.address}: {shown} '
            "(give more characters or the node name)",
            address=client.options.address,
        )
    return matches[0]["ID"] if matches else None


def resolve_node_selector(client, selector, on_response=None):
    """`selector` with `node_id` set when its `node` is a unique node ID prefix (see resolve_node_id)."""
    node = selector.get("node")
    if not node or selector.get("node_id"):
        return selector
    node_id = resolve_node_id(client, node, on_response)
    if node_id is None:
        return selector
    return dict(selector, node_id=node_id)
