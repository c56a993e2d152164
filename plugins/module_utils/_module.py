# -*- coding: utf-8 -*-
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AnsibleModule glue: argument specs built from the shared pieces, the client, and the one place where
Nomad and option errors become a one-line `fail_json(msg=...)`."""

from __future__ import annotations

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.nomadops.nomad.plugins.module_utils._client import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    NomadClient,
    NomadError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils._options import (
    CONNECTION_ARGUMENT_SPEC,
    NomadOptionError,
    connection_options_from_params,
    secrets_in_params,
)
from ansible_collections.nomadops.nomad.plugins.module_utils._selector import SELECTOR_ARGUMENT_SPEC, SELECTOR_KEYS


def nomad_argument_spec(argument_spec=None, selector=False):
    """Connection options (+ the selector) + a module's own options, as a fresh dict."""
    spec = copy.deepcopy(CONNECTION_ARGUMENT_SPEC)
    if selector:
        spec.update(copy.deepcopy(SELECTOR_ARGUMENT_SPEC))
    spec.update(copy.deepcopy(argument_spec or {}))
    return spec


def one_line(text):
    return " ".join(str(text).split())


class NomadAnsibleModule(AnsibleModule):
    """AnsibleModule with the connection options (and optionally the selector) already in its spec."""

    def __init__(self, argument_spec=None, selector=False, **kwargs):
        super(NomadAnsibleModule, self).__init__(argument_spec=nomad_argument_spec(argument_spec, selector), **kwargs)
        self.no_log_values.update(secrets_in_params(self.params))
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)

    def _log_invocation(self):
        # Runs inside AnsibleModule.__init__, before the line above: hide the address password from the log too.
        self.no_log_values.update(secrets_in_params(self.params))
        super(NomadAnsibleModule, self)._log_invocation()

    def connection_options(self):
        return connection_options_from_params(self.params)

    def client(self, pool_size=10):
        """A NomadClient for the module's connection options; its warnings become module warnings."""
        return NomadClient(self.connection_options(), pool_size=pool_size, warn=self.warn)

    def selector(self):
        return dict((key, self.params.get(key)) for key in SELECTOR_KEYS)


def run_with_nomad_errors(module, function):
    """Call function(); a NomadError / NomadOptionError (incl. SelectorError) becomes fail_json(msg=<one line>)."""
    try:
        return function()
    except NomadError as exc:
        failure = dict(msg=one_line(exc))
        if exc.status is not None:
            failure["status"] = exc.status
        module.fail_json(**failure)
    except NomadOptionError as exc:
        module.fail_json(msg=one_line(exc))
    return None
