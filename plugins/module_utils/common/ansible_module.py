# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""AnsibleModule glue: argument specs built from the shared pieces, the client, and the one place where
the collection's errors become a one-line `fail_json(msg=...)` (the module flavour of the error boundary)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
import uuid

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import HAS_REQUESTS, REQUESTS_IMPORT_ERROR, NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadOpsError, failure_fields
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
    connection_options_from_params,
    secrets_in_params,
    unknown_option_names,
    unknown_options_message,
)

__all__ = ("NomadAnsibleModule", "nomad_argument_spec", "run_with_nomad_errors")


def nomad_argument_spec(*argument_specs):
    """Connection options + the given option specs (a module's own, the selector's), as a fresh dict."""
    spec = copy.deepcopy(CONNECTION_ARGUMENT_SPEC)
    for argument_spec in argument_specs:
        spec.update(copy.deepcopy(argument_spec or {}))
    return spec


def plain_json_text(value):
    """`value` as JSON text when it is plain JSON data (what json.loads gives), else None."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None


def text_holds_no_log_value(text, no_log_values):
    """Whether a no_log value may occur in the value whose JSON text is `text` (None: not plain JSON, so it may).

    json escapes each character on its own, so a secret inside a string, or inside a number's text (what
    ansible-core's remove_values also scrubs), appears escaped in the text. Errs towards True: keys,
    text across neighbouring values, and anything json cannot encode count as holding one."""
    if text is None:
        return True
    return any(json.dumps(to_native(secret, errors="surrogate_or_strict"))[1:-1] in text for secret in no_log_values)


class NomadAnsibleModule(AnsibleModule):
    """AnsibleModule with the connection options already in its spec."""

    def __init__(self, argument_spec=None, **kwargs):
        self._listings_set_aside = {}  # filled by exit_json_with_listings, read by _record_module_result
        super().__init__(argument_spec=nomad_argument_spec(argument_spec), **kwargs)
        self.no_log_values.update(secrets_in_params(self.params))
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)

    def _set_internal_properties(self, argument_spec=None, module_parameters=None):
        # Runs inside AnsibleModule.__init__ right after the arguments were read, before ansible-core validates
        # them: from here on the address password is scrubbed (also from a validation failure), and unknown
        # options are named before ansible-core's first error (a missing required option) could hide them.
        super()._set_internal_properties(argument_spec, module_parameters)
        if argument_spec is not None or module_parameters is not None:
            return
        self.no_log_values.update(secrets_in_params(self.params))
        unknown = [] if self._ignore_unknown_opts else unknown_option_names(self.params, self.argument_spec)
        if unknown:
            self.fail_json(msg=unknown_options_message(self._name, unknown, self.argument_spec))

    def _log_invocation(self):
        # Runs inside AnsibleModule.__init__, before the line above: hide the address password from the log too.
        self.no_log_values.update(secrets_in_params(self.params))
        super()._log_invocation()

    def connection_options(self):
        return connection_options_from_params(self.params)

    def client(self, pool_size=10):
        """A NomadClient for the module's connection options; its warnings become module warnings."""
        return NomadClient(self.connection_options(), pool_size=pool_size, warn=self.warn)

    def exit_json_with_listings(self, listings, **result):
        """exit_json(**result, **listings) for large, plain JSON `listings` (decoded API answers, key -> list).

        ansible-core's no_log scrub (remove_values) copies every value of a result, with or without
        no_log values, and its module encoder rebuilds every dict and list on the way out; a listing whose
        plain JSON text holds no no_log value is set aside as that text while ansible-core scrubs and encodes
        the rest. Others, and every listing on an ansible-core without the result hook (2.19.0), go through
        plain exit_json."""
        can_set_aside = hasattr(AnsibleModule, "_record_module_result")
        for key, listing in listings.items():
            text = plain_json_text(listing) if can_set_aside else None
            if text is not None and not text_holds_no_log_value(text, self.no_log_values):
                self._listings_set_aside[key] = text
            else:
                result[key] = listing
        self.exit_json(**result)

    def _record_module_result(self, o):
        # The collection's only override of a private ansible-core interface (no public one lets a module hand
        # over JSON text; benchmarks/analysis.md shows the cost): tests/unit/plugins/module_utils/
        # test_module_result_hook.py fails when a release renames it, changes its signature or stops calling it.
        # ansible-core >= 2.19.1 calls this hook with the scrubbed result, and it prints the result's JSON:
        # let it print the rest with a unique placeholder string for each listing, then put the listing's text
        # in the placeholder's place.
        if not self._listings_set_aside:
            super()._record_module_result(o)
            return
        placeholders = {key: f"nomadops-listing-{uuid.uuid4().hex}" for key in self._listings_set_aside}
        o.update(placeholders)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            super()._record_module_result(o)
        text = printed.getvalue()
        for key, placeholder in placeholders.items():
            text = text.replace(json.dumps(placeholder), self._listings_set_aside[key], 1)
        sys.stdout.write(text)


def run_with_nomad_errors(module, function):
    """The module's error boundary: call function(); any error of the collection (NomadOpsError) becomes
    fail_json(**failure_fields(error)): msg=<one line>, status=<HTTP status when known>, address=<the Nomad
    address asked>, and the error's own result keys (a failed rollout's failed_allocations, ...)."""
    try:
        return function()
    except NomadOpsError as error:
        module.fail_json(**failure_fields(error))
    return None
