# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""TLS, mutual TLS, ca_path, tls_server_name and validate_certs against a real HTTPS server on loopback,
always with REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE pointing at an unrelated CA (the trap on these hosts)."""

from __future__ import annotations

import pytest

trustme = pytest.importorskip("trustme")

from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadTLSError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import (  # noqa: E402
    ConnectionOptions,
    NomadOptionError,
)
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (  # noqa: E402
    FakeNomad,
    json_reply,
    server_ssl_context,
)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def unrelated_ca():
    return trustme.CA()


@pytest.fixture(autouse=True)
def hostile_environment(monkeypatch, unrelated_ca, tmp_path):
    """A CA bundle in the environment that does NOT sign our server, as on AWX/corporate hosts."""
    bundle = tmp_path / "env-bundle.pem"
    unrelated_ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))


def ok(_request):
    return json_reply([], index=1)


def client_for(address, **settings):
    return NomadClient(ConnectionOptions(address=address, retries=0, timeout=10, **settings))


def write_ca(ca, path):
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_ca_cert_is_used_despite_requests_ca_bundle(ca, tmp_path):
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with FakeNomad(ok, ssl_context=server_ssl_context(cert)) as nomad:
        response = client_for(nomad.address, ca_cert=write_ca(ca, tmp_path / "ca.pem")).read("/v1/allocations")
    assert response.index == 1


def test_ca_path_directory_without_hashed_names(ca, unrelated_ca, tmp_path):
    directory = tmp_path / "cas"
    directory.mkdir()
    write_ca(unrelated_ca, directory / "other.pem")
    write_ca(ca, directory / "nomad-ca.crt")
    cert = ca.issue_cert("127.0.0.1")
    with FakeNomad(ok, ssl_context=server_ssl_context(cert)) as nomad:
        assert client_for(nomad.address, ca_path=str(directory)).read("/v1/allocations").index == 1


def test_ca_path_with_a_file_that_is_not_pem(tmp_path):
    directory = tmp_path / "cas"
    directory.mkdir()
    (directory / "README").write_text("not a certificate")
    with pytest.raises(NomadOptionError, match="cannot load ca_path file"):
        client_for("https://127.0.0.1:1", ca_path=str(directory))


def test_empty_ca_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NomadOptionError, match="contains no CA certificate files"):
        client_for("https://127.0.0.1:1", ca_path=str(empty))


def test_untrusted_server_is_a_tls_verification_error(ca, unrelated_ca, tmp_path):
    cert = ca.issue_cert("127.0.0.1")
    with FakeNomad(ok, ssl_context=server_ssl_context(cert)) as nomad:
        client = client_for(nomad.address, ca_cert=write_ca(unrelated_ca, tmp_path / "wrong.pem"))
        with pytest.raises(NomadTLSError) as failure:
            client.read("/v1/allocations")
    message = str(failure.value)
    assert message.startswith(f"TLS verification failed for {nomad.address}: ")
    assert "set ca_cert" in message and "\n" not in message


def test_validate_certs_false_wins_over_requests_ca_bundle(ca):
    cert = ca.issue_cert("127.0.0.1")
    with FakeNomad(ok, ssl_context=server_ssl_context(cert)) as nomad:
        assert client_for(nomad.address, validate_certs=False).read("/v1/allocations").index == 1


def test_tls_server_name_is_verified_instead_of_the_address_host(ca, tmp_path):
    cert = ca.issue_cert("server.global.nomad")
    ca_file = write_ca(ca, tmp_path / "ca.pem")
    with FakeNomad(ok, ssl_context=server_ssl_context(cert)) as nomad:
        with pytest.raises(NomadTLSError, match="TLS verification failed"):
            client_for(nomad.address, ca_cert=ca_file).read("/v1/allocations")
        client = client_for(nomad.address, ca_cert=ca_file, tls_server_name="server.global.nomad")
        assert client.read("/v1/allocations").index == 1
        with pytest.raises(NomadTLSError, match="TLS verification failed"):
            client_for(nomad.address, ca_cert=ca_file, tls_server_name="other.nomad").read("/v1/allocations")


def test_mutual_tls(ca, tmp_path):
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("client.global.nomad")
    cert_file = tmp_path / "client.pem"
    key_file = tmp_path / "client-key.pem"
    client_cert.cert_chain_pems[0].write_to_path(str(cert_file))
    client_cert.private_key_pem.write_to_path(str(key_file))
    ca_file = write_ca(ca, tmp_path / "ca.pem")
    with FakeNomad(ok, ssl_context=server_ssl_context(server_cert, require_client_cert_from=ca)) as nomad:
        with_cert = client_for(nomad.address, ca_cert=ca_file, client_cert=str(cert_file), client_key=str(key_file))
        assert with_cert.read("/v1/allocations").index == 1
        with pytest.raises(NomadTLSError) as failure:
            client_for(nomad.address, ca_cert=ca_file).read("/v1/allocations")
    assert "\n" not in str(failure.value)


def test_unloadable_client_certificate(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("garbage")
    with pytest.raises(NomadOptionError, match="cannot load client_cert"):
        client_for("https://127.0.0.1:1", client_cert=str(bad))


def test_websocket_sslopt_uses_the_same_context(ca, tmp_path):
    client = client_for("https://127.0.0.1:4646", ca_cert=write_ca(ca, tmp_path / "ca.pem"), tls_server_name="n.nomad")
    _url, _headers, sslopt = client.websocket_target("/v1/x")
    assert sslopt["context"] is client._ssl_context
    assert sslopt["server_hostname"] == "n.nomad" and sslopt["check_hostname"] is True
