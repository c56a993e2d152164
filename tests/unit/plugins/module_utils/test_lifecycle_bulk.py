# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The bulk runner: concurrency bound, input order, every failure collected."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.lifecycle import (
    LifecycleError,
    run_bulk,
)


class InFlightCounter:
    """Counts how many actions run at the same moment."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current = 0
        self.maximum = 0

    def __enter__(self):
        with self._lock:
            self.current += 1
            self.maximum = max(self.maximum, self.current)
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self.current -= 1


@pytest.mark.parametrize("parallelism", [1, 3, 8])
def test_never_more_than_parallelism_in_flight_and_reaches_it(parallelism):
    counter = InFlightCounter()
    # Every action waits until `parallelism` actions are inside it at once: reaching the bound is proven
    # by the barrier releasing, exceeding it by the counter.
    barrier = threading.Barrier(parallelism, timeout=10)

    def action(item):
        with counter:
            barrier.wait()
        return item * 2

    outcomes = run_bulk(range(parallelism * 4), action, parallelism)

    assert counter.maximum == parallelism
    assert [outcome.value for outcome in outcomes] == [item * 2 for item in range(parallelism * 4)]


def test_fewer_items_than_parallelism_uses_one_worker_per_item():
    counter = InFlightCounter()
    barrier = threading.Barrier(2, timeout=10)

    def action(item):
        with counter:
            barrier.wait()
        return item

    outcomes = run_bulk(["a", "b"], action, parallelism=50)

    assert counter.maximum == 2
    assert [outcome.item for outcome in outcomes] == ["a", "b"]


def test_results_keep_input_order_when_items_finish_in_reverse():
    items = list(range(6))
    released = {item: threading.Event() for item in items}

    def action(item):
        # Item n may only finish after item n+1 finished: completion order is the reverse of input order.
        if item + 1 in released:
            assert released[item + 1].wait(timeout=10)
        released[item].set()
        return f"done-{item}"

    outcomes = run_bulk(items, action, parallelism=len(items))

    assert [outcome.item for outcome in outcomes] == items
    assert [outcome.value for outcome in outcomes] == [f"done-{item}" for item in items]


def test_every_failure_is_collected_and_the_others_still_run():
    ran = []
    lock = threading.Lock()

    def action(item):
        with lock:
            ran.append(item)
        if item % 3 == 0:
            raise LifecycleError(f"item {item} broke")
        return item

    outcomes = run_bulk(range(10), action, parallelism=4)

    assert sorted(ran) == list(range(10))
    assert [outcome.item for outcome in outcomes if outcome.failed] == [0, 3, 6, 9]
    assert [str(outcome.error) for outcome in outcomes if outcome.failed] == [
        "item 0 broke", "item 3 broke", "item 6 broke", "item 9 broke"
    ]
    assert [outcome.value for outcome in outcomes if not outcome.failed] == [1, 2, 4, 5, 7, 8]


def test_an_unexpected_exception_is_not_swallowed():
    def action(item):
        if item == 2:
            raise KeyError("bug")
        return item

    with pytest.raises(KeyError):
        run_bulk(range(5), action, parallelism=2)


def test_only_the_given_error_types_are_collected():
    def action(item):
        raise ValueError("wanted")

    outcomes = run_bulk([1], action, parallelism=1, expected_errors=(ValueError,))

    assert outcomes[0].failed and str(outcomes[0].error) == "wanted"


def test_no_items_means_no_calls():
    assert run_bulk([], lambda item: pytest.fail("called"), parallelism=5) == []


@pytest.mark.parametrize("parallelism", [0, -1])
def test_parallelism_below_one_is_refused(parallelism):
    with pytest.raises(ValueError, match="at least 1"):
        run_bulk([1], lambda item: item, parallelism=parallelism)
