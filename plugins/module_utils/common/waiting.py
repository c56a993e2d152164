# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one wait engine: a loop driven by Nomad's blocking queries with a monotonic deadline (it re-reads when
Nomad's index moved, or when a round runs out), and never sleeps itself.

Every wait of the collection is ``wait_until(read, judge, timeout)`` with a different ``read`` and ``judge``
(the allocation judges are in allocations/health.py, the rollout and drain judges beside their watchers).
"""

from __future__ import annotations

import time

MAX_BLOCKING_WAIT = 300  # Nomad clamps blocking queries to 5 minutes
# Nomad answers a blocking query up to wait/16 late (jitter), so rounds are kept short enough that the
# deadline is overshot by a few seconds at most.
ROUND_SECONDS = 60


class Deadline:
    """A monotonic deadline, so that changes of the wall clock never shorten or stretch a wait."""

    def __init__(self, seconds, clock=time.monotonic):
        self._clock = clock
        self.started = clock()
        self.seconds = seconds
        self._end = self.started + seconds

    def remaining(self):
        return max(0.0, self._end - self._clock())

    def expired(self):
        return self.remaining() <= 0

    def elapsed(self):
        return self._clock() - self.started

    def round_seconds(self, cap=ROUND_SECONDS):
        """Seconds for the next blocking query: whole seconds, at least 1, at most `cap` (and Nomad's maximum)."""
        return max(1, min(int(self.remaining() + 0.999), cap, MAX_BLOCKING_WAIT))


class Verdict:
    """What a judge says about one read: met, hopeless (can never be met), or keep waiting; `round_cap`
    shortens the next blocking query when the awaited change does not move Nomad's index."""

    __slots__ = ("met", "hopeless", "round_cap")

    def __init__(self, met=False, hopeless=False, round_cap=ROUND_SECONDS):
        self.met = met
        self.hopeless = hopeless
        self.round_cap = round_cap


class WaitOutcome:
    __slots__ = ("value", "index", "met", "waited", "hopeless", "progress")

    def __init__(self, value, index, met, waited, hopeless=False):
        self.progress = None  # one line on what held the wait up, filled in by the caller that knows
        self.value = value
        self.index = index
        self.met = met
        self.waited = waited
        self.hopeless = hopeless  # given up before the timeout: the condition can never be met


def wait_until(read, judge, timeout, clock=time.monotonic):
    """Read until judge(value) is met or hopeless, or `timeout` seconds pass; never sleeps itself.

    read(index, seconds) -> (value, index): with index None a plain read, else a blocking query that
    returns when Nomad's index moves past `index` or after `seconds`.  judge(value) -> Verdict.
    """
    deadline = Deadline(timeout, clock)
    value, index = read(None, 0)
    while True:
        verdict = judge(value)
        if verdict.met or verdict.hopeless or deadline.expired():
            return WaitOutcome(value, index, verdict.met, deadline.elapsed(), hopeless=verdict.hopeless)
        value, index = read(index or 0, deadline.round_seconds(verdict.round_cap))
