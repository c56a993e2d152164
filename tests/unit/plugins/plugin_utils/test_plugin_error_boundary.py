# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The plugin kinds' boundary gives the same one line (and status, address) as a module's fail_json."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleConnectionFailure, AnsibleLookupError

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadPermissionDeniedError,
    NotFoundError,
    failure_fields,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.rollout import RolloutFailed
from ansible_collections.nomadops.nomad.plugins.plugin_utils._errors import failed_result, nomad_errors_as

ADDRESS = "http://127.0.0.1:4646"


def test_any_error_of_the_collection_becomes_the_plugin_kinds_exception_with_the_modules_message():
    error = NomadPermissionDeniedError("Permission denied:\n token lacks read-job", status=403, address=ADDRESS)
    with pytest.raises(AnsibleLookupError) as raised:
        with nomad_errors_as(AnsibleLookupError, prefix="nomad_alloc: "):
            raise error
    assert str(raised.value) == "nomad_alloc: " + failure_fields(error)["msg"] == "nomad_alloc: Permission denied: token lacks read-job"
    assert (raised.value.nomad_status, raised.value.nomad_address) == (403, ADDRESS)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_not_found_without_status():
    with pytest.raises(AnsibleConnectionFailure) as raised:
        with nomad_errors_as(AnsibleConnectionFailure):
            raise NotFoundError(f'node "n9" not found at {ADDRESS}')
    assert str(raised.value) == f'node "n9" not found at {ADDRESS}'
    assert (raised.value.nomad_status, raised.value.nomad_address) == (None, None)


def test_other_exceptions_pass_through():
    with pytest.raises(KeyError):
        with nomad_errors_as(AnsibleLookupError):
            raise KeyError("not ours")


def test_failed_result_is_a_failed_modules_result():
    failure = RolloutFailed("job 'web' version 2: deployment failed", deployment={"Status": "failed"})
    assert failed_result(failure) == {"failed": True, "msg": "job 'web' version 2: deployment failed",
                                      "deployment": {"Status": "failed"}}
