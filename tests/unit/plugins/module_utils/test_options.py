# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection option resolution: defaults, NOMAD_* fallbacks and their precedence, validation messages."""

from __future__ import annotations

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (
    CONNECTION_ARGUMENT_SPEC,
    NomadOptionError,
    connection_options_from_params,
    parse_go_bool,
)


def resolve(params=None):
    """What every runtime does: validate against the one spec (fallbacks, defaults), then resolve."""
    result = ArgumentSpecValidator(CONNECTION_ARGUMENT_SPEC).validate(dict(params or {}))
    assert not result.error_messages, result.error_messages
    return connection_options_from_params(result.validated_parameters)


def test_defaults_without_environment():
    options = resolve()
    assert options.address == "http://127.0.0.1:4646"
    assert options.namespace == "default"
    assert options.token is None and options.region is None
    assert options.validate_certs is True
    assert options.timeout == 30 and options.retries == 3


def test_environment_fallbacks(monkeypatch, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    monkeypatch.setenv("NOMAD_ADDR", "https://nomad.example.com:4646/")
    monkeypatch.setenv("NOMAD_TOKEN", "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01")
    monkeypatch.setenv("NOMAD_NAMESPACE", "prod")
    monkeypatch.setenv("NOMAD_REGION", "eu")
    monkeypatch.setenv("NOMAD_CACERT", str(ca))
    monkeypatch.setenv("NOMAD_TLS_SERVER_NAME", "server.global.nomad")
    monkeypatch.setenv("NOMAD_HTTP_AUTH", "ops:s3cret")
    options = resolve()
    assert options.address == "https://nomad.example.com:4646"
    assert options.token == "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01"
    assert options.namespace == "prod"
    assert options.region == "eu"
    assert options.ca_cert == str(ca)
    assert options.tls_server_name == "server.global.nomad"
    assert options.http_auth == ("ops", "s3cret")


def test_task_arguments_win_over_environment(monkeypatch):
    monkeypatch.setenv("NOMAD_ADDR", "http://env:4646")
    monkeypatch.setenv("NOMAD_NAMESPACE", "prod")
    monkeypatch.setenv("NOMAD_TOKEN", "env-token-value")
    options = resolve({"address": "http://arg:4646", "namespace": "*", "token": "arg-token-value"})
    assert (options.address, options.namespace, options.token) == ("http://arg:4646", "*", "arg-token-value")


@pytest.mark.parametrize("value, validate", [
    ("1", False), ("t", False), ("T", False), ("true", False), ("TRUE", False), ("True", False),
    ("0", True), ("f", True), ("false", True), ("FALSE", True),
])
def test_nomad_skip_verify_parsed_like_go(monkeypatch, value, validate):
    monkeypatch.setenv("NOMAD_SKIP_VERIFY", value)
    assert resolve().validate_certs is validate


@pytest.mark.parametrize("value", ["yes", "on", "tRuE", "2", ""])
def test_unparsable_nomad_skip_verify_is_ignored(monkeypatch, value):
    monkeypatch.setenv("NOMAD_SKIP_VERIFY", value)
    assert resolve().validate_certs is True


def test_explicit_validate_certs_wins_over_nomad_skip_verify(monkeypatch):
    monkeypatch.setenv("NOMAD_SKIP_VERIFY", "1")
    assert resolve({"validate_certs": True}).validate_certs is True


def test_go_parse_bool_table():
    assert parse_go_bool("t") is True and parse_go_bool("F") is False and parse_go_bool("yes") is None


def test_userinfo_in_address_becomes_basic_auth_and_leaves_the_address():
    options = resolve({"address": "https://ops:p%40ss@nomad:4646", "http_auth": "other:pw"})
    assert options.address == "https://nomad:4646"
    assert options.http_auth == ("ops", "p@ss")


def test_http_auth_user_only():
    assert resolve({"http_auth": "ops"}).http_auth == ("ops", "")


def test_bare_host_port_means_http():
    assert resolve({"address": "127.0.0.1:4646"}).address == "http://127.0.0.1:4646"


def test_path_prefix_is_kept():
    assert resolve({"address": "https://proxy.example.com/nomad/"}).address == "https://proxy.example.com/nomad"


def test_short_secrets_are_scrubbed_too():
    assert set(resolve({"token": "denied", "http_auth": "ops:pw"}).secrets) == {"denied", "pw"}
    assert resolve({"address": "http://ops:p@nomad:4646"}).secrets == ("p",)


def test_secrets_are_not_in_repr():
    options = resolve({"token": "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01", "http_auth": "ops:hunter22"})
    assert "3c9c5b8e" not in repr(options)
    assert "hunter22" not in repr(options)
    assert set(options.secrets) == {"3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01", "hunter22"}


@pytest.mark.parametrize("params, message", [
    ({"address": "ftp://nomad:21"}, "address must start with http:// or https://"),
    ({"address": "http://nomad:notaport"}, "is not a valid URL"),
    ({"timeout": 0}, "timeout must be a positive number"),
    ({"retries": -1}, "retries must be 0 or more"),
    ({"ca_cert": "/nonexistent/ca.pem"}, "ca_cert '/nonexistent/ca.pem' is not a readable file"),
    ({"ca_path": "/nonexistent/dir"}, "ca_path '/nonexistent/dir' is not a directory"),
    ({"client_cert": "/nonexistent/cert.pem"}, "client_cert '/nonexistent/cert.pem' is not a readable file"),
])
def test_bad_values_give_one_line_messages(params, message):
    with pytest.raises(NomadOptionError) as failure:
        resolve(params)
    assert message in str(failure.value)
    assert "\n" not in str(failure.value)


def test_token_is_trimmed_and_control_characters_refused_without_showing_it():
    assert resolve({"token": "  3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01\n"}).token == "3c9c5b8e-6a1d-4f0e-9d2a-3f5e8b7c1a01"
    with pytest.raises(NomadOptionError) as failure:
        resolve({"token": "3c9c5b8e\r\nX-Evil: 1"})
    assert "3c9c5b8e" not in str(failure.value)


@pytest.mark.parametrize("params, option", [
    ({"token": "токен-secret"}, "token"),
    ({"http_auth": "user:пароль"}, "http_auth"),
    ({"address": "http://user:%D0%BF%D0%B0@127.0.0.1:4646"}, "address"),
])
def test_secrets_that_cannot_be_sent_in_a_header_are_refused_by_name(params, option):
    with pytest.raises(NomadOptionError) as failure:
        resolve(params)
    message = str(failure.value)
    assert option in message and "Latin-1" in message
    assert "токен" not in message and "пароль" not in message and "па" not in message


def test_malformed_ipv6_address():
    with pytest.raises(NomadOptionError, match="is not a valid URL"):
        resolve({"address": "http://[::1:4646"})


def test_client_key_without_client_cert(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("x")
    with pytest.raises(NomadOptionError, match="client_key needs client_cert"):
        resolve({"client_key": str(key)})


def test_ca_cert_wins_over_ca_path(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    options = resolve({"ca_cert": str(ca), "ca_path": str(tmp_path)})
    assert options.ca_cert == str(ca) and options.ca_path is None


def test_empty_environment_values_mean_unset(monkeypatch):
    monkeypatch.setenv("NOMAD_REGION", "")
    monkeypatch.setenv("NOMAD_TOKEN", "")
    options = resolve()
    assert options.region is None and options.token is None


def test_spec_secrets_are_no_log():
    assert CONNECTION_ARGUMENT_SPEC["token"]["no_log"] is True
    assert CONNECTION_ARGUMENT_SPEC["http_auth"]["no_log"] is True


def test_password_in_address_is_reported_as_a_secret():
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import secrets_in_params

    assert secrets_in_params({"address": "https://ops:p%40ss@nomad:4646"}) == {"p%40ss", "p@ss"}
    assert secrets_in_params({"address": "https://ops@nomad:4646"}) == set()
    assert secrets_in_params({"address": "http://[::1"}) == set()
    assert secrets_in_params({}) == set()
