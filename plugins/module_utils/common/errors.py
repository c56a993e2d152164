# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every error the collection raises, rooted in NomadOpsError, and `failure_fields()`: the one mapping from an
error to the keys of a failed result (`msg`, `status`, `address` and the error's own result keys).

Four families, each caught by the base:
- NomadOptionError: an input that cannot work (options, the selector, a signal name, exec arguments, a job spec);
- NotFoundError: what the task names does not exist (an allocation, job, node, namespace; Nomad's 404);
- NomadError: a request to Nomad failed (status and address known), with one subclass per kind of failure;
- OperationFailed: the request went through, but the operation did not (a lifecycle action, logs, exec, fetch,
  a rollout, a drain, a change Nomad would refuse).

The error boundary of each runtime (module: `common/ansible_module.run_with_nomad_errors`, action:
`plugin_utils/_action_module.ModuleLikeActionBase.run` and `_module_action.NomadModuleAction.run`, lookup,
connection and inventory: `plugin_utils/_errors.nomad_errors_as`) catches NomadOpsError and calls failure_fields().
Imports only common/text (which imports nothing): every module of the collection can import it.
"""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line


class NomadOpsError(Exception):
    """The base of every error of the collection.  str() is the message and never contains a secret.

    `status` (an HTTP status) and `address` (the Nomad address asked) are set when known; `result_fields()` are
    further result keys the failure carries (what was done before it, what explains it)."""

    status = None
    address = None

    def result_fields(self) -> dict:
        return {}


def failure_fields(error: NomadOpsError) -> dict:
    """The keys of a failed result for `error`: its result fields, then `msg` (one line), `status` when an HTTP
    status is known and `address` when a Nomad address was asked."""
    fields = dict(error.result_fields())
    fields["msg"] = one_line(error)
    if error.status is not None:
        fields["status"] = error.status
    if error.address:
        fields["address"] = error.address
    return fields


# --------------------------------------------------------------------------------------------- input
class NomadOptionError(NomadOpsError, ValueError):
    """An option value that cannot work; str() is a one-line message saying what to fix.

    `address` is the Nomad address the check asked, when it asked one.  Still a ValueError, as it always was.
    """

    def __init__(self, message, address=None):
        super().__init__(message)
        self.address = address


# --------------------------------------------------------------------------------------------- not found
class NotFoundError(NomadOpsError):
    """What the task names (an allocation, job, node, namespace, deployment) does not exist."""

    def __init__(self, message, address=None):
        super().__init__(message)
        self.address = address


# --------------------------------------------------------------------------------------------- Nomad and transport
class NomadError(NomadOpsError):
    """A request to Nomad failed.  str() is one line and never contains a secret."""

    def __init__(self, message, method=None, path=None, status=None, nomad_message=None, address=None):
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.nomad_message = nomad_message
        self.address = address


class NomadNotNomadError(NomadError):
    """The server answered, but not like Nomad's HTTP API (an HTML page, a redirect, a login form)."""


class NomadConnectionError(NomadError):
    """Nomad could not be reached, or the connection broke before a complete answer."""


class NomadTLSError(NomadConnectionError):
    """The TLS handshake failed (certificate verification, client certificate, protocol)."""


class NomadTimeoutError(NomadConnectionError):
    """Connecting or waiting for the answer took longer than `timeout`."""


class NomadBadRequestError(NomadError):
    """400: Nomad refused the request (bad filter, bad parameter)."""


class NomadPermissionDeniedError(NomadError):
    """403: the token lacks a capability (or is unknown/expired)."""


class NomadNotFoundError(NomadError, NotFoundError):
    """404: the object or route does not exist."""


class NomadServerError(NomadError):
    """5xx: Nomad could not serve the request (it also uses 500 for many input errors)."""


class NomadPaginationError(NomadError):
    """Pagination did not make progress even after recovery, or did not end within its bound."""


class NomadUnsafeIDError(NomadNotNomadError):
    """An ID that Nomad's answer gave, about to be used in a request path, is not a UUID."""


# --------------------------------------------------------------------------------------------- operations
class OperationFailed(NomadOpsError):
    """The operation could not be done or did not complete; `details` are result keys that say what happened."""

    def __init__(self, message, details=None, address=None):
        super().__init__(message)
        self.details = details or {}
        self.address = address

    def result_fields(self) -> dict:
        return dict(self.details)
