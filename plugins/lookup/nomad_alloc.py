# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: nomad_alloc
short_description: Nomad allocations as a list of dictionaries, for templates and loops
version_added: 0.1.0
description:
  - Returns the allocations that match the given IDs / ID prefixes (terms) and selector (keyword arguments),
    read through Nomad's HTTP API from the controller.
  - Always returns a list; with terms (or O(id)) the entries are full allocation objects, otherwise list stubs.
    Use C(query()) or C(lookup(..., wantlist=true)) to receive the list as is, since C(lookup()) turns a
    one-element list into its element.
  - Text inside allocations is never evaluated as a template (ansible-core 2.19 and later treat data a lookup
    decodes from an API as untrusted).
author:
  - nomadops.nomad developers (@nomadops)
options:
  _terms:
    description:
      - Allocation IDs or unique ID prefixes (at least two characters), resolved like C(nomad alloc status <prefix>).
        Combined with O(id).
    type: list
    elements: str
    required: false
  per_page:
    description: Page size for listing (at most 2147483647); pages are followed transparently.
    type: int
  limit:
    description: Return at most this many allocations.
    type: int
  reverse:
    description: List in reverse order.
    type: bool
    default: false
  resources:
    description: Include C(AllocatedResources) in list stubs.
    type: bool
    default: false
  task_states:
    description: Include C(TaskStates) in list stubs.
    type: bool
    default: true
  services:
    description: Attach each allocation's Nomad services under the key C(Services).
    type: bool
    default: false
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.connection.plugins
  - nomadops.nomad.selector
notes:
  - Lookups run on the controller; the connection environment variables are read from the controller's environment.
  - Keyword arguments that are not options of this lookup (a typo such as C(jbo=web)) are refused with an error
    naming them and the known options; they are never ignored.
  - >-
    The C(ansible_nomad_<option>) variables are templated, so a variable such as C(ansible_nomad_address) may be
    defined through another variable.
seealso:
  - module: nomadops.nomad.nomad_alloc_info
"""

EXAMPLES = r"""
- name: Loop over the running allocations of job web
  ansible.builtin.debug:
    msg: "{{ item.Name }} on {{ item.NodeName }}"
  loop: "{{ query('nomadops.nomad.nomad_alloc', job='web', client_status=['running']) }}"
  loop_control:
    label: "{{ item.ID[:8] }}"  # else each whole allocation (3-4 KB) is printed as the item's label

- name: Read two allocations by ID prefix
  ansible.builtin.debug:
    msg: "{{ query('nomadops.nomad.nomad_alloc', '5a22', '9f1c') | map(attribute='ClientStatus') }}"

- name: Count allocations in every namespace, against a TLS cluster
  ansible.builtin.debug:
    msg: >-
      {{ query('nomadops.nomad.nomad_alloc', namespace='*',
               address='https://nomad.example.com:4646', ca_cert='/etc/nomad.d/ca.pem') | length }}

- name: In a template
  ansible.builtin.copy:
    dest: /tmp/web-allocations.txt
    content: |
      {% for alloc in query('nomadops.nomad.nomad_alloc', job='web') %}
      {{ alloc.ID }} {{ alloc.ClientStatus }}
      {% endfor %}
    mode: "0644"
"""

RETURN = r"""
_raw:
  description:
    - One dictionary per allocation, as Nomad returns it (Go field names); full objects for IDs, list stubs otherwise.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.reads import LIST_ARGUMENT_SPEC, read_selection
from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import HAS_REQUESTS, NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import nomad_argument_spec
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import connection_options_from_params
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import ListOptions, select
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import SELECTOR_ARGUMENT_SPEC, selector_of
from ansible_collections.nomadops.nomad.plugins.plugin_utils._errors import nomad_errors_as
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import (
    explicit_option_values,
    refuse_unknown_keywords,
    templated_variables,
    validated_option_values,
)

LOOKUP_NAME = "nomadops.nomad.nomad_alloc"
LOOKUP_ARGUMENT_SPEC = nomad_argument_spec(LIST_ARGUMENT_SPEC, SELECTOR_ARGUMENT_SPEC)

display = Display()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        if not HAS_REQUESTS:
            raise AnsibleLookupError(f"the {LOOKUP_NAME} lookup needs the Python library 'requests' on the controller")
        with nomad_errors_as(AnsibleLookupError):
            refuse_unknown_keywords(kwargs, LOOKUP_ARGUMENT_SPEC, LOOKUP_NAME)
        with nomad_errors_as(AnsibleLookupError, prefix=f"{LOOKUP_NAME}: "):
            self.set_options(var_options=templated_variables(variables, self._templar, self.option_definitions), direct=kwargs)
            params = self._validated_params(terms)
        with nomad_errors_as(AnsibleLookupError):
            # ansible-core 2.19+ only templates text tagged as trusted, and decoded API data never is;
            # wrap_var would copy every value of a large result for nothing (BENCHMARKS.md, section 2).
            return self._allocations(params)

    def _validated_params(self, terms):
        """Keywords, variables and ini (origin not `default`), then the spec's NOMAD_* fallbacks and defaults."""
        params = explicit_option_values(self, LOOKUP_ARGUMENT_SPEC)
        ids = [str(term) for term in terms or []] + list(params.get("id") or [])
        if ids:
            params["id"] = ids
        return validated_option_values(params, LOOKUP_ARGUMENT_SPEC)

    def _allocations(self, params):
        with NomadClient(connection_options_from_params(params), warn=display.warning) as client:
            selector = selector_of(params)
            selection = select(client, selector, ListOptions.from_params(params))
            allocations, _index = read_selection(client, selection, services=params["services"])
            missing = None if allocations else selection.why_empty
        if missing:
            display.warning(f"nomadops.nomad.nomad_alloc: {missing}")
        return allocations
