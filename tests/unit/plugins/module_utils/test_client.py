# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NomadClient against a scripted HTTP server on loopback: headers, parameters, error messages, retries."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import (
    MAX_RETRY_AFTER,
    CappedRetry,
    NomadClient,
    go_duration,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadBadRequestError,
    NomadConnectionError,
    NomadError,
    NomadNotFoundError,
    NomadNotNomadError,
    NomadPermissionDeniedError,
    NomadServerError,
    NomadUnsafeIDError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import failure_fields
from ansible_collections.nomadops.nomad.plugins.module_utils.common import client as _client_module
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import ConnectionOptions
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    DROP,
    FakeNomad,
    Reply,
    free_port,
    json_reply,
)

TOKEN = "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01"


def make_client(address, **overrides):
    settings = dict(address=address, retries=3, timeout=10)
    settings.update(overrides)
    return NomadClient(ConnectionOptions(**settings))


def scripted(*replies):
    """A handler that answers with `replies` in order, then repeats the last one."""
    remaining = list(replies)

    def handler(request):
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return handler


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    from ansible_collections.nomadops.nomad.plugins.module_utils.common import client as _client
    monkeypatch.setattr(_client, "BACKOFF_FACTOR", 0)


# ------------------------------------------------------------------------------------------ requests
def test_token_header_namespace_and_region_are_sent():
    with FakeNomad(scripted(json_reply([], index=7))) as nomad:
        client = make_client(nomad.address, token=TOKEN, namespace="prod", region="eu")
        response = client.read("/v1/allocations", {"filter": 'JobID == "web"'})
    request = nomad.requests[0]
    assert request.headers["X-Nomad-Token"] == TOKEN
    assert request.query == {"namespace": "prod", "region": "eu", "filter": 'JobID == "web"'}
    assert response.data == [] and response.index == 7 and response.next_token is None


def test_params_override_and_remove_the_namespace_and_encode_booleans():
    with FakeNomad(scripted(json_reply([]))) as nomad:
        client = make_client(nomad.address, namespace="prod")
        client.read("/v1/allocations", {"namespace": "*", "reverse": True, "task_states": False})
        client.read("/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c", {"namespace": None})
    assert nomad.requests[0].query == {"namespace": "*", "reverse": "true", "task_states": "false"}
    assert nomad.requests[1].query == {}


def test_basic_auth_is_sent_and_no_token_header_without_token():
    with FakeNomad(scripted(json_reply([]))) as nomad:
        make_client(nomad.address, http_auth=("ops", "pw")).read("/v1/allocations")
    headers = nomad.requests[0].headers
    assert headers["Authorization"].startswith("Basic ")
    assert "X-Nomad-Token" not in headers


def test_write_sends_json_body():
    with FakeNomad(scripted(json_reply({"Index": 0}))) as nomad:
        response = make_client(nomad.address).write("POST", "/v1/client/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/signal", body={"Signal": "SIGHUP"})
    assert nomad.requests[0].body == b'{"Signal": "SIGHUP"}'
    assert nomad.requests[0].headers["Content-Type"] == "application/json"
    assert response.data == {"Index": 0}


def test_empty_body_decodes_to_none():
    with FakeNomad(scripted(Reply(200, None))) as nomad:
        assert make_client(nomad.address).write("PUT", "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop").data is None


PROXY_PAGE = "<html><head><title>Sign in</title></head>\n<body>\n<form>...</form></body></html>"


@pytest.mark.parametrize("reply, content_type", [
    (Reply(200, PROXY_PAGE, content_type="text/html; charset=utf-8"), "text/html; charset=utf-8"),
    (Reply(404, PROXY_PAGE, content_type="text/html"), "text/html"),
    (Reply(502, PROXY_PAGE, content_type="text/html"), "text/html"),
    (Reply(302, None, {"Location": "/login"}), "text/plain; charset=utf-8"),
    (Reply(200, "plain words", content_type="text/plain"), "text/plain"),
    (Reply(200, "not json {", content_type="application/json"), "application/json"),
])
def test_an_answer_not_like_nomads_is_one_line_with_status_type_and_url(reply, content_type):
    with FakeNomad(scripted(reply)) as nomad:
        with pytest.raises(NomadNotNomadError) as failure:
            make_client(nomad.address, retries=0).read("/v1/allocations")
    message = str(failure.value)
    assert message.startswith(f"GET {nomad.address}/v1/allocations answered {reply.status} with {content_type}, not like Nomad's API")
    assert "\n" not in message and "<" not in message and "Sign in" not in message
    assert failure.value.status == reply.status and failure.value.address == nomad.address


def test_an_address_with_a_path_prefix_is_asked_below_it():
    """A reverse proxy serving Nomad under /nomad: requests go below the prefix, messages show the whole URL."""

    def behind_proxy(request):
        if request.path == "/nomad/v1/allocations":
            return json_reply([{"ID": "a"}], index=3)
        return Reply(404, PROXY_PAGE, content_type="text/html")

    with FakeNomad(behind_proxy) as nomad:
        assert make_client(f"{nomad.address}/nomad").read("/v1/allocations").data == [{"ID": "a"}]
        with pytest.raises(NomadNotNomadError) as failure:
            make_client(nomad.address).read("/v1/allocations")
    assert str(failure.value).startswith(f"GET {nomad.address}/v1/allocations answered 404 with text/html")


def test_not_found_names_the_address_and_failure_fields_carry_it():
    with FakeNomad(scripted(Reply(404, "alloc not found"))) as nomad:
        with pytest.raises(NomadNotFoundError) as failure:
            make_client(nomad.address).read("/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c")
    assert str(failure.value) == (f"GET /v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c failed: 404 alloc not found at {nomad.address} "
                                  "(check the allocation ID)")
    assert failure_fields(failure.value) == {"msg": str(failure.value), "status": 404, "address": nomad.address}


def test_connection_errors_carry_the_address():
    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NomadConnectionError) as failure:
        make_client(address, retries=0).read("/v1/allocations")
    assert failure_fields(failure.value) == {"msg": str(failure.value), "address": address}


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("status, body, error_class, expected", [
    (403, "Permission denied", NomadPermissionDeniedError,
     'GET /v1/allocations failed: 403 Permission denied (check that the token has read-job in namespace "default")'),
    (400, "failed to create result paginator: failed to read filter expression: 1:9 (8): no match found",
     NomadBadRequestError,
     "GET /v1/allocations failed: 400 failed to create result paginator: failed to read filter expression: "
     "1:9 (8): no match found (check the filter expression)"),
    (404, "alloc not found", NomadNotFoundError, "GET /v1/allocations failed: 404 alloc not found (check"),
    (500, "No path to region", NomadServerError, "GET /v1/allocations failed: 500 No path to region (check region"),
])
def test_status_errors_are_typed_one_line_messages(status, body, error_class, expected):
    with FakeNomad(scripted(Reply(status, body))) as nomad:
        client = make_client(nomad.address, token=TOKEN, retries=0)
        with pytest.raises(error_class) as failure:
            client.read("/v1/allocations", {"filter": "x"})
    message = str(failure.value)
    assert message.startswith(expected.split(" (check")[0])
    assert "\n" not in message
    assert failure.value.status == status and failure.value.method == "GET" and failure.value.path == "/v1/allocations"
    assert failure.value.nomad_message == body
    assert "filter" not in message.split(" failed:", maxsplit=1)[0]  # no query string in the path


def test_permission_hint_names_the_capability_of_the_request():
    with FakeNomad(scripted(Reply(403, "Permission denied"))) as nomad:
        client = make_client(nomad.address, token=TOKEN, namespace="prod")
        with pytest.raises(NomadPermissionDeniedError) as failure:
            client.write("POST", "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop")
    assert str(failure.value) == (
        'POST /v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop failed: 403 Permission denied '
        '(check that the token has alloc-lifecycle in namespace "prod")'
    )


def test_permission_hint_without_token():
    with FakeNomad(scripted(Reply(403, "Permission denied"))) as nomad:
        with pytest.raises(NomadPermissionDeniedError, match=r"no token was sent: set token or NOMAD_TOKEN"):
            make_client(nomad.address).read("/v1/allocations")


def test_multi_line_nomad_errors_become_one_line():
    body = "1 error occurred:\n\t* Failed to signal task: web, err: Task not running\n\n"
    with FakeNomad(scripted(Reply(500, body))) as nomad:
        with pytest.raises(NomadServerError) as failure:
            make_client(nomad.address).write("POST", "/v1/client/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/signal", body={})
    assert str(failure.value) == (
        "POST /v1/client/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/signal failed: 500 1 error occurred: "
        "* Failed to signal task: web, err: Task not running"
    )


def test_token_and_password_never_appear_in_error_messages():
    with FakeNomad(scripted(Reply(403, f"token {TOKEN} rejected for user ops:hunter22"))) as nomad:
        client = make_client(nomad.address, token=TOKEN, http_auth=("ops", "hunter22"))
        with pytest.raises(NomadPermissionDeniedError) as failure:
            client.read("/v1/allocations")
    assert TOKEN not in str(failure.value) and "hunter22" not in str(failure.value)
    assert TOKEN not in failure.value.nomad_message


def test_connection_refused_message():
    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NomadConnectionError) as failure:
        make_client(address, retries=0, token=TOKEN).read("/v1/allocations")
    assert str(failure.value) == f"cannot reach Nomad at {address}: connection refused (check address / NOMAD_ADDR)"


def test_unresolvable_host_message():
    with pytest.raises(NomadConnectionError, match=r"cannot resolve host name 'nomad\.invalid'"):
        make_client("http://nomad.invalid:4646", retries=0).read("/v1/allocations")


# ------------------------------------------------------------------------------------------ retries
@pytest.mark.parametrize("transient", [
    Reply(503, "No cluster leader"),
    Reply(500, "No cluster leader"),
    Reply(502, "bad gateway"),
    Reply(504, "gateway timeout"),
    Reply(429, "slow down", {"Retry-After": "0"}),
])
def test_reads_are_retried_on_transient_statuses(transient):
    with FakeNomad(scripted(transient, transient, json_reply(["ok"]))) as nomad:
        response = make_client(nomad.address).read("/v1/allocations")
    assert response.data == ["ok"]
    assert len(nomad.requests) == 3


def test_reads_give_up_after_retries_with_the_last_error():
    with FakeNomad(scripted(Reply(500, "No cluster leader"))) as nomad:
        with pytest.raises(NomadServerError, match="500 No cluster leader .the Nomad servers have no leader"):
            make_client(nomad.address, retries=2).read("/v1/allocations")
    assert len(nomad.requests) == 3


def test_reads_are_not_retried_on_client_errors():
    with FakeNomad(scripted(Reply(403, "Permission denied"))) as nomad:
        with pytest.raises(NomadPermissionDeniedError):
            make_client(nomad.address).read("/v1/allocations")
    assert len(nomad.requests) == 1


def test_dropped_read_is_retried():
    with FakeNomad(scripted(DROP, json_reply(["ok"]))) as nomad:
        assert make_client(nomad.address).read("/v1/allocations").data == ["ok"]
    assert len(nomad.requests) == 2


def test_read_whose_answer_broke_off_is_retried():
    broken = Reply(200, [{"ID": "x" * 40}] * 20, cut_body=True)
    with FakeNomad(scripted(broken, broken, json_reply(["ok"]))) as nomad:
        assert make_client(nomad.address).read("/v1/allocations").data == ["ok"]
    assert len(nomad.requests) == 3


def test_read_whose_answer_keeps_breaking_off_fails_clearly():
    with FakeNomad(scripted(Reply(200, [{"ID": "x" * 40}] * 20, cut_body=True))) as nomad:
        with pytest.raises(NomadConnectionError) as failure:
            make_client(nomad.address, retries=1).read("/v1/allocations")
    assert str(failure.value).startswith(
        f"GET /v1/allocations failed: the connection to Nomad at {nomad.address} broke before a complete answer ("
    )
    assert len(nomad.requests) == 2


def test_mutation_whose_answer_broke_off_is_not_resent():
    with FakeNomad(scripted(Reply(200, {"EvalID": "e" * 200}, cut_body=True), json_reply({"EvalID": "e"}))) as nomad:
        with pytest.raises(NomadConnectionError, match="may or may not have been applied"):
            make_client(nomad.address).write("POST", "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop")
    assert len(nomad.requests) == 1


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_mutations_are_never_resent_on_status(method, status):
    with FakeNomad(scripted(Reply(status, "busy", {"Retry-After": "0"}), json_reply({"EvalID": "e"}))) as nomad:
        with pytest.raises(NomadError) as failure:
            make_client(nomad.address).write(method, "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop")
    assert failure.value.status == status
    assert len(nomad.requests) == 1


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_mutation_whose_connection_dropped_is_not_resent(method):
    with FakeNomad(scripted(DROP, json_reply({"EvalID": "e"}))) as nomad:
        with pytest.raises(NomadConnectionError) as failure:
            make_client(nomad.address).write(method, "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop")
    assert "may or may not have been applied" in str(failure.value)
    assert len(nomad.requests) == 1


def test_write_rejects_get():
    with pytest.raises(ValueError):
        make_client("http://127.0.0.1:1").write("GET", "/v1/allocations")


# ------------------------------------------------------------------------------------------ blocking reads and websocket
def test_blocking_read_sends_index_and_wait_as_go_duration():
    with FakeNomad(scripted(json_reply([], index=12))) as nomad:
        response = make_client(nomad.address).blocking_read("/v1/allocations", {"filter": "x"}, 11, 5)
    assert nomad.requests[0].query["index"] == "11"
    assert nomad.requests[0].query["wait"] == "5s"
    assert response.index == 12


def test_go_duration():
    assert go_duration(30) == "30s" and go_duration(1.5) == "1500ms"


def test_websocket_target_carries_token_namespace_and_scheme():
    client = make_client("https://nomad.example.com:4646/prefix", token=TOKEN, namespace="prod", validate_certs=False)
    url, headers, sslopt = client.websocket_target("/v1/client/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/exec", {"task": "web", "tty": False})
    assert url.startswith("wss://nomad.example.com:4646/prefix/v1/client/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/exec?")
    assert "namespace=prod" in url and "task=web" in url and "tty=false" in url
    assert headers == [f"X-Nomad-Token: {TOKEN}"]
    assert sslopt["check_hostname"] is False and sslopt["context"] is not None


def test_websocket_target_plain_http():
    url, headers, sslopt = make_client("http://127.0.0.1:4646").websocket_target("/v1/x")
    assert url == "ws://127.0.0.1:4646/v1/x?namespace=default" and headers == [] and sslopt == {}


def test_slow_answer_is_a_timeout_error():
    import time

    def slow(request):
        time.sleep(1.0)
        return json_reply([])

    with FakeNomad(slow) as nomad:
        with pytest.raises(NomadError) as failure:
            make_client(nomad.address, retries=0, timeout=0.2).write("POST", "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop")
    assert type(failure.value).__name__ == "NomadTimeoutError"
    assert str(failure.value) == (
        f"POST /v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop failed: Nomad at {nomad.address} "
        "did not answer within the timeout of 0.2 s (raise timeout); "
        "the request may or may not have been applied"
    )


@pytest.mark.parametrize("address", ["http://exa mple.com:4646", "http://example..com:4646"])
def test_malformed_host_is_a_one_line_error(address):
    with pytest.raises(NomadError) as failure:
        make_client(address, retries=0).read("/v1/allocations")
    assert str(failure.value).startswith("GET /v1/allocations failed: ")
    assert str(failure.value).endswith("(check address and the other connection options)")


@pytest.mark.parametrize("header, seconds", [("3600", MAX_RETRY_AFTER), ("2", 2), ("0", 0)])
def test_retry_after_is_honoured_up_to_a_cap(header, seconds):
    assert CappedRetry(total=1).parse_retry_after(header) == seconds


@pytest.mark.parametrize("path", [
    "/v1/allocation/5a22/../../evil",
    "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/../../evil",
    "/v1/client/fs/cat/..",
    "/v1/client/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c%2F..%2F/exec",
    "/v1/node/not-a-node/allocations",
    "/v1/evaluation/x",
    "/v1/deployment/fail/0b5e4c7a",
])
def test_ids_in_request_paths_must_be_uuids(path):
    client = make_client("http://127.0.0.1:9")
    with pytest.raises(NomadUnsafeIDError, match="is not a UUID"):
        client.read(path)
    with pytest.raises(NomadUnsafeIDError, match="is not a UUID"):
        list(client.stream(path))
    with pytest.raises(NomadUnsafeIDError, match="is not a UUID"):
        client.websocket_target(path)


@pytest.mark.parametrize("path", [
    "/v1/allocation/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c/stop",
    "/v1/client/fs/stat/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
    "/v1/deployment/promote/0b5e4c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
    "/v1/allocations",
    "/v1/job/a%2Fb",
])
def test_paths_with_uuids_or_without_ids_pass(path):
    _client_module.require_uuid_ids(path)
