# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Why a selection came back empty: the job, namespace or node the user named does not exist.

Called only after a selection matched nothing, so a selection that matched costs no extra request.
Acting runtimes (stop, signal, restart, exec, logs, fetch, the role) call require_selection_exists();
readers (info, lookup, inventory) call explain_empty_selection() and warn with the text.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.nomadops.nomad.plugins.module_utils._client import (
    NomadNotFoundError,
    NomadPermissionDeniedError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils._errors import NotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils._selector import (
    bexpr_quote,
    is_full_uuid,
    list_query,
    resolve_node_selector,
    select_allocations,
)


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

    `selector` is the dict of the selector options (as NomadAnsibleModule.selector() returns it);
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


def select_for_action(client, selector, namespace=None):
    """(allocations, filter sent) for a module that acts; fails when the selection is empty because the job,
    namespace or node it names does not exist (SelectionNotFoundError, nothing acted on)."""
    selector = resolve_node_selector(client, selector)
    allocations = select_allocations(client, selector, namespace)
    if not allocations:
        require_selection_exists(client, selector, namespace)
    return allocations, sent_filter(selector, namespace)
