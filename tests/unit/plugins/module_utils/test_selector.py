# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Selector -> one bexpr filter, value quoting, short-ID resolution (against a fake Nomad on loopback)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import ConnectionOptions
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import (
    AllocationNotFoundError,
    AmbiguousPrefixError,
    SelectorError,
    bexpr_quote,
    normalize_prefix,
    resolve_allocation_id,
    selector_filter,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.selection import select_allocations
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    FakeNomad,
    Reply,
    json_reply,
)

try:  # the emulator's go-bexpr implementation, when the tests run from the repository
    from ansible_collections.nomadops.nomad.tests.emulator.bexpr import compile_filter
except ImportError:  # pragma: no cover
    compile_filter = None


# ------------------------------------------------------------------------------------------ Go unquoting (the oracle)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def go_bexpr_string_literal(text):
    """Read one go-bexpr string literal from the start of `text` the way its grammar and strconv.Unquote do:
    returns (value, rest). A double-quoted literal ends at the first `"` even after a backslash."""
    if text[0] == "`":
        end = text.index("`", 1)
        return text[1:end].replace("\r", ""), text[end + 1:]
    assert text[0] == '"'
    end = text.index('"', 1)
    body, rest = text[1:end], text[end + 1:]
    assert "\n" not in body
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        kind = body[i + 1]
        if kind in _SIMPLE:
            out.append(_SIMPLE[kind])
            i += 2
        elif kind == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif kind == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif kind == "U":
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        else:
            raise AssertionError(f"unknown escape {kind!r}")
    return "".join(out), rest


text_without_surrogates = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.from_regex(r"(/[a-z0-9~:|._-]{1,5}){1,3}", fullmatch=True),  # shaped like go-bexpr JSON pointers
    st.text(alphabet='"\\`/\n\r\t x', max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(text_without_surrogates)
def test_quoted_values_read_back_exactly(value):
    literal = bexpr_quote(value)
    parsed, rest = go_bexpr_string_literal(literal)
    assert parsed == value
    assert rest == ""
    assert not literal.startswith('"/')  # would be read as a JSON-pointer selector


@pytest.mark.skipif(compile_filter is None, reason="emulator sources not importable")
@settings(max_examples=200, deadline=None)
@given(text_without_surrogates)
def test_quoted_values_match_in_the_go_bexpr_implementation(value):
    expression = selector_filter({"job": value})
    if not value:
        assert expression is None  # an empty option means "not given"
        return
    compiled = compile_filter(expression)
    assert compiled.evaluate({"JobID": value})
    assert not compiled.evaluate({"JobID": value + "x"})


@pytest.mark.parametrize("value, literal", [
    ("web", '"web"'),
    ("a-b", '"a-b"'),
    ('back\\slash', '"back\\\\slash"'),
    ("tab\tnew\nline", '"tab\\tnew\\nline"'),
    ("\x01\x7f", '"\\x01\\x7f"'),
    ("caf\u00e9 \u4e2d", '"caf\u00e9 \u4e2d"'),
    ("\u2028", '"\\u2028"'),
    ('say "hi"', '`say "hi"`'),
    ('/say "hi"', '`/say "hi"`'),
    ('a"b`c\r', '"a\\x22b`c\\r"'),
    ("/0", '"\\x2f0"'),
    ("a/b", '"a/b"'),
])
def test_quoting_examples(value, literal):
    assert bexpr_quote(value) == literal


def test_lone_surrogates_are_refused():
    with pytest.raises(SelectorError, match="lone surrogate"):
        bexpr_quote("a\ud800")


# ------------------------------------------------------------------------------------------ filter building
def test_every_selector_option_becomes_one_and_joined_filter():
    expression = selector_filter({
        "job": "web", "task_group": "frontend", "node": "node-1",
        "client_status": ["running", "pending", "running"], "filter": ' Job.Type == "service" ',
    })
    assert expression == (
        'JobID == "web" and TaskGroup == "frontend" and (NodeID == "node-1" or NodeName == "node-1") '
        'and (ClientStatus == "running" or ClientStatus == "pending") and (Job.Type == "service")'
    )


def test_raw_filter_is_parenthesised_so_or_cannot_escape():
    assert selector_filter({"job": "web", "filter": 'ClientStatus == "a" or ClientStatus == "b"'}) == (
        'JobID == "web" and (ClientStatus == "a" or ClientStatus == "b")'
    )


def test_empty_selector_has_no_filter():
    assert selector_filter({"id": None, "job": None, "filter": "  ", "client_status": []}) is None


@pytest.mark.parametrize("prefix, sent", [("ABCD", "abcd"), ("abc", "ab"), ("5a222182-f", "5a222182"), ("5a22-18", "5a22-18")])
def test_prefix_normalisation(prefix, sent):
    assert normalize_prefix(prefix) == sent


@pytest.mark.parametrize("prefix, message", [("g1", "not an allocation ID or ID prefix"), ("a", "at least two characters"),
                                             ("0" * 37, "longer than an allocation ID")])
def test_bad_prefixes(prefix, message):
    with pytest.raises(SelectorError, match=message):
        normalize_prefix(prefix)


# ------------------------------------------------------------------------------------------ resolution
ALLOCS = [
    {"ID": "5a222182-ff6d-baf6-2a1c-1f6e0c3e8a10", "JobID": "web", "TaskGroup": "frontend", "ClientStatus": "running"},
    {"ID": "5a2f0000-0000-4000-8000-000000000001", "JobID": "web", "TaskGroup": "frontend", "ClientStatus": "pending"},
    {"ID": "9f1c0000-0000-4000-8000-000000000002", "JobID": "api", "TaskGroup": "api", "ClientStatus": "running"},
]


def prefix_listing(request):
    prefix = request.query.get("prefix", "")
    if len(prefix.replace("-", "")) % 2:
        return Reply(500, "alloc lookup failed: index error: Input (without hyphens) must be even length")
    return json_reply([a for a in ALLOCS if a["ID"].startswith(prefix)], index=40)


@pytest.fixture
def nomad():
    with FakeNomad(prefix_listing) as server:
        yield server


def client_for(nomad, namespace="default"):
    return NomadClient(ConnectionOptions(address=nomad.address, namespace=namespace, retries=0))


def test_full_id_resolves(nomad):
    assert resolve_allocation_id(client_for(nomad), ALLOCS[2]["ID"].upper())["ID"] == ALLOCS[2]["ID"]


def test_unique_short_prefix_resolves(nomad):
    assert resolve_allocation_id(client_for(nomad), "9f")["JobID"] == "api"
    assert nomad.requests[-1].query["prefix"] == "9f"


def test_odd_prefix_is_queried_even_and_matched_in_full(nomad):
    assert resolve_allocation_id(client_for(nomad), "5a2f0")["ID"] == ALLOCS[1]["ID"]
    assert resolve_allocation_id(client_for(nomad), "5a222")["ID"] == ALLOCS[0]["ID"]
    assert [r.query["prefix"] for r in nomad.requests] == ["5a2f", "5a22"]


def test_ambiguous_prefix_lists_the_matches(nomad):
    with pytest.raises(AmbiguousPrefixError) as failure:
        resolve_allocation_id(client_for(nomad), "5a2")
    assert nomad.requests[-1].query["prefix"] == "5a"
    assert str(failure.value) == (
        f'Prefix "5a2" matched 2 allocations at {nomad.address}: 5a222182 (job web, group frontend, running), '
        '5a2f0000 (job web, group frontend, pending) (give more characters)'
    )


def test_unknown_prefix(nomad):
    with pytest.raises(AllocationNotFoundError) as failure:
        resolve_allocation_id(client_for(nomad), "ee")
    assert str(failure.value) == (
        f'No allocation(s) with prefix or id "ee" found in namespace "default" at {nomad.address} (use namespace "*" to search all)'
    )
    assert failure.value.address == nomad.address


def test_unknown_prefix_in_all_namespaces(nomad):
    with pytest.raises(AllocationNotFoundError) as failure:
        resolve_allocation_id(client_for(nomad, namespace="*"), "ee")
    assert str(failure.value) == f'No allocation(s) with prefix or id "ee" found at {nomad.address}'
    assert nomad.requests[-1].query["namespace"] == "*"


@pytest.mark.parametrize("bad", ["x", "zz", "5a22 ", "web"])
def test_bad_ids_fail_before_any_request(nomad, bad):
    if bad == "5a22 ":
        resolve_allocation_id(client_for(nomad), bad)  # surrounding blanks are trimmed
        return
    with pytest.raises(SelectorError):
        resolve_allocation_id(client_for(nomad), bad)
    assert nomad.requests == []


def test_select_by_ids_alone_lists_only_by_prefix(nomad):
    stubs = select_allocations(client_for(nomad), {"id": ["9f", "5a22", "9f1c"]})
    assert [s["JobID"] for s in stubs] == ["api", "web"]
    assert all(set(r.query) == {"namespace", "prefix"} for r in nomad.requests)


def test_select_with_ids_and_other_options_sends_one_filter(nomad):
    select_allocations(client_for(nomad), {"id": ["9f"], "client_status": ["running"], "job": "api"}, per_page=5)
    listing = nomad.requests[-1]
    assert listing.query["filter"] == (
        '(ID == "9f1c0000-0000-4000-8000-000000000002") and JobID == "api" and (ClientStatus == "running")'
    )
    assert listing.query["per_page"] == "5"


def test_select_sends_prefix_and_list_options(nomad):
    select_allocations(client_for(nomad), {"job": "web", "prefix": "5A2"}, namespace="*", reverse=True,
                       resources=True, task_states=False)
    assert nomad.requests[-1].query == {"namespace": "*", "filter": 'ID matches "^5a2" and JobID == "web"', "prefix": "5a",
                                        "reverse": "true", "resources": "true", "task_states": "false"}


def test_even_prefix_needs_no_narrowing(nomad):
    select_allocations(client_for(nomad), {"prefix": "5A22"})
    assert nomad.requests[-1].query == {"namespace": "default", "prefix": "5a22"}


def test_select_with_many_ids_matches_them_on_the_client_side():
    """More IDs than FILTER_CLAUSE_LIMIT would make an ID filter longer than proxies accept in a request line."""
    fleet = [{"ID": f"{n:08x}-0000-4000-8000-000000000000", "JobID": "web", "ClientStatus": "running"}
             for n in range(100)]
    bystanders = [{"ID": f"ffff{n:04x}-0000-4000-8000-000000000000", "JobID": "web", "ClientStatus": "running"}
                  for n in range(3)]

    def listing(request):
        return json_reply(fleet + bystanders, index=7)

    wanted = [alloc["ID"] for alloc in fleet[::-1]]
    with FakeNomad(listing) as server:
        stubs = select_allocations(client_for(server), {"id": wanted, "job": "web"})
    assert [stub["ID"] for stub in stubs] == [alloc["ID"] for alloc in fleet]
    assert server.requests[-1].query["filter"] == 'JobID == "web"'
    assert all(len(request.path) + len(str(request.query)) < 1024 for request in server.requests)
