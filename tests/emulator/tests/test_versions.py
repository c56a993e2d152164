# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The version switch: each answer that differs between Nomad 1.6.5, 1.10.5 and 1.11.3.

"Row N" is row N of §1 in /work/shared/reference/nomad-alloc-api-changes-1.6-to-1.11.md.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import websocket
from conftest import REPO_ROOT, Api

from tests.emulator.harness import EmulatorProcess
from tests.waiting import wait_until

SCENARIO = Path(REPO_ROOT) / "tests" / "emulator" / "scenarios" / "versions.yml"
MANAGEMENT = "00000000-0000-4000-8000-0000000000a1"
NO_FS = "00000000-0000-4000-8000-0000000000a2"
SCALER = "00000000-0000-4000-8000-0000000000a3"
VERSIONS = ("1.6.5", "1.10.5", "1.11.3")


@pytest.fixture(scope="module", params=VERSIONS)
def versioned(request):
    """(version, Api with the management token): one emulator per version for the module."""
    with EmulatorProcess(SCENARIO, nomad_version=request.param) as emulator:
        yield request.param, Api(emulator, token=MANAGEMENT)


def alloc_of(api: Api, job: str, index: int = 0) -> dict:
    return sorted(api.by_job(job), key=lambda alloc: alloc["Name"])[index]


def test_unsupported_version_is_refused_with_the_supported_list(tmp_path):
    bad_scenario = tmp_path / "bad-version.yml"
    bad_scenario.write_text("nomad_version: '1.7'\n", encoding="utf-8")
    for scenario, option in ((SCENARIO, ["--nomad-version", "1.9.7"]), (bad_scenario, [])):
        run = subprocess.run([sys.executable, "-m", "tests.emulator", "--scenario", str(scenario), "--port", "0",
                              *option], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 2, run.stderr
        assert "is not supported; use one of 1.6.5, 1.10.5, 1.11.3" in run.stderr
        assert "Traceback" not in run.stderr


def test_node_version_attribute_and_legacy_resources(versioned):
    """Node `Version`, `nomad.version`, and row 33 (`Resources`/`Reserved` filled, empty, removed)."""
    version, api = versioned
    stub = api.get("/v1/nodes").json()[0]
    node = api.get(f"/v1/node/{stub['ID']}").json()
    assert stub["Version"] == node["Version"] == node["Attributes"]["nomad.version"] == version
    if version == "1.6.5":
        assert node["Resources"]["CPU"] > 0 and node["Resources"]["MemoryMB"] > 0
    elif version == "1.10.5":
        assert node["Resources"]["CPU"] == 0 and node["Reserved"]["MemoryMB"] == 0
    else:
        assert "Resources" not in node and "Reserved" not in node


def test_pagination_token_compare(versioned):
    """Row 1: string compare of `<CreateIndex>.<ID>` tokens at 1.6.5, numeric at 1.10.2+."""
    version, api = versioned
    everything = api.allocations()
    first = everything[0]
    # a token whose CreateIndex has more digits: numerically after every item, as a string before "2..."-"9..."
    token = f"{first['CreateIndex'] * 10}.{first['ID']}"
    rest = api.get("/v1/allocations", params={"next_token": token}).json()
    numeric = [a for a in everything if (a["CreateIndex"], a["ID"]) >= (first["CreateIndex"] * 10, first["ID"])]
    stringy = [a for a in everything if f"{a['CreateIndex']}.{a['ID']}" >= token]
    assert numeric != stringy   # the scenario must tell the two apart
    assert [a["ID"] for a in rest] == [a["ID"] for a in (stringy if version == "1.6.5" else numeric)]


def test_per_page_and_stale_errors(versioned):
    """Rows 4 and 5: unparsable `per_page` ignored at 1.6.5, 400 since 1.8; `stale` text and body."""
    version, api = versioned
    per_page = api.get("/v1/allocations", params={"per_page": "abc"})
    stale = api.get("/v1/allocations", params={"stale": "maybe"})
    if version == "1.6.5":
        assert per_page.status_code == 200 and len(per_page.json()) == len(api.allocations())
        assert stale.status_code == 400 and stale.text.startswith("Expect `true` or `false` for `stale` query "
                                                                  "string parameter, got maybe[")
    else:
        assert (per_page.status_code, per_page.text) == (400, "Expect a number for `per_page` query string parameter")
        assert (stale.status_code, stale.text) == (400, "Expect `true` or `false` for `stale` query string parameter")
    if version != "1.6.5":
        assert per_page.headers["Content-Type"] == "text/plain; charset=utf-8"   # row 6
    checks = api.get(f"/v1/allocation/{alloc_of(api, 'web')['ID']}/checks", params={"per_page": "x"})
    # §2.9: handlers that ignore parse() write the message before their normal body
    assert (checks.status_code, checks.text) == ((200, "null") if version == "1.6.5" else
                                                 (400, "Expect a number for `per_page` query string parameter" + "null"))


def test_node_job_and_namespace_readers_answer_only_the_parse_error_since_1_8(versioned):
    """Rows 4-5 and §2.9: node list and get, job get and namespace get test parse()'s result, so since 1.8 a bad
    `per_page` or `stale` is answered with the message alone; 1.6.5 ignored `per_page` there."""
    version, api = versioned
    node_id = api.get("/v1/nodes").json()[0]["ID"]
    for path in ("/v1/nodes", f"/v1/node/{node_id}", "/v1/job/web", "/v1/namespace/default"):
        per_page = api.get(path, params={"per_page": "abc"})
        stale = api.get(path, params={"stale": "maybe"})
        if version == "1.6.5":
            assert per_page.status_code == 200, path
        else:
            assert (per_page.status_code, per_page.text) == (400, "Expect a number for `per_page` query string parameter")
            assert (stale.status_code, stale.text) == (400, "Expect `true` or `false` for `stale` query string parameter")


def test_task_states_keys(versioned):
    """Row 18: `TaskHandle` until 1.10.0, `Paused` (always "") since 1.8.0; in the list stub and the full alloc."""
    version, api = versioned
    alloc_id = alloc_of(api, "web")["ID"]
    for states in (api.allocation(alloc_id)["TaskStates"], alloc_of(api, "web")["TaskStates"]):
        keys = set(states["main"])
        if version == "1.6.5":
            assert "TaskHandle" in keys and "Paused" not in keys
        else:
            assert "TaskHandle" not in keys and states["main"]["Paused"] == ""


def test_logs_refusal_status_and_content_type(versioned):
    """Row 23: no read-logs/read-fs -> 500 before 1.11.1, 403 at 1.11.3; rows 6/25: the error's Content-Type."""
    version, api = versioned
    alloc_id = alloc_of(api, "web")["ID"]
    refused = api.get(f"/v1/client/fs/logs/{alloc_id}", params={"task": "main", "type": "stdout"}, token=NO_FS)
    assert (refused.status_code, refused.text) == (403 if version == "1.11.3" else 500, "Permission denied")
    assert refused.headers["Content-Type"] == ("application/json" if version == "1.6.5"
                                               else "text/plain; charset=utf-8")


def test_secret_dir_refusal_ignores_case_since_1_9(versioned):
    """Row 26: a task's own `SECRETS/` directory is refused like `secrets/` since 1.9.0; 1.6.5 serves it."""
    version, api = versioned
    alloc_id = alloc_of(api, "web")["ID"]
    wait_until(lambda: api.get(f"/v1/client/fs/stat/{alloc_id}", params={"path": "main/SECRETS/token"}).ok,
               what="the upper-case directory")
    upper = api.get(f"/v1/client/fs/cat/{alloc_id}", params={"path": "main/SECRETS/token"})
    assert upper.text == ("S\n" if version == "1.6.5" else "Reading secret file prohibited: main/SECRETS/token")


def test_scale_policy_grants_read_job_since_1_11_1(versioned):
    """Row 22: the `scale` policy shorthand also grants read-job (and submit-recommendation) at 1.11.1+."""
    version, api = versioned
    listed = api.get("/v1/allocations", token=SCALER)
    assert listed.status_code == (200 if version == "1.11.3" else 403)


def _exec_url(api: Api, alloc_id: str, task: str, command: list) -> str:
    query = urllib.parse.urlencode({"task": task, "command": json.dumps(command)})
    return f"{api.emulator.address.replace('http://', 'ws://', 1)}/v1/client/allocation/{alloc_id}/exec?{query}"


def _exec(api: Api, alloc_id: str, task: str, command: list, token: str = MANAGEMENT) -> tuple:
    """(text frames, close code or None when the connection ended without a close frame)."""
    ws = websocket.create_connection(_exec_url(api, alloc_id, task, command), header=[f"X-Nomad-Token: {token}"],
                                     timeout=60)
    frames = []
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return frames, (int.from_bytes(data[:2], "big") if len(data) >= 2 else None), data[2:].decode()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                frames.append(json.loads(data))
    except websocket.WebSocketConnectionClosedException:
        return frames, None, ""
    finally:
        ws.close()


def test_exec_end_of_session(versioned):
    """Row 7: close 1000 after the exit frame at 1.6.5; since 1.8 the connection just ends after it."""
    version, api = versioned
    frames, code, _reason = _exec(api, alloc_of(api, "web")["ID"], "main", ["/bin/sh", "-c", "exit 3"])
    assert frames[-1] == {"exited": True, "result": {"exit_code": 3}}
    assert code == (1000 if version == "1.6.5" else None)


def test_exec_on_a_terminal_allocation(versioned):
    """Row 10: refused by the server with 1008 and the client status since 1.7; 1.6.5: the task is not running."""
    version, api = versioned
    alloc_id = alloc_of(api, "done")["ID"]
    wait_until(lambda: api.allocation(alloc_id)["ClientStatus"] == "complete", what="the batch alloc to complete")
    _frames, code, reason = _exec(api, alloc_id, "once", ["true"])
    if version == "1.6.5":
        assert (code, reason) == (1008, 'task "once" is not running.')
    else:
        assert (code, reason) == (1008, f"exec not possible, client status of allocation {alloc_id} is complete")


def test_exec_with_an_unknown_token(versioned):
    """Row 11: a token the agent cannot resolve closes 1011 at 1.6.5, 1008 (coded 400) since 1.7."""
    version, api = versioned
    _frames, code, reason = _exec(api, alloc_of(api, "web")["ID"], "main", ["true"],
                                  token="00000000-0000-4000-8000-0000000000ff")
    assert code == (1011 if version == "1.6.5" else 1008)
    assert reason == "Permission denied"   # the emulator's resolver text for an unknown token


def test_stop_parameters_and_batch_outcome(versioned):
    """Rows 12-15: `reschedule` (1.11), bool error texts (1.11), DesiredTransition.Reschedule, batch stop outcome."""
    version, api = versioned
    first, second = alloc_of(api, "batch", 0)["ID"], alloc_of(api, "batch", 1)["ID"]
    bad = api.post(f"/v1/allocation/{first}/stop", params={"no_shutdown_delay": "maybe"})
    if version == "1.11.3":
        assert (bad.status_code, bad.text) == (500, 'Failed to parse value of "no_shutdown_delay" (maybe) as a bool: '
                                                    'strconv.ParseBool: parsing "maybe": invalid syntax')
    else:
        assert (bad.status_code, bad.text) == (500, "no_shutdown_delay value is not a boolean: "
                                                    'strconv.ParseBool: parsing "maybe": invalid syntax')
    assert api.post(f"/v1/allocation/{first}/stop").status_code == 200
    assert api.post(f"/v1/allocation/{second}/stop", params={"reschedule": "true"}).status_code == 200
    ended = {alloc_id: wait_until(lambda a=alloc_id: (doc := api.allocation(a))["ClientStatus"] != "running" and doc,
                                  what="the stop") for alloc_id in (first, second)}
    plain, rescheduled = ended[first], ended[second]
    if version == "1.11.3":
        assert plain["DesiredTransition"]["Reschedule"] is False and rescheduled["DesiredTransition"]["Reschedule"]
    else:
        assert plain["DesiredTransition"]["Reschedule"] is None is rescheduled["DesiredTransition"]["Reschedule"]
    expected_status = "failed" if version == "1.10.5" else "complete"
    assert plain["ClientStatus"] == expected_status
    replaced = {"1.6.5": (False, False), "1.10.5": (True, True), "1.11.3": (False, True)}[version]
    assert (bool(plain["NextAllocation"]), bool(rescheduled["NextAllocation"])) == replaced


def test_websocket_key_validation(versioned):
    """Row 29: a key that is not base64 of 16 bytes is refused with gorilla 1.5.3's text since 1.9.

    1.6.5 would accept it; the emulator cannot (aiohttp refuses such a key itself), a known difference."""
    version, api = versioned
    alloc_id = alloc_of(api, "web")["ID"]
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "c2hvcnQ="}   # base64 of 5 bytes
    response = api.get(f"/v1/client/allocation/{alloc_id}/exec",
                       params={"task": "main", "command": json.dumps(["true"])}, headers=headers)
    assert response.status_code == 400
    gorilla = ("failed to upgrade connection: websocket: not a websocket handshake: "
               "'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length")
    assert response.text.endswith(gorilla) == (version != "1.6.5")
