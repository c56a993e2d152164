# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_node's decisions (_drain): the drain spec, when a drain is already satisfied, cancel and eligibility, and
the options Nomad refuses; and nomad_node_info's list filter (_nodes)."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.nodes.drain import (
    DrainRequest,
    NodeRequestError,
    plan_change,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.nodes.nodes import list_filter

HOUR_NS = 3600 * 1_000_000_000


def params(**given):
    base = dict(drain=None, eligible=None, drain_deadline=None, drain_force=False, drain_no_deadline=False,
                ignore_system_jobs=False, drain_message=None, keep_ineligible=False)
    base.update(given)
    return base


def node(eligible=True, strategy=None, last=None):
    return {"Name": "n1", "SchedulingEligibility": "eligible" if eligible else "ineligible",
            "DrainStrategy": strategy, "LastDrain": {"Status": last} if last else None}


def allocation(kind="service", client_status="running", desired="run"):
    return {"ClientStatus": client_status, "DesiredStatus": desired, "Job": {"Type": kind}}


@pytest.mark.parametrize("given, deadline, timeout", [
    ({}, HOUR_NS, 3900),
    ({"drain_deadline": 60}, 60_000_000_000, 360),
    ({"drain_force": True}, -1, 300),
    ({"drain_no_deadline": True}, 0, 3600),
])
def test_drain_spec_and_default_wait(given, deadline, timeout):
    request = DrainRequest(params(drain=True, **given))
    assert request.spec() == {"Deadline": deadline, "IgnoreSystemJobs": False}
    assert request.default_wait_timeout() == timeout


@pytest.mark.parametrize("deadline", [0, -5])
def test_a_deadline_of_zero_or_less_is_refused(deadline):
    with pytest.raises(NodeRequestError, match=f"got {deadline}"):
        DrainRequest(params(drain=True, drain_deadline=deadline))


def test_same_spec_is_satisfied_other_spec_updates():
    strategy = {"Deadline": HOUR_NS, "IgnoreSystemJobs": False}
    assert not plan_change(node(False, strategy), params(drain=True), [allocation()]).changes
    assert plan_change(node(False, strategy), params(drain=True, drain_deadline=60), [allocation()]).kind == "drain"
    assert not plan_change(node(False, {"Deadline": -1}), params(drain=True, drain_force=True), []).changes


def test_ineligible_with_nothing_to_move_is_drained_already():
    assert not plan_change(node(False), params(drain=True), []).changes
    assert plan_change(node(False), params(drain=True), [allocation()]).kind == "drain"
    assert plan_change(node(True), params(drain=True), []).kind == "drain"


def test_system_allocations_stay_with_ignore_system_jobs():
    request = DrainRequest(params(drain=True, ignore_system_jobs=True))
    assert not request.moves(allocation("system"))
    assert request.moves(allocation("batch"))
    assert not request.moves(allocation(client_status="complete"))
    assert not request.moves(allocation(desired="stop"))


def test_cancel_and_eligibility():
    draining = node(False, {"Deadline": HOUR_NS})
    cancel = plan_change(draining, params(drain=False), [])
    assert cancel.kind == "cancel" and cancel.mark_eligible is True
    assert plan_change(draining, params(drain=False, keep_ineligible=True), []).mark_eligible is False
    assert plan_change(node(False, last="complete"), params(drain=False), []).eligibility == "eligible"
    assert not plan_change(node(False, last="complete"), params(drain=False, keep_ineligible=True), []).changes
    assert not plan_change(node(False), params(drain=False), []).changes  # made ineligible by hand: left alone
    assert plan_change(node(True), params(eligible=False), []).eligibility == "ineligible"
    assert not plan_change(node(True), params(eligible=True), []).changes


def test_refusals():
    with pytest.raises(NodeRequestError, match="Nomad refuses to make a draining node eligible"):
        plan_change(node(False, {"Deadline": HOUR_NS}), params(eligible=True), [])
    with pytest.raises(NodeRequestError, match="contradict"):
        plan_change(node(), params(drain=True, eligible=True), [])


def test_list_filter_ands_the_options():
    expression = list_filter({"filter": 'Meta.rack == "r1"', "datacenter": "dc1", "status": ["ready", "down"],
                              "eligible": False})
    assert expression == ('(Meta.rack == "r1") and Datacenter == "dc1" and (Status == "ready" or Status == "down") '
                          'and SchedulingEligibility == "ineligible"')
    assert list_filter({}) is None
