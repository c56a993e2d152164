# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GET /v1/allocations: iteration order, tokens and Nomad's paginator (reference §1)."""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .httpjson import HttpError
from .state import Emulator
from .uuidindex import IndexError_, lookup_error, parse_uuid


@dataclass
class ListRequest:
    namespace: str = "default"
    prefix: str = ""
    per_page: int = 0
    next_token: str = ""
    reverse: bool = False
    filter_text: str = ""
    allowed_namespaces: set | None = None  # None = no ACL restriction
    string_compare: bool = False


@dataclass
class Page:
    allocations: list = field(default_factory=list)
    next_token: str = ""


def _compile_filter(text: str):
    if not text:
        return None
    from . import bexpr  # imported lazily: built in parallel, and not needed without filters
    try:
        return bexpr.compile_filter(text)
    except bexpr.FilterParseError as err:
        raise HttpError(400, f"failed to create result paginator: failed to read filter expression: {err}") from err


def _prefix_candidates(emulator: Emulator, request: ListRequest):
    try:
        hex_prefix = parse_uuid(request.prefix, exact=False)
    except IndexError_ as err:
        raise HttpError(500, lookup_error(err), rpc=True) from err
    start, end = emulator.hex_range(hex_prefix)
    positions = range(end - 1, start - 1, -1) if request.reverse else range(start, end)
    namespace = None if request.namespace == "*" else request.namespace
    for position in positions:
        alloc = emulator.alloc_by_hex(position)
        if namespace is None or alloc.namespace == namespace:
            yield alloc


def _parse_create_token(token: str):
    created, dot, alloc_id = token.partition(".")
    if not dot or not created.isdigit():
        return None
    return int(created), alloc_id


def _create_candidates(emulator: Emulator, request: ListRequest):
    """Allocations in (CreateIndex, ID) order and whether the token comparison is already done by position."""
    allocs, keys = emulator.create_ordered(None if request.namespace == "*" else request.namespace)
    key = None if request.string_compare or not request.next_token else _parse_create_token(request.next_token)
    if key is None:
        start = len(allocs) - 1 if request.reverse else 0
        positioned = False
    elif request.reverse:
        start = bisect.bisect_right(keys, key) - 1
        positioned = True
    else:
        start = bisect.bisect_left(keys, key)
        positioned = True
    positions = range(start, -1, -1) if request.reverse else range(start, len(allocs))
    return (allocs[position] for position in positions), positioned


def list_page(emulator: Emulator, request: ListRequest) -> Page:
    if request.prefix:
        candidates = _prefix_candidates(emulator, request)
        token_of = _id_token
        positioned = False
    else:
        candidates, positioned = _create_candidates(emulator, request)
        token_of = _create_token
    matcher = _compile_filter(request.filter_text)
    return _paginate(candidates, token_of, positioned, matcher, request)


def _id_token(alloc) -> str:
    return alloc.id


def _create_token(alloc) -> str:
    return alloc.token


def _paginate(candidates, token_of, positioned: bool, matcher, request: ListRequest) -> Page:
    """Nomad's paginator: skip items before next_token (string compare), filter, count, stop past per_page."""
    page = Page()
    found = positioned or not request.next_token
    count = 0
    for alloc in candidates:
        if not found:
            token = token_of(alloc)
            if (token > request.next_token) if request.reverse else (token < request.next_token):
                continue
        if request.allowed_namespaces is not None and alloc.namespace not in request.allowed_namespaces:
            continue
        if matcher is not None and not _matches(matcher, alloc):
            continue
        found = True
        count += 1
        if request.per_page and count > request.per_page:
            page.next_token = token_of(alloc)
            break
        page.allocations.append(alloc)
    return page


def _matches(matcher, alloc) -> bool:
    from . import bexpr
    try:
        return matcher.evaluate(alloc.full())
    except bexpr.FilterEvaluationError as err:
        raise HttpError(400, f"failed to read result page: {err}") from err
