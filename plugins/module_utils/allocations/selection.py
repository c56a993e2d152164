# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where allocations are selected: select() is the one entry point every module, action, lookup, inventory,
wait and the exec fan-out go through. It resolves the node once, resolves explicit IDs and prefixes, lists the
matching allocations and returns a Selection (allocations, the filter sent, the explicit IDs).

When a selection comes back empty it also says why (the job, namespace or node the user named does not exist),
at the cost of a request only then: acting runtimes fail (SelectionNotFoundError), readers warn.
"""

from __future__ import annotations

import threading
from urllib.parse import quote

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadNotFoundError,
    NomadPermissionDeniedError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import (
    ALLOCATIONS_PATH,
    SELECTOR_KEYS,
    SelectorError,
    bexpr_quote,
    is_full_uuid,
    list_query,
    only_ids,
    resolve_allocation_ids,
    resolve_node_selector,
    selector_filter,
    short_id_filter,
)

# --------------------------------------------------------------------------------------------- listing
MAX_PER_PAGE = 2 ** 31 - 1   # Nomad parses per_page with strconv.ParseInt(v, 10, 32)


class IndexTracker:
    """Remembers the highest X-Nomad-Index of the responses it is given (from any thread)."""

    def __init__(self):
        self.index = None
        self._lock = threading.Lock()

    def __call__(self, response):
        with self._lock:
            if response.index is not None and (self.index is None or response.index > self.index):
                self.index = response.index


class ListOptions:
    """How to list: namespace, page size, limit, order and which stub fields Nomad should include."""

    __slots__ = ("namespace", "per_page", "limit", "reverse", "resources", "task_states")

    def __init__(self, namespace=None, per_page=None, limit=None, reverse=False, resources=False, task_states=True):
        if per_page is not None and per_page < 1:
            raise SelectorError(f"per_page must be 1 or more (got {per_page})")
        if per_page is not None and per_page > MAX_PER_PAGE:
            # Nomad 1.6 ignored such a value (no paging at all), Nomad 1.8+ answers 400
            raise SelectorError(f"per_page must be at most {MAX_PER_PAGE}, Nomad's 32-bit limit (got {per_page})")
        if limit is not None and limit < 1:
            raise SelectorError(f"limit must be 1 or more (got {limit})")
        self.namespace = namespace
        self.per_page = per_page
        self.limit = limit
        self.reverse = bool(reverse)
        # Only sent when they differ from Nomad's defaults.
        self.resources = True if resources else None
        self.task_states = None if task_states or task_states is None else False

    @classmethod
    def from_params(cls, params):
        return cls(
            per_page=params.get("per_page"),
            limit=params.get("limit"),
            reverse=params.get("reverse"),
            resources=params.get("resources"),
            task_states=params.get("task_states"),
        )

    def select_kwargs(self):
        return dict(namespace=self.namespace, per_page=self.per_page, limit=self.limit, reverse=self.reverse,
                    resources=self.resources, task_states=self.task_states)


def id_narrowing(allocation_ids):
    """(extra filter, IDs to keep on the client) that narrow a listing to `allocation_ids`: an ID clause when it
    fits a request line, else no clause and the IDs to keep (see FILTER_CLAUSE_LIMIT)."""
    clause = short_id_filter(list(allocation_ids))
    return clause, (None if clause is not None else set(allocation_ids))


def list_matching(client, query, per_page=None, limit=None, keep_ids=None, on_response=None):
    """Every stub GET /v1/allocations answers for `query` (all pages), only those in `keep_ids` when given."""
    if keep_ids is None:
        return list(client.paginate(ALLOCATIONS_PATH, query, per_page=per_page, limit=limit, on_response=on_response))
    kept = only_ids(client.paginate(ALLOCATIONS_PATH, query, per_page=per_page, on_response=on_response), keep_ids)
    return kept[:limit] if limit is not None else kept


def select_allocations(client, selector, namespace=None, per_page=None, limit=None, reverse=None,
                       resources=None, task_states=None, on_response=None):
    """List stubs of the allocations the selector matches (all pages), as a list: the listing under select().

    With `id`, each entry is resolved first (errors for unknown or ambiguous prefixes); the other
    selector options then narrow those allocations down on the server.  `on_response` sees every
    list response (see NomadClient.paginate).  A `node` ID prefix is matched as resolved by select().
    """
    ids = selector.get("id") or []
    allocation_ids = None
    if ids:
        stubs = resolve_allocation_ids(client, ids, namespace, on_response)
        if selector_filter(selector) is None and not selector.get("prefix") and resources is None and task_states is None:
            return stubs[:limit] if limit is not None else stubs
        allocation_ids = [stub["ID"] for stub in stubs]
    query, keep_ids = listing_of(selector, allocation_ids, namespace, reverse, resources, task_states)
    return list_matching(client, query, per_page, limit, keep_ids, on_response)


def listing_of(selector, allocation_ids=None, namespace=None, reverse=None, resources=None, task_states=None):
    """(query, IDs to keep on the client or None) that list the selector's allocations, narrowed to
    `allocation_ids` (the resolved `id` entries) when given."""
    id_clause = keep_ids = None
    if allocation_ids is not None:
        id_clause, keep_ids = id_narrowing(allocation_ids)
    return list_query(dict(selector, id=None), namespace, reverse, resources, task_states, extra_filter=id_clause), keep_ids


# --------------------------------------------------------------------------------------------- empty selections
class SelectionNotFoundError(NotFoundError):
    """The selector names a job, namespace or node that does not exist; str() is the one-line message."""


def _effective_namespace(client, namespace):
    if namespace is not None:
        return namespace
    return client.query().get("namespace") or "default"


def _exists(client, path, params=None) -> bool:
    """True unless Nomad answers 404; a token that may not look (403) says nothing, so counts as existing."""
    try:
        client.read(path, params=params)
    except NomadNotFoundError:
        return False
    except NomadPermissionDeniedError:
        return True
    return True


def _job_namespaces(client, job):
    """The sorted namespaces in which the token sees a job with exactly this ID, or None when it may not list
    every namespace (403)."""
    try:
        listed = client.read("/v1/jobs", params={"prefix": job, "namespace": "*"}).data or []
    except NomadPermissionDeniedError:
        return None
    return sorted({stub.get("Namespace") or "default" for stub in listed if stub.get("ID") == job})


def _job_in_any_namespace(client, job) -> bool:
    namespaces = _job_namespaces(client, job)
    return namespaces is None or bool(namespaces)


def _job_elsewhere_hint(client, job) -> str:
    """What follows 'job "x" not found in namespace "y" at z': the namespaces that have it, when the token can
    see them; a hint to search every namespace when it may not list them; nothing when it exists nowhere."""
    namespaces = _job_namespaces(client, job)
    if namespaces is None:
        return ' (use namespace "*" to search all)'
    if not namespaces:
        return ""
    names = ", ".join(f'"{name}"' for name in namespaces)
    plural = "s" if len(namespaces) > 1 else ""
    return f'; it exists in namespace{plural} {names} (set namespace, or use namespace "*" to search all)'


def _node_exists(client, node) -> bool:
    if is_full_uuid(node):
        return _exists(client, f"/v1/node/{node}")
    expression = f"ID == {bexpr_quote(node)} or Name == {bexpr_quote(node)}"
    try:
        listed = client.read("/v1/nodes", params={"filter": expression, "namespace": None}).data
    except NomadPermissionDeniedError:
        return True
    return bool(listed)


def explain_empty_selection(client, selector, namespace=None):
    """One line naming the missing namespace, job or node of `selector` (checked in that order), or None.

    `selector` is the dict of the selector options (as filters.selector_of(params) returns it);
    `namespace` overrides the namespace of the connection options. Costs one request per named item, at most
    three; call it only when the selection was empty. Errors other than 404/403 propagate as NomadError.
    """
    where = _effective_namespace(client, namespace)
    address = client.options.address
    if where != "*" and not _exists(client, f"/v1/namespace/{where}", {"namespace": None}):
        return f'namespace "{where}" not found at {address}'
    job = selector.get("job")
    if job and where == "*" and not _job_in_any_namespace(client, job):
        return f'job "{job}" not found in any namespace at {address}'
    if job and where != "*" and not _exists(client, f"/v1/job/{quote(job, safe='')}", {"namespace": where}):
        return f'job "{job}" not found in namespace "{where}" at {address}' + _job_elsewhere_hint(client, job)
    node = selector.get("node")
    if node and not selector.get("node_id") and not _node_exists(client, node):
        return f'node "{node}" not found at {address}'
    return None


def require_selection_exists(client, selector, namespace=None) -> None:
    """Raise SelectionNotFoundError when explain_empty_selection() finds a missing job, namespace or node."""
    message = explain_empty_selection(client, selector, namespace)
    if message:
        raise SelectionNotFoundError(message)


def empty_selection_message(selector_filter):
    """The `msg` of an acting module whose existing job/namespace/node matched no allocation."""
    if selector_filter:
        return f"no allocation matched the selector (filter: {selector_filter}); nothing to do"
    return "no allocation matched the selector; nothing to do"


def sent_filter(selector, namespace=None):
    """The server-side bexpr the selector becomes (the `filter` key of every module result), or None."""
    return list_query(dict(selector, id=None), namespace).get("filter")


# --------------------------------------------------------------------------------------------- the entry point
class Selection:
    """What a selector selected: `allocations` (list stubs, or what an `id` resolved to), the server-side
    `filter` it became (the `filter` key of every result), `explicit_ids` (the IDs of the allocations the user
    named with `id`: all of them when `id` was given), `index` (the highest X-Nomad-Index read) and `why_empty`
    (for readers: why nothing matched, when a named job, namespace or node does not exist)."""

    __slots__ = ("allocations", "filter", "explicit_ids", "index", "selector", "why_empty")

    def __init__(self, allocations, selection_filter, explicit_ids=frozenset(), index=None, selector=None,
                 why_empty=None):
        self.allocations = allocations
        self.filter = selection_filter
        self.explicit_ids = frozenset(explicit_ids)
        self.index = index
        self.selector = selector or {}
        self.why_empty = why_empty


def select(client, selector, list_options=None, acting=False):
    """The Selection of `selector` (a dict with SELECTOR_KEYS) listed with `list_options` (a ListOptions).

    The node is resolved here, once per task (a node ID prefix costs one request, see
    filters.resolve_node_selector); the resolved selector is kept on the Selection, and a selector resolved
    before is not resolved again. When nothing matched, an acting caller
    (`acting`) gets SelectionNotFoundError for a job, namespace or node that does not exist; a reader gets the
    reason in `why_empty`.
    """
    list_options = list_options or ListOptions()
    selector = resolve_node_selector(client, selector)
    tracker = IndexTracker()
    allocations = select_allocations(client, selector, on_response=tracker, **list_options.select_kwargs())
    why_empty = None
    if not allocations:
        if acting:
            require_selection_exists(client, selector, list_options.namespace)
        else:
            why_empty = explain_empty_selection(client, selector, list_options.namespace)
    explicit = {allocation["ID"] for allocation in allocations} if selector.get("id") else set()
    return Selection(allocations, sent_filter(selector, list_options.namespace), explicit, tracker.index, selector,
                     why_empty)


def missing_selector_message(params):
    """`set at least one selector option (...)` when no selector option is set, else None: the one check that
    keeps an acting task from touching every allocation of the namespace (callers say what for)."""
    if any(_is_set(params.get(key)) for key in SELECTOR_KEYS):
        return None
    return f"set at least one selector option ({', '.join(SELECTOR_KEYS)})"


def _is_set(value) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple)):
        return any(_is_set(entry) for entry in value)
    return bool(value)
