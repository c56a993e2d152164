# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nomad_alloc lookup against a fake Nomad on loopback: option precedence (keyword > variable >
NOMAD_* environment > default), results, errors.

The plugin's option definitions are built from its documentation and the doc fragments (merged per option
like Ansible does), so the test does not depend on the collection loader; the integration tests load the
plugin through Ansible itself."""

from __future__ import annotations

import pytest

import yaml

from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleLookupError

from ansible_collections.nomadops.nomad.plugins.doc_fragments import selector
from ansible_collections.nomadops.nomad.plugins.lookup import nomad_alloc
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import connection_option_definitions
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    FakeNomad,
    Reply,
    free_port,
    json_reply,
)

TOKEN = "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01"
STUB = {"ID": "5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10", "JobID": "web", "Namespace": "default"}
FULL = dict(STUB, Job={"ID": "web"})


def nomad_like(request):
    if request.path == "/v1/allocations":
        if request.headers.get("X-Nomad-Token") == "denied-token":
            return Reply(403, "Permission denied")
        prefix = request.query.get("prefix", "")
        return json_reply([STUB] if STUB["ID"].startswith(prefix) else [], index=9)
    if request.path == "/v1/allocation/" + STUB["ID"]:
        return json_reply(FULL, index=8)
    return Reply(404, "resource not found")


PLUGIN_NAME = "nomadops.nomad.nomad_alloc"


def option_definitions():
    """The lookup's options: its own, the selector and connection fragments, the PLUGINS layer merged in."""
    options = {}
    options.update(yaml.safe_load(selector.ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(connection_option_definitions())
    options.update(yaml.safe_load(nomad_alloc.DOCUMENTATION)["options"])
    return options


@pytest.fixture(scope="module")
def lookup_plugin():
    C.config.initialize_plugin_configuration_definitions("lookup", PLUGIN_NAME, option_definitions())

    def new_plugin():
        plugin = nomad_alloc.LookupModule()
        plugin._load_name = PLUGIN_NAME
        return plugin

    return new_plugin


@pytest.fixture
def nomad():
    with FakeNomad(nomad_like) as server:
        yield server


def test_selector_keywords_return_a_list_of_stubs(lookup_plugin, nomad):
    result = lookup_plugin().run([], variables={}, address=nomad.address, job="web", client_status=["running"])
    assert result == [STUB]
    assert nomad.requests[0].query["filter"] == 'JobID == "web" and (ClientStatus == "running")'


def test_terms_return_full_objects(lookup_plugin, nomad):
    assert lookup_plugin().run(["5a22"], variables={}, address=nomad.address) == [FULL]


def test_empty_result_is_an_empty_list(lookup_plugin):
    with FakeNomad(lambda request: json_reply([], index=3)) as empty:
        assert lookup_plugin().run([], variables={}, address=empty.address, job="nothing") == []


def test_precedence(lookup_plugin, nomad, monkeypatch):
    unreachable = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("NOMAD_ADDR", unreachable)
    monkeypatch.setenv("NOMAD_NAMESPACE", "from-env")
    variables = {"ansible_nomad_address": nomad.address, "ansible_nomad_namespace": "from-var"}
    lookup_plugin().run([], variables=variables)
    assert nomad.requests[-1].query["namespace"] == "from-var"
    lookup_plugin().run([], variables=variables, namespace="from-keyword")
    assert nomad.requests[-1].query["namespace"] == "from-keyword"
    monkeypatch.setenv("NOMAD_ADDR", nomad.address)
    lookup_plugin().run([], variables={})
    assert nomad.requests[-1].query["namespace"] == "from-env"
    monkeypatch.delenv("NOMAD_NAMESPACE")
    lookup_plugin().run([], variables={})
    assert nomad.requests[-1].query["namespace"] == "default"


def test_token_from_variable_is_sent_and_never_in_errors(lookup_plugin, nomad):
    lookup_plugin().run([], variables={"ansible_nomad_token": TOKEN}, address=nomad.address)
    assert nomad.requests[-1].headers["X-Nomad-Token"] == TOKEN
    with pytest.raises(AnsibleLookupError) as failure:
        lookup_plugin().run([], variables={}, address=nomad.address, token="denied-token")
    assert str(failure.value) == 'GET /v1/allocations failed: 403 Permission denied (check that the token has read-job in namespace "default")'


@pytest.mark.parametrize("kwargs, message", [
    ({"id": ["zz"]}, 'id "zz" is not an allocation ID or ID prefix'),
    ({"per_page": 0}, "per_page must be 1 or more (got 0)"),
    ({"prefix": "g"}, 'prefix "g" must contain at least two characters'),
])
def test_bad_options_are_lookup_errors(lookup_plugin, nomad, kwargs, message):
    with pytest.raises(AnsibleLookupError) as failure:
        lookup_plugin().run([], variables={}, address=nomad.address, **kwargs)
    assert str(failure.value).startswith(message), str(failure.value)
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize("kwargs, option", [({"client_status": ["runing"]}, "client_status"), ({"retries": "many"}, "retries")])
def test_wrong_types_and_choices_are_refused_by_ansible_options(lookup_plugin, nomad, kwargs, option):
    with pytest.raises(AnsibleError, match=option):
        lookup_plugin().run([], variables={}, address=nomad.address, **kwargs)
    assert nomad.requests == []


@pytest.mark.parametrize("kwargs, message", [
    ({"jbo": "web"}, "nomadops.nomad.nomad_alloc: unknown keyword argument jbo (did you mean job?); known: address, "),
    ({"namespce": "prod"}, "nomadops.nomad.nomad_alloc: unknown keyword argument namespce (did you mean namespace?); known: "),
    ({"jbo": "web", "zzz": 1}, "nomadops.nomad.nomad_alloc: unknown keyword arguments jbo, zzz (did you mean job for jbo?); known: "),
])
def test_unknown_keywords_are_refused_before_any_request(lookup_plugin, nomad, kwargs, message):
    with pytest.raises(AnsibleLookupError) as failure:
        lookup_plugin().run([], variables={}, address=nomad.address, **kwargs)
    assert str(failure.value).startswith(message), str(failure.value)
    assert "task_group" in str(failure.value) and "\n" not in str(failure.value)
    assert nomad.requests == []


class VariableTemplar:
    """Renders `{{ name }}` from a dict, as Ansible's templar does for the variables a lookup receives raw."""

    def __init__(self, variables):
        self.variables = variables

    def template(self, value):
        if isinstance(value, str) and value.startswith("{{"):
            return self.variables[value.strip("{} ")]
        return value


def test_variables_are_templated_before_use(lookup_plugin, nomad, monkeypatch):
    monkeypatch.setenv("NOMAD_ADDR", f"http://127.0.0.1:{free_port()}")
    variables = {"nomad_addr": nomad.address, "ansible_nomad_address": "{{ nomad_addr }}", "ansible_nomad_timeout": "{{ t }}"}
    plugin = lookup_plugin()
    plugin._templar = VariableTemplar(dict(variables, t="7"))
    assert plugin.run([], variables=variables, job="web") == [STUB]
    assert plugin.get_option("timeout") == 7.0
