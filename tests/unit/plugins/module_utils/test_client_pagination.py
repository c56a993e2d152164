# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""paginate() against a server that paginates like Nomad 1.6, including its string-compared tokens
(hashicorp/nomad#25435): every allocation must come back exactly once."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.common import client as _client
from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import MAX_STALLED_PAGES, NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadPaginationError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import ConnectionOptions
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    FakeNomad,
    json_reply,
)


def allocations(count, first_index=5):
    """Allocations with CreateIndex values of different digit counts (5 .. 5+count-1)."""
    return [{"ID": str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15) % (1 << 128))), "CreateIndex": first_index + n}
            for n in range(count)]


class Nomad16Paginator:
    """GET /v1/allocations as Nomad 1.6's paginator does it: ordered by (CreateIndex, ID) without prefix,
    by ID with prefix; token = `<CreateIndex>.<ID>` (or the ID); tokens compared as plain strings."""

    def __init__(self, items, string_compare=True):
        self.items = items
        self.string_compare = string_compare

    def token(self, item, prefixed):
        return item["ID"] if prefixed else f"{item['CreateIndex']}.{item['ID']}"

    def before(self, item_token, wanted, prefixed):
        if self.string_compare or prefixed:
            return item_token < wanted
        index, _dot, rest = wanted.partition(".")
        return (int(item_token.split(".")[0]), item_token) < (int(index), wanted)

    def __call__(self, request):
        prefix = request.query.get("prefix", "")
        prefixed = bool(prefix)
        ordered = sorted(self.items, key=(lambda a: a["ID"]) if prefixed else (lambda a: (a["CreateIndex"], a["ID"])))
        ordered = [a for a in ordered if a["ID"].startswith(prefix)]
        per_page = int(request.query.get("per_page", "0"))
        wanted = request.query.get("next_token", "")
        page, found = [], not wanted
        for item in ordered:
            item_token = self.token(item, prefixed)
            if not found and self.before(item_token, wanted, prefixed):
                continue
            found = True
            if per_page and len(page) == per_page:
                return json_reply(page, index=99, next_token=item_token)
            page.append(item)
        return json_reply(page, index=99)


def make_client(address):
    warnings = []
    return NomadClient(ConnectionOptions(address=address, retries=0), warn=warnings.append), warnings


def ids(items):
    return [item["ID"] for item in items]


def test_pages_are_followed_in_order():
    items = allocations(25, first_index=100)  # same digit count: no token trouble
    with FakeNomad(Nomad16Paginator(items)) as nomad:
        client, warnings = make_client(nomad.address)
        listed = list(client.paginate("/v1/allocations", {"filter": "x"}, per_page=10))
    assert ids(listed) == ids(sorted(items, key=lambda a: (a["CreateIndex"], a["ID"])))
    assert len(nomad.requests) == 3
    assert [r.query.get("next_token") is not None for r in nomad.requests] == [False, True, True]
    assert all(r.query["filter"] == "x" and r.query["per_page"] == "10" for r in nomad.requests)
    assert warnings == []


@pytest.mark.parametrize("count, per_page", [(30, 1), (120, 7), (300, 50), (1000, 100)])
def test_string_compared_tokens_still_return_every_allocation_once(count, per_page):
    items = allocations(count)  # CreateIndex 5..: crosses 9->10 and 99->100
    with FakeNomad(Nomad16Paginator(items, string_compare=True)) as nomad:
        client, warnings = make_client(nomad.address)
        listed = list(client.paginate("/v1/allocations", {}, per_page=per_page))
    assert sorted(ids(listed)) == sorted(ids(items))
    assert len(set(ids(listed))) == len(listed)
    assert len(warnings) == 1 and "hashicorp/nomad#25435" in warnings[0]
    assert any(r.query.get("prefix") for r in nomad.requests)


def test_correct_tokens_need_no_recovery():
    items = allocations(120)
    with FakeNomad(Nomad16Paginator(items, string_compare=False)) as nomad:
        client, warnings = make_client(nomad.address)
        listed = list(client.paginate("/v1/allocations", {}, per_page=7))
    assert ids(listed) == ids(sorted(items, key=lambda a: (a["CreateIndex"], a["ID"])))
    assert warnings == []
    assert not any(r.query.get("prefix") for r in nomad.requests)


def test_limit_stops_listing_early():
    items = allocations(100, first_index=100)
    with FakeNomad(Nomad16Paginator(items)) as nomad:
        client, _warnings = make_client(nomad.address)
        listed = list(client.paginate("/v1/allocations", {}, per_page=10, limit=15))
    assert len(listed) == 15
    assert len(nomad.requests) == 2


def test_limit_is_honoured_during_recovery():
    items = allocations(300)
    with FakeNomad(Nomad16Paginator(items)) as nomad:
        client, _warnings = make_client(nomad.address)
        listed = list(client.paginate("/v1/allocations", {}, per_page=20, limit=150))
    assert len(listed) == 150 and len(set(ids(listed))) == 150


def test_on_response_sees_every_page():
    items = allocations(25, first_index=100)
    seen = []
    with FakeNomad(Nomad16Paginator(items)) as nomad:
        client, _warnings = make_client(nomad.address)
        list(client.paginate("/v1/allocations", {}, per_page=10, on_response=seen.append))
    assert [response.index for response in seen] == [99, 99, 99]


def test_without_per_page_one_request():
    items = allocations(50)
    with FakeNomad(Nomad16Paginator(items)) as nomad:
        client, _warnings = make_client(nomad.address)
        assert len(list(client.paginate("/v1/allocations"))) == 50
    assert len(nomad.requests) == 1 and "per_page" not in nomad.requests[0].query


class EndlessTokens:
    """A broken or hostile endpoint: the same page with a new, never repeated next token every time."""

    def __init__(self, items):
        self.items = items
        self.served = 0

    def __call__(self, request):
        self.served += 1
        return json_reply(self.items[:2], index=99, next_token=f"1.{uuid.uuid4()}")


def test_new_tokens_that_never_end_fail_after_the_stalled_pages():
    with FakeNomad(EndlessTokens(allocations(5))) as nomad:
        client, _warnings = make_client(nomad.address)
        with pytest.raises(NomadPaginationError, match="1000 pages in a row with new pagination tokens but no new item"):
            list(client.paginate("/v1/allocations", {}, per_page=2))
    assert len(nomad.requests) == MAX_STALLED_PAGES + 1


def sparse_pages(every):
    """A new item on every `every`-th page, always another next token."""
    served = []

    def answer(request):
        served.append(1)
        items = [{"ID": str(uuid.uuid4())}] if len(served) % every == 0 else []
        return json_reply(items, index=99, next_token=f"1.{uuid.uuid4()}")

    return answer


def test_pages_beyond_what_limit_can_need_fail(monkeypatch):
    monkeypatch.setattr(_client, "MAX_STALLED_PAGES", 5)
    with FakeNomad(sparse_pages(2)) as nomad:
        client, _warnings = make_client(nomad.address)
        assert len(list(client.paginate("/v1/allocations", {}, per_page=1, limit=10))) == 10
    with FakeNomad(sparse_pages(3)) as nomad:
        client, _warnings = make_client(nomad.address)
        with pytest.raises(NomadPaginationError, match="did not end after 65 pages"):
            list(client.paginate("/v1/allocations", {}, per_page=1, limit=30))
