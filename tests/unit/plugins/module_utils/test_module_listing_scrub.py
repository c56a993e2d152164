# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""exit_json_with_listings skips ansible-core's no_log scrub of a listing only when no secret is in it:
the token and the address password never leave the module, whether they are in the listing or not."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import plain_json_text, text_holds_no_log_value
from ansible_collections.nomadops.nomad.plugins.modules import nomad_alloc_info
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import FakeNomad, json_reply

TOKEN = "8d2f4a60-1b7e-4c39-a5d0-6e9f3b2c7d18"
PASSWORD = "pw-ötk\"7"
PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def stub(number, **extra):
    return dict({"ID": f"{number:08d}-0000-4000-8000-000000000000", "JobID": "web", "ClientStatus": "running",
                 "CreateIndex": 10 + number}, **extra)


@pytest.fixture(autouse=True)
def no_nomad_environment(monkeypatch):
    for name in ("NOMAD_ADDR", "NOMAD_TOKEN", "NOMAD_NAMESPACE", "NOMAD_REGION", "NOMAD_SKIP_VERIFY"):
        monkeypatch.delenv(name, raising=False)


def listed(stubs, capsys, **args):
    with FakeNomad(lambda request: json_reply(stubs, index=9)) as nomad:
        address = args.pop("address", nomad.address).replace("NOMAD", nomad.address.split("://", 1)[1])
        with patch_module_args(dict(args, address=address, job="web")):
            with pytest.raises(SystemExit):
                nomad_alloc_info.main()
    text = capsys.readouterr().out
    return text, json.loads(text)


@pytest.mark.parametrize("value, secrets, holds", [
    ([stub(1)], set(), False),
    ([stub(1)], {TOKEN}, False),
    ([stub(1, Meta={"note": TOKEN})], {TOKEN}, True),
    ([stub(1, Meta={"note": f"before {TOKEN} after"})], {TOKEN}, True),
    ([stub(1, Meta={"n": 12345678})], {"3456"}, True),
    ([stub(1, Meta={"n": 2.5})], {"2.5"}, True),
    ([stub(1, Meta={"note": f"a{PASSWORD}b"})], {PASSWORD}, True),
    ([stub(1, Meta={"note": "x\U0001F511y"})], {"\U0001F511"}, True),
    ([stub(1, Meta={"n": float("nan")})], {TOKEN}, True),
    ([stub(1)], {""}, True),
])
def test_result_holds_no_log_value_finds_every_secret_remove_values_would_scrub(value, secrets, holds):
    assert text_holds_no_log_value(plain_json_text(value), secrets) is holds


@pytest.fixture
def scrubbed_keys(monkeypatch):
    """The top-level keys of every module result ansible-core's remove_values is given (it also scrubs logs)."""
    from ansible.module_utils import basic

    seen = []

    def recording(value, no_log_strings):
        if isinstance(value, dict) and "changed" in value:
            seen.append(sorted(value))
        return original(value, no_log_strings)

    original = basic.remove_values
    monkeypatch.setattr(basic, "remove_values", recording)
    return seen


def without_invocation(scrubbed):
    """ansible-core up to 2.20 scrubs `invocation` with the rest of the result, 2.21 on its own."""
    return [[key for key in keys if key != "invocation"] for keys in scrubbed]


def test_listing_without_secrets_is_returned_whole_and_the_token_is_still_scrubbed(capsys, scrubbed_keys):
    stubs = [stub(number) for number in range(50)]
    text, result = listed(stubs, capsys, token=TOKEN)
    assert without_invocation(scrubbed_keys) == [["changed", "count", "filter", "index"]]
    assert result["allocations"] == stubs and result["count"] == 50 and result["index"] == 9
    assert TOKEN not in text
    if "invocation" in result:  # ansible-core 2.21 no longer returns the module's invocation
        assert result["invocation"]["module_args"]["token"] == PLACEHOLDER


def test_token_inside_the_listing_is_scrubbed(capsys, scrubbed_keys):
    stubs = [stub(1, Meta={"deploy_token": TOKEN, "note": f"token {TOKEN} here"}), stub(2)]
    text, result = listed(stubs, capsys, token=TOKEN)
    assert without_invocation(scrubbed_keys) == [["allocations", "changed", "count", "filter", "index"]]
    assert TOKEN not in text
    assert result["allocations"][0]["Meta"] == {"deploy_token": PLACEHOLDER, "note": "token ******** here"}
    assert result["allocations"][1] == stub(2) and result["count"] == 2


def test_address_password_inside_the_listing_is_scrubbed(capsys):
    stubs = [stub(1, Meta={"dsn": f"postgres://ops:{PASSWORD}@db"})]
    password_in_url = PASSWORD.replace('"', "%22")
    text, result = listed(stubs, capsys, address=f"http://ops:{password_in_url}@NOMAD")
    assert PASSWORD not in text and json.dumps(PASSWORD)[1:-1] not in text
    assert result["allocations"][0]["Meta"]["dsn"] == "postgres://ops:********@db"


def test_listings_set_aside_are_spliced_into_one_json_line_with_the_rest(capsys):
    stubs = [stub(1, Meta={"note": 'quotes " and \\ and nomadops-listing- text'}), stub(2)]
    text, result = listed(stubs, capsys)
    assert text.count("\n") == 2 and text.startswith("\n")
    assert result["allocations"] == stubs and [entry["id"] for entry in result["summary"]] == ["00000001", "00000002"]
    assert (result["count"], result["index"], result["changed"]) == (2, 9, False)
