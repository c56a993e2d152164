# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One exception hierarchy: every error of the collection is a NomadOpsError in exactly the family it belongs to,
and failure_fields() is the one mapping from an error to the keys of a failed result."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.deployments import DeploymentRefused
from ansible_collections.nomadops.nomad.plugins.module_utils.nodes.drain import DrainIncompleteError, NodeRequestError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadBadRequestError,
    NomadConnectionError,
    NomadError,
    NomadNotFoundError,
    NomadOpsError,
    NomadOptionError,
    NomadPermissionDeniedError,
    NomadServerError,
    NomadTimeoutError,
    NomadTLSError,
    NomadUnsafeIDError,
    NotFoundError,
    OperationFailed,
    failure_fields,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.exec import (
    ExecArgumentError,
    ExecClosedError,
    ExecError,
    ExecSourceError,
    ExecTimeoutError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import SelectionNotFoundError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.files import AllocPathError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs import NomadStreamError
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.changes import JobChangeRefused
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec import JobSpecError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.lifecycle import LifecycleError
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.logs_result import LogsError
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.rollout import RolloutFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import (
    AllocationNotFoundError,
    AmbiguousNodePrefixError,
    AmbiguousPrefixError,
    SelectorError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.signals import UnknownSignalError

ADDRESS = "https://nomad.example:4646"

INPUT_ERRORS = [
    NomadOptionError("address is not a valid URL"),
    SelectorError("set at least one selector option"),
    AmbiguousPrefixError('prefix "9f" matches 2 allocations'),
    AmbiguousNodePrefixError('node prefix "ab" matches 2 nodes'),
    UnknownSignalError("SIGFOO"),
    ExecArgumentError("set command or argv"),
    JobSpecError("spec is not HCL2 nor JSON"),
    NodeRequestError("drain_deadline must be more than 0 seconds"),
]
NOT_FOUND_ERRORS = [
    AllocationNotFoundError('No allocation(s) with prefix or id "ee" found', address=ADDRESS),
    SelectionNotFoundError(f'job "wbe" not found in namespace "default" at {ADDRESS}'),
    NomadNotFoundError("allocation not found", method="GET", path="/v1/allocation/x", status=404, address=ADDRESS),
    NotFoundError(f'deployment "ab12" not found at {ADDRESS} (namespace default)'),
]
NOMAD_ERRORS = [
    NomadError("unexpected answer", status=418, address=ADDRESS),
    NomadConnectionError("connection refused", address=ADDRESS),
    NomadTLSError("certificate verify failed", address=ADDRESS),
    NomadTimeoutError("timed out", address=ADDRESS),
    NomadBadRequestError("bad filter", status=400, address=ADDRESS),
    NomadPermissionDeniedError("Permission denied", status=403, address=ADDRESS),
    NomadServerError("no cluster leader", status=500, address=ADDRESS),
    NomadUnsafeIDError("not a UUID", address=ADDRESS),
    NomadStreamError("stream ended in a frame", address=ADDRESS),
    AllocPathError("path escapes the allocation directory", status=400, address=ADDRESS),
]
OPERATION_FAILURES = [
    LifecycleError("task 'web' is not running (state dead)"),
    LogsError("no line matched until 'ready'"),
    ExecError("the session closed"),
    ExecTimeoutError("the command did not finish"),
    ExecClosedError("closed before the exited frame"),
    ExecSourceError("cannot read stdin", OSError("gone")),
    RolloutFailed("job 'web' version 3: deployment failed", failed_allocations=[]),
    DrainIncompleteError('the drain of node "n1" ended without completing', address=ADDRESS),
    JobChangeRefused("job 'web' not scaled: group count was less than scaling policy minimum: 0 < 1"),
    DeploymentRefused("deployment 1a2b3c4d has no canaries to promote"),
]
EVERY_ERROR = INPUT_ERRORS + NOT_FOUND_ERRORS + NOMAD_ERRORS + OPERATION_FAILURES
FAMILIES = (NomadOptionError, NotFoundError, NomadError, OperationFailed)


def family_of(error):
    return [family.__name__ for family in FAMILIES if isinstance(error, family)]


@pytest.mark.parametrize("error", EVERY_ERROR, ids=lambda error: type(error).__name__)
def test_every_error_is_caught_by_the_base(error):
    with pytest.raises(NomadOpsError):
        raise error


@pytest.mark.parametrize("errors, family", [
    ([error for error in INPUT_ERRORS if not isinstance(error, ExecArgumentError)], ["NomadOptionError"]),
    (NOT_FOUND_ERRORS[:2] + NOT_FOUND_ERRORS[3:], ["NotFoundError"]),
    ([NOT_FOUND_ERRORS[2]], ["NotFoundError", "NomadError"]),
    (NOMAD_ERRORS, ["NomadError"]),
    ([error for error in OPERATION_FAILURES if not isinstance(error, ExecArgumentError)], ["OperationFailed"]),
], ids=["input", "not-found", "404", "nomad", "operation"])
def test_each_error_belongs_to_its_family_only(errors, family):
    assert {type(error).__name__: family_of(error) for error in errors} == {
        type(error).__name__: family for error in errors
    }


def test_exec_argument_error_is_an_input_error_of_the_exec_family():
    assert family_of(ExecArgumentError("set command or argv")) == ["NomadOptionError", "OperationFailed"]


def test_a_missing_allocation_is_a_not_found_not_an_option_error():
    missing = AllocationNotFoundError("No allocation(s) with prefix or id \"ee\" found", address=ADDRESS)
    with pytest.raises(NotFoundError):
        raise missing
    assert not isinstance(missing, (NomadOptionError, SelectorError, ValueError))


def test_option_errors_stay_value_errors():
    assert all(isinstance(error, ValueError) for error in INPUT_ERRORS)


def test_failure_fields_of_an_option_error_is_its_one_line_message():
    assert failure_fields(NomadOptionError("address is\n  not a valid URL")) == {"msg": "address is not a valid URL"}


def test_failure_fields_names_status_and_address_when_known():
    error = NomadPermissionDeniedError("Permission denied", status=403, address=ADDRESS)
    assert failure_fields(error) == {"msg": "Permission denied", "status": 403, "address": ADDRESS}
    assert failure_fields(AllocationNotFoundError("gone", address=ADDRESS)) == {"msg": "gone", "address": ADDRESS}


def test_failure_fields_carry_an_operations_own_result_keys():
    failure = RolloutFailed("job 'web' version 3: deployment failed", failed_allocations=[{"id": "1a2b3c4d"}],
                            deployment={"Status": "failed"})
    assert failure_fields(failure) == {"msg": "job 'web' version 3: deployment failed",
                                       "failed_allocations": [{"id": "1a2b3c4d"}], "deployment": {"Status": "failed"}}


def test_the_error_wins_over_result_keys_of_the_same_name():
    drain = DrainIncompleteError("timed out", details={"msg": "stale", "node": {"Name": "n1"}}, address=ADDRESS)
    assert failure_fields(drain) == {"msg": "timed out", "node": {"Name": "n1"}, "address": ADDRESS}


def test_result_keys_are_a_copy():
    failure = RolloutFailed("failed", summary=[])
    failure_fields(failure)["summary"] = "changed"
    assert failure.details == {"summary": []}
