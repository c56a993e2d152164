# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pagination over thousands of virtual allocations: tokens, the paginator, the string-compare switch (§1)."""
from __future__ import annotations

import pytest

from conftest import Api


@pytest.fixture(scope="module")
def vapi(virtual_emulator) -> Api:
    return Api(virtual_emulator)


def walk(api: Api, **params):
    """Follow X-Nomad-NextToken to the end; returns (allocations, tokens seen)."""
    allocations, tokens = [], []
    token = None
    for _page in range(10_000):
        query = dict(params)
        if token:
            query["next_token"] = token
        response = api.get("/v1/allocations", params=query)
        assert response.status_code == 200, response.text
        allocations += response.json()
        token = response.headers.get("X-Nomad-NextToken")
        if not token:
            return allocations, tokens
        if token in tokens:
            return allocations, tokens + [token]
        tokens.append(token)
    raise AssertionError("pagination did not end")


def test_every_allocation_exactly_once(vapi):
    everything = vapi.allocations()
    assert len(everything) > 3000
    pages, tokens = walk(vapi, namespace="*", per_page=250)
    ids = [alloc["ID"] for alloc in pages]
    assert len(ids) == len(set(ids)) == len(everything)
    assert ids == [alloc["ID"] for alloc in everything]
    assert len(tokens) == len(everything) // 250


def test_token_names_the_first_item_of_the_next_page(vapi):
    everything = vapi.allocations()
    response = vapi.get("/v1/allocations", params={"namespace": "*", "per_page": 10})
    assert len(response.json()) == 10
    eleventh = everything[10]
    assert response.headers["X-Nomad-NextToken"] == f"{eleventh['CreateIndex']}.{eleventh['ID']}"
    following = vapi.get("/v1/allocations", params={"namespace": "*", "per_page": 10,
                                                    "next_token": response.headers["X-Nomad-NextToken"]})
    assert following.json()[0]["ID"] == eleventh["ID"]


def test_create_indexes_cross_digit_boundaries(vapi):
    lengths = {len(str(alloc["CreateIndex"])) for alloc in vapi.allocations()}
    assert {1, 2, 3, 4} <= lengths


def test_reverse_pagination(vapi):
    everything = vapi.allocations()
    pages, _tokens = walk(vapi, namespace="*", per_page=400, reverse="true")
    assert [alloc["ID"] for alloc in pages] == [alloc["ID"] for alloc in everything][::-1]


def test_prefix_pagination_uses_bare_ids(vapi):
    matching = vapi.allocations(prefix="ab")
    assert len(matching) > 4
    response = vapi.get("/v1/allocations", params={"namespace": "*", "prefix": "ab", "per_page": 2})
    assert response.headers["X-Nomad-NextToken"] == matching[2]["ID"]
    pages, _tokens = walk(vapi, namespace="*", prefix="ab", per_page=2)
    assert [a["ID"] for a in pages] == [a["ID"] for a in matching] == sorted(a["ID"] for a in matching)


def test_single_namespace_pagination(vapi):
    default = vapi.allocations(namespace="default")
    pages, _tokens = walk(vapi, namespace="default", per_page=999)
    assert [a["ID"] for a in pages] == [a["ID"] for a in default]
    assert {a["Namespace"] for a in pages} == {"default"}


def test_string_compare_switch_reproduces_a_repeated_token(emulator_factory):
    emulator = emulator_factory(virtual=2000)
    api = Api(emulator)
    assert emulator.control.settings()["string_token_compare"] is False
    emulator.control.settings(string_token_compare=True)
    try:
        pages, tokens = walk(api, namespace="*", per_page=50)
        everything = api.allocations()
        ids = [a["ID"] for a in pages]
        assert len(tokens) != len(set(tokens)) or len(set(ids)) != len(everything) or len(ids) != len(set(ids)), \
            "string-compared tokens should repeat or skip pages once create indexes gain a digit"
    finally:
        emulator.control.settings(string_token_compare=False)
    pages, tokens = walk(api, namespace="*", per_page=50)
    assert len(tokens) == len(set(tokens))
    assert len({a["ID"] for a in pages}) == len(api.allocations())


def test_string_compare_from_the_command_line(emulator_factory):
    emulator = emulator_factory(virtual=300, string_token_compare=True)
    assert emulator.control.settings()["string_token_compare"] is True
    api = Api(emulator)
    everything = api.allocations()
    at_100 = next(a for a in everything if a["CreateIndex"] == 100)
    token = f"100.{at_100['ID']}"
    # "5.x" > "100.x" as strings, so the first allocation already passes the token check: the walk restarts
    page = api.get("/v1/allocations", params={"namespace": "*", "next_token": token, "per_page": 5}).json()
    assert [a["ID"] for a in page] == [a["ID"] for a in everything[:5]]
    emulator.control.settings(string_token_compare=False)
    page = api.get("/v1/allocations", params={"namespace": "*", "next_token": token, "per_page": 5}).json()
    assert page[0]["ID"] == at_100["ID"]
