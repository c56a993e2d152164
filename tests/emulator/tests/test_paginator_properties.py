# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Property tests of the paginator itself (in-process, no HTTP): every allocation exactly once, in order."""
from __future__ import annotations

import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.emulator.pagination import ListRequest, list_page
from tests.emulator.scenario import build_nodes, build_virtual
from tests.emulator.state import Emulator


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    state = Emulator({"namespaces": ["default"]}, state_dir=tempfile.gettempdir())
    build_nodes(state)
    build_virtual(state, {"count": 400, "jobs": 7})  # create indexes 5..404: one to three digits
    return state


def walk(emulator: Emulator, **options) -> list:
    seen, token = [], ""
    for _page in range(2000):
        page = list_page(emulator, ListRequest(next_token=token, **options))
        seen += [alloc.id for alloc in page.allocations]
        token = page.next_token
        if not token:
            return seen
    raise AssertionError("pagination did not end")


@settings(max_examples=25, deadline=None)
@given(per_page=st.integers(min_value=1, max_value=120), reverse=st.booleans(), namespace=st.sampled_from(["*", "default"]))
def test_walk_returns_everything_once(emulator, per_page, reverse, namespace):
    expected = [alloc.id for alloc in emulator.create_ordered(None)[0]]
    if reverse:
        expected.reverse()
    assert walk(emulator, per_page=per_page, reverse=reverse, namespace=namespace) == expected


@settings(max_examples=40, deadline=None)
@given(prefix=st.text(alphabet="0123456789abcdef", min_size=2, max_size=2), per_page=st.integers(1, 5))
def test_prefix_walk_is_sorted_by_id(emulator, prefix, per_page):
    expected = sorted(alloc.id for alloc in emulator.allocs.values() if alloc.id.startswith(prefix))
    assert walk(emulator, prefix=prefix, per_page=per_page, namespace="*") == expected


@settings(max_examples=40, deadline=None)
@given(per_page=st.integers(min_value=1, max_value=60))
def test_string_compare_never_loses_the_first_page(emulator, per_page):
    first = list_page(emulator, ListRequest(per_page=per_page, namespace="*", string_compare=True))
    correct = list_page(emulator, ListRequest(per_page=per_page, namespace="*"))
    assert [a.id for a in first.allocations] == [a.id for a in correct.allocations]
    assert first.next_token == correct.next_token
