# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one error boundary of the controller-side plugin kinds (lookup, connection, inventory).

Nomad and option errors are raised as typed exceptions in module_utils; here they become the Ansible
exception of the plugin kind (AnsibleLookupError, AnsibleConnectionFailure, AnsibleParserError, ...)
with the same one-line message modules and actions give (``failure_fields(error)["msg"]``). The exception
keeps ``status`` and ``address`` as attributes, like the extra keys of a module's failure. Private to the collection.
"""

from __future__ import annotations

import contextlib
import typing as t

from ansible_collections.nomadops.nomad.plugins.module_utils._client import NomadError, failure_fields
from ansible_collections.nomadops.nomad.plugins.module_utils._options import NomadOptionError

EXPECTED_ERRORS = (NomadError, NomadOptionError)


def one_line_message(error: BaseException) -> str:
    return failure_fields(error)["msg"]


@contextlib.contextmanager
def nomad_errors_as(error_class: type[Exception], prefix: str = "") -> t.Iterator[None]:
    """Turn a NomadError / NomadOptionError raised inside the block into ``error_class(prefix + one line)``."""
    try:
        yield
    except EXPECTED_ERRORS as error:
        fields = failure_fields(error)
        converted = error_class(prefix + fields["msg"])
        converted.nomad_status = fields.get("status")
        converted.nomad_address = fields.get("address")
        raise converted from None
