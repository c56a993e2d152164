# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one bounded thread pool: reads of many allocations, bulk actions and the exec fan-out all run through
concurrent_map(), over the one pooled NomadClient session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

MAX_CONCURRENT_READS = 8  # below NomadClient's default pool size, so connections are reused


def concurrent_map(function, items, limit=MAX_CONCURRENT_READS):
    """[function(item) for item in items], at most `limit` at a time, results in input order.

    Every item is started; an exception of one call is raised once every started call has ended, so no
    work is left running (or half-reported) behind the caller's back.
    """
    items = list(items)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        return list(pool.map(function, items))
