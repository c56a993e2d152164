# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fault injection and request counting through the control API."""
from __future__ import annotations

import time

import pytest
import requests


def test_status_fault_with_retry_after_then_normal(api, fresh_emulator):
    fresh_emulator.control.add_fault(method="GET", path="^/v1/allocations$", count=2, action="status", status=500,
                                     body="No cluster leader", retry_after=1)
    for attempt in range(2):
        response = api.get("/v1/allocations")
        assert (response.status_code, response.text) == (500, "No cluster leader"), attempt
        assert response.headers["Retry-After"] == "1"
    assert api.get("/v1/allocations").status_code == 200
    assert fresh_emulator.control.requests()["GET /v1/allocations"] == 3


def test_fault_only_hits_matching_method_and_path(api, fresh_emulator):
    fresh_emulator.control.add_fault(method="POST", path="/stop$", action="status", status=503, body="busy")
    alloc_id = api.allocations()[0]["ID"]
    assert api.get(f"/v1/allocation/{alloc_id}").status_code == 200
    response = api.post(f"/v1/allocation/{alloc_id}/stop")
    assert (response.status_code, response.text) == (503, "busy")
    assert "Retry-After" not in response.headers
    assert api.allocation(alloc_id)["DesiredStatus"] == "run"


def test_delay_fault(api, fresh_emulator):
    fresh_emulator.control.add_fault(path="^/v1/allocations$", action="delay", delay_ms=600)
    started = time.monotonic()
    assert api.get("/v1/allocations").status_code == 200
    assert time.monotonic() - started >= 0.5


def test_drop_fault_closes_without_answer(api, fresh_emulator):
    fresh_emulator.control.add_fault(path="^/v1/allocations$", action="drop")
    with pytest.raises(requests.ConnectionError):
        api.get("/v1/allocations")
    assert api.get("/v1/allocations").status_code == 200


def test_drop_mid_body(api, fresh_emulator):
    fresh_emulator.control.add_fault(path="^/v1/allocations$", action="drop_mid_body")
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        api.get("/v1/allocations")
    assert api.get("/v1/allocations").status_code == 200


def test_clear_faults_and_list(api, fresh_emulator):
    fresh_emulator.control.add_fault(path=".", action="status", status=500, body="x", count=100)
    assert fresh_emulator.control.faults()[0]["count"] == 100
    fresh_emulator.control.clear_faults()
    assert fresh_emulator.control.faults() == []
    assert api.get("/v1/allocations").status_code == 200


def test_exec_close_early_rules_are_left_to_exec(api, fresh_emulator):
    fresh_emulator.control.add_fault(path=".", action="exec_close_early")
    assert api.get("/v1/allocations").status_code == 200
    assert fresh_emulator.control.faults()[0]["count"] == 1


def test_bad_fault_rules_are_rejected(fresh_emulator):
    session = requests.Session()
    session.trust_env = False
    for rule in ({"action": "explode"}, {"action": "drop", "path": "("}, {"action": "drop", "count": "x"}, [1]):
        response = session.post(fresh_emulator.address + "/_emulator/faults", json=rule, timeout=10)
        assert response.status_code == 400, rule
    assert session.post(fresh_emulator.address + "/_emulator/faults", data="{", timeout=10).status_code == 400


def test_request_counts_and_reset(api, fresh_emulator):
    alloc_id = api.allocations()[0]["ID"]
    api.get(f"/v1/allocation/{alloc_id}")
    api.get(f"/v1/allocation/{alloc_id}")
    counts = fresh_emulator.control.requests()
    assert counts[f"GET /v1/allocation/{alloc_id}"] == 2
    assert not any(key.split(" ", 1)[1].startswith("/_emulator") for key in counts)
    fresh_emulator.control.reset_requests()
    assert fresh_emulator.control.requests() == {}


def test_unknown_setting_is_rejected(fresh_emulator):
    session = requests.Session()
    session.trust_env = False
    response = session.post(fresh_emulator.address + "/_emulator/settings", json={"nope": True}, timeout=10)
    assert response.status_code == 400


def test_rpc_error_prefix_setting(api, fresh_emulator):
    import uuid
    fresh_emulator.control.settings(rpc_error_prefix=True)
    short = api.get("/v1/allocation/abcd")
    assert (short.status_code, short.text) == (500, "rpc error: alloc lookup failed: index error: UUID must be 36 characters")
    gone = str(uuid.uuid4())
    signal = api.post(f"/v1/client/allocation/{gone}/signal", json={"Signal": "SIGHUP"})
    assert (signal.status_code, signal.text) == (404, f'rpc error: Unknown allocation "{gone}"')
    missing = api.get(f"/v1/allocation/{gone}")
    assert (missing.status_code, missing.text) == (404, "alloc not found")  # handler-made: no prefix
    bad_body = api.post(f"/v1/client/allocation/{gone}/signal")
    assert bad_body.text == "Failed to decode body: Request body is empty"
    fresh_emulator.control.settings(rpc_error_prefix=False)
    assert api.get("/v1/allocation/abcd").text.startswith("alloc lookup failed")


def test_redirect_fault_answers_a_redirect_also_to_the_exec_upgrade(api, fresh_emulator):
    alloc_id = api.allocations()[0]["ID"]
    fresh_emulator.control.add_fault(path="/exec$", action="redirect", status=307, location="ws://127.0.0.2:9/x")
    response = api.get(f"/v1/client/allocation/{alloc_id}/exec", allow_redirects=False,
                       headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert (response.status_code, response.headers["Location"]) == (307, "ws://127.0.0.2:9/x")


def test_rewrite_body_fault_replaces_text_in_the_answer(api, fresh_emulator):
    alloc_id = api.allocations()[0]["ID"]
    fresh_emulator.control.add_fault(path="^/v1/allocation/", action="rewrite_body", old=alloc_id,
                                     new="5a22/../../evil")
    assert api.get(f"/v1/allocation/{alloc_id}").json()["ID"] == "5a22/../../evil"
    assert api.get(f"/v1/allocation/{alloc_id}").json()["ID"] == alloc_id


def test_endless_pages_fault_sends_a_new_next_token_each_time(api, fresh_emulator):
    fresh_emulator.control.add_fault(path="^/v1/allocations$", action="endless_pages", count=3)
    tokens = {api.get("/v1/allocations", params={"per_page": 1}).headers["X-Nomad-NextToken"] for _attempt in range(3)}
    assert len(tokens) == 3


def test_hostile_rules_need_their_settings(fresh_emulator):
    session = requests.Session()
    session.trust_env = False
    for rule in ({"action": "redirect"}, {"action": "redirect", "location": "http://x", "status": 200},
                 {"action": "rewrite_body", "new": "x"}, {"action": "rewrite_body", "old": ""}):
        response = session.post(fresh_emulator.address + "/_emulator/faults", json=rule, timeout=10)
        assert response.status_code == 400, rule
