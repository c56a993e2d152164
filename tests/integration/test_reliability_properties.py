# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Property-based tests (hypothesis).

1. Selector -> bexpr quoting: any string value, quoted by the collection, parses in the EMULATOR's go-bexpr
   implementation (tests/emulator/bexpr.py) and matches exactly that value, never a different one.
2. Pagination: for any page size, order and filter, the collection's client lists every matching
   allocation exactly once from a running emulator with a few hundred virtual allocations, with Nomad's
   string-compared token bug switched on or off.
"""

from __future__ import annotations

import socket

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import collection_module, running_emulator
from tests.emulator import bexpr

VIRTUAL_ALLOCATIONS = 320
VIRTUAL_JOBS = 7


collection = collection_module


# ------------------------------------------------------------------------------------------ quoting
# Every code point except lone surrogates (not text), with the troublesome ones made likely.
TRICKY = st.sampled_from(['"', "\\", "`", "'", "/", "\x00", "\n", "\t", "\x7f", "\u2028", "é", "\U0001f600",
                          " ", "==", " and ", ")", "(", "*", "\\x22", "\\u0041", "%"])
VALUES = st.one_of(
    st.text(),
    st.lists(st.one_of(TRICKY, st.text(max_size=3)), max_size=8).map("".join),
    st.text().map(lambda text: "/" + text),
)


@settings(max_examples=400, deadline=None)
@given(value=VALUES, other=VALUES)
@example(value='a"b', other="a")
@example(value="/a/b", other="a/b")
@example(value="\\x22", other='"')
@example(value="`raw`", other="raw")
def test_any_value_quoted_by_the_selector_matches_exactly_itself_in_the_emulator(value, other):
    assume(value != other)
    selector = collection("allocations.filters")
    # An empty job means "not set" to the selector; the quoting itself must still handle it.
    expression = selector.selector_filter({"job": value}) if value else "JobID == " + selector.bexpr_quote(value)
    compiled = bexpr.compile_filter(expression)
    assert compiled.evaluate({"JobID": value}) is True, expression
    assert compiled.evaluate({"JobID": other}) is False, expression


@settings(max_examples=150, deadline=None)
@given(values=st.lists(VALUES.filter(bool), min_size=1, max_size=4, unique=True), other=VALUES)
def test_node_and_group_clauses_combine_without_leaking_into_each_other(values, other):
    """Several quoted values in one expression: each clause stays itself (no quote ends a literal early)."""
    assume(other not in values)
    selector = collection("allocations.filters")
    expression = selector.selector_filter({"task_group": values[0], "node": values[-1]})
    compiled = bexpr.compile_filter(expression)
    datum = {"TaskGroup": values[0], "NodeID": "not-it", "NodeName": values[-1]}
    assert compiled.evaluate(datum) is True, expression
    assert compiled.evaluate(dict(datum, TaskGroup=other)) is False, expression
    assert compiled.evaluate(dict(datum, NodeName=other)) is False, expression
    ids = selector.id_filter(values)
    compiled_ids = bexpr.compile_filter(ids)
    assert all(compiled_ids.evaluate({"ID": value}) for value in values)
    assert compiled_ids.evaluate({"ID": other}) is False


@given(value=st.text(min_size=1).map(lambda text: text + "\ud800"))
@settings(max_examples=20, deadline=None)
def test_a_lone_surrogate_is_refused_with_a_selector_error(value):
    selector = collection("allocations.filters")
    with pytest.raises(selector.SelectorError):
        selector.bexpr_quote(value)


# ------------------------------------------------------------------------------------------ pagination
@pytest.fixture(scope="module")
def virtual_emulator(tmp_path_factory):
    scenario = tmp_path_factory.mktemp("virtual") / "virtual.yml"
    scenario.write_text(yaml.safe_dump({
        "region": "global", "datacenter": "dc1", "acl": False, "namespaces": ["default", "other"],
        "nodes": [{"name": "node-1"}], "jobs": [],
        "virtual": {"count": VIRTUAL_ALLOCATIONS, "job": "virtual", "jobs": VIRTUAL_JOBS},
    }))
    with running_emulator(str(scenario)) as emulator:
        client = collection_client(emulator.address, namespace="*")
        # Some terminal allocations, so that client_status filters select real subsets.
        everything = sorted(emulator.allocations("*"), key=lambda a: a["ID"])
        for alloc in everything[::9]:
            client.write("POST", f"/v1/allocation/{alloc['ID']}/stop", {"namespace": alloc["Namespace"]})
        yield emulator, client
        client.close()


def collection_client(address, **options):
    options = collection("common.options").connection_options_from_params(dict(address=address, retries=2, **options))
    return collection("common.client").NomadClient(options)


SELECTORS = st.fixed_dictionaries({}, optional={
    "job": st.sampled_from([f"virtual-{n}" for n in range(VIRTUAL_JOBS)] + ["virtual-99", 'virtual-"1']),
    "client_status": st.lists(st.sampled_from(["running", "complete", "pending", "failed"]), min_size=1,
                              max_size=3),
    "prefix": st.text("0123456789abcdef", min_size=2, max_size=3),
    "filter": st.sampled_from(['Name matches "\\\\[1\\\\]$"', 'ID matches "^[0-7]"', "CreateIndex == 100",
                               'TaskGroup == "main"', 'JobID != "virtual-3"', 'ClientStatus != "running"']),
})


def matches(stub, selector):
    """The selector evaluated locally, on the unpaginated listing."""
    if "job" in selector and stub["JobID"] != selector["job"]:
        return False
    if "client_status" in selector and stub["ClientStatus"] not in selector["client_status"]:
        return False
    if "prefix" in selector and not stub["ID"].startswith(selector["prefix"]):
        return False
    if "filter" in selector:
        return bexpr.compile_filter(selector["filter"]).evaluate(stub)
    return True


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(per_page=st.one_of(st.none(), st.integers(min_value=1, max_value=VIRTUAL_ALLOCATIONS + 5)),
       selector=SELECTORS, reverse=st.booleans(), string_tokens=st.booleans())
@example(per_page=1, selector={}, reverse=False, string_tokens=True)
@example(per_page=7, selector={"filter": 'ID matches "^[0-7]"'}, reverse=True, string_tokens=True)
def test_every_allocation_exactly_once_for_any_page_size_and_filter(virtual_emulator, per_page, selector, reverse,
                                                                    string_tokens):
    emulator, client = virtual_emulator
    selector_module = collection("allocations.filters")
    emulator.control.settings(string_token_compare=string_tokens)
    try:
        everything = emulator.allocations("*")
        expected = sorted(stub["ID"] for stub in everything if matches(stub, selector))
        full_selector = dict({key: None for key in selector_module.SELECTOR_KEYS}, **selector)
        selection_module = collection("allocations.selection")
        listed = selection_module.select_allocations(client, full_selector, namespace="*", per_page=per_page,
                                                     reverse=reverse)
    finally:
        emulator.control.settings(string_token_compare=False)
    ids = [stub["ID"] for stub in listed]
    assert len(ids) == len(set(ids)), "an allocation was listed twice"
    assert sorted(ids) == expected


def test_the_string_token_bug_is_really_exercised(virtual_emulator):
    """Guard for the property above: with the switch on, following tokens naively loops (the bug is
    live), while the collection lists every allocation once and says what it did."""
    emulator, client = virtual_emulator
    selector_module = collection("allocations.filters")
    emulator.control.settings(string_token_compare=True)
    try:
        tokens = []
        response = client.read("/v1/allocations", {"namespace": "*", "per_page": 7})
        while response.next_token and response.next_token not in tokens and len(tokens) < 500:
            tokens.append(response.next_token)
            query = {"namespace": "*", "per_page": 7, "next_token": response.next_token}
            response = client.read("/v1/allocations", query)
        assert response.next_token in tokens, "the emulator did not reproduce hashicorp/nomad#25435"
        client.warnings.clear()
        selection_module = collection("allocations.selection")
        listed = selection_module.select_allocations(client, {key: None for key in selector_module.SELECTOR_KEYS},
                                                     namespace="*", per_page=7)
    finally:
        emulator.control.settings(string_token_compare=False)
    assert sorted(stub["ID"] for stub in listed) == sorted(a["ID"] for a in emulator.allocations("*"))
    assert any("hashicorp/nomad#25435" in warning for warning in client.warnings)


# ------------------------------------------------------------------------------------------ no crash on any text
def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


URL_PIECES = st.sampled_from(["://", "@", ":", "?", "#", "%zz"])
ANY_TEXT = st.one_of(st.text(), st.lists(st.one_of(TRICKY, URL_PIECES, st.text(max_size=3)), max_size=6).map("".join))


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["address", "namespace", "region", "id", "prefix", "job", "filter", "node",
                              "tls_server_name"]),
       value=ANY_TEXT)
def test_any_text_in_an_option_fails_only_with_the_collections_one_line_errors(field, value):
    """Whatever text a user puts in these options, the runtimes only ever see NomadError or
    NomadOptionError (turned into one-line messages), never another exception (a traceback).
    (token and http_auth outside latin-1 do not hold today: see test_reliability_bad_input.py.)"""
    client_module, options_module, selector_module = collection("common.client"), collection("common.options"), collection("allocations.filters")
    params = {"address": f"http://127.0.0.1:{PORT_NOBODY_LISTENS_ON}", "retries": 0, "timeout": 2}
    selector = {key: None for key in selector_module.SELECTOR_KEYS}
    if field == "id":
        selector["id"] = [value]
    elif field in selector:
        selector[field] = value
    else:
        params[field] = value
    try:
        with client_module.NomadClient(options_module.connection_options_from_params(params)) as client:
            collection("allocations.selection").select(client, selector)
    except (client_module.NomadError, options_module.NomadOptionError):
        # Expected; the module/lookup/action boundaries make their text one line (_module.one_line).
        return


PORT_NOBODY_LISTENS_ON = closed_port()
