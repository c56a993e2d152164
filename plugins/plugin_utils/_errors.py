# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The error boundary of the controller-side plugin kinds (lookup, connection, inventory) and of the actions.

The collection's errors (NomadOpsError, module_utils/common/errors.py) are raised as typed exceptions in module_utils;
here they become the Ansible exception of the plugin kind (AnsibleLookupError, AnsibleConnectionFailure,
AnsibleParserError, ...) with the same one-line message modules and actions give (``failure_fields(error)["msg"]``),
or, for an action, a failed result. The exception keeps ``status`` and ``address`` as attributes, like the extra keys
of a module's failure. Private to the collection.
"""

from __future__ import annotations

import contextlib
import typing as t

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOpsError, failure_fields


def failed_result(error: NomadOpsError) -> dict:
    """The result of an action that failed with `error` before its module (or its module context) ran."""
    return dict(failed=True, **failure_fields(error))


@contextlib.contextmanager
def nomad_errors_as(error_class: type[Exception], prefix: str = "") -> t.Iterator[None]:
    """Turn a NomadOpsError raised inside the block into ``error_class(prefix + one line)``."""
    try:
        yield
    except NomadOpsError as error:
        fields = failure_fields(error)
        converted = error_class(prefix + fields["msg"])
        converted.nomad_status = fields.get("status")
        converted.nomad_address = fields.get("address")
        raise converted from None
