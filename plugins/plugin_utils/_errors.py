# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one error boundary of the controller-side plugin kinds (lookup, connection, inventory).

Nomad and option errors are raised as typed exceptions in module_utils; here they become the Ansible
exception of the plugin kind (AnsibleLookupError, AnsibleConnectionFailure, AnsibleParserError, ...)
with the same one-line message modules give. Private to the collection.
"""

from __future__ import annotations

import contextlib
import typing as t

from ansible_collections.nomadops.nomad.plugins.module_utils._client import NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils._options import NomadOptionError

EXPECTED_ERRORS = (NomadError, NomadOptionError)


def one_line_message(error: BaseException) -> str:
    return " ".join(str(error).split())


@contextlib.contextmanager
def nomad_errors_as(error_class: type[Exception], prefix: str = "") -> t.Iterator[None]:
    """Turn a NomadError / NomadOptionError raised inside the block into ``error_class(prefix + one line)``."""
    try:
        yield
    except EXPECTED_ERRORS as error:
        raise error_class(prefix + one_line_message(error)) from None
