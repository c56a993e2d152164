# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_info and the lookup over HTTPS and mutual TLS against the emulator, with a CA bundle in
REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE that does not sign the emulator (as on these hosts and in AWX)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import AnsibleRunner

trustme = pytest.importorskip("trustme")

MODULE = "nomadops.nomad.nomad_alloc_info"


def play(*tasks):
    return [dict(hosts="localhost", gather_facts=False, tasks=list(tasks))]


def info(name, ignore_errors=False, **args):
    task = {"name": name, MODULE: args}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("server.global.nomad", "127.0.0.1")
    client = ca.issue_cert("client.global.nomad")
    files = {}
    for name, blob in [("ca.pem", ca.cert_pem), ("other-ca.pem", other.cert_pem),
                       ("server.pem", server.cert_chain_pems[0]), ("server-key.pem", server.private_key_pem),
                       ("client.pem", client.cert_chain_pems[0]), ("client-key.pem", client.private_key_pem)]:
        blob.write_to_path(str(directory / name))
        files[name] = str(directory / name)
    capath = directory / "capath"
    capath.mkdir()
    ca.cert_pem.write_to_path(str(capath / "nomad-ca.crt"))
    files["capath"] = str(capath)
    return files


def hostile_env(pki):
    return {"REQUESTS_CA_BUNDLE": pki["other-ca.pem"], "CURL_CA_BUNDLE": pki["other-ca.pem"]}


def test_https_with_ca_cert_ca_path_skip_verify_and_server_name(start_emulator, pki, tmp_path):
    emulator = start_emulator("integration.yml", tls_cert=pki["server.pem"], tls_key=pki["server-key.pem"])
    assert emulator.address.startswith("https://")
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    wrong_host = emulator.address.replace("127.0.0.1", "localhost")
    run = runner.playbook(play(
        info("ca_cert", job="web", ca_cert=pki["ca.pem"]),
        info("ca_path", job="web", ca_path=pki["capath"]),
        info("tls_server_name", job="web", address=wrong_host, ca_cert=pki["ca.pem"], tls_server_name="server.global.nomad"),
        info("wrong host name", job="web", address=wrong_host, ca_cert=pki["ca.pem"], ignore_errors=True),
        info("untrusted", job="web", ca_cert=pki["other-ca.pem"], ignore_errors=True),
        info("no verification", job="web", validate_certs=False),
    ), env=hostile_env(pki)).assert_ok()
    for name in ("ca_cert", "ca_path", "tls_server_name", "no verification"):
        assert run.task(name)["count"] == 3, name
    for name in ("wrong host name", "untrusted"):
        message = run.task(name)["msg"]
        assert message.startswith("TLS verification failed for "), message
        assert "\n" not in message and "set ca_cert" in message


def test_environment_tls_settings(start_emulator, pki, tmp_path):
    emulator = start_emulator("integration.yml", tls_cert=pki["server.pem"], tls_key=pki["server-key.pem"])
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    with_ca = runner.playbook(play(info("env ca", job="web")), env=dict(hostile_env(pki), NOMAD_CACERT=pki["ca.pem"]))
    assert with_ca.assert_ok().task("env ca")["count"] == 3
    skip = runner.playbook(play(info("env skip", job="web")), env=dict(hostile_env(pki), NOMAD_SKIP_VERIFY="true"))
    assert skip.assert_ok().task("env skip")["count"] == 3
    lookup = runner.playbook(play({
        "name": "lookup over TLS",
        "ansible.builtin.debug": {"msg": f"{{{{ query('nomadops.nomad.nomad_alloc', job='web', ca_cert='{pki['ca.pem']}') | length }}}}"},
    }), env=hostile_env(pki)).assert_ok()
    assert lookup.task("lookup over TLS")["msg"] == 3


def test_mutual_tls(start_emulator, pki, tmp_path):
    emulator = start_emulator("integration.yml", tls_cert=pki["server.pem"], tls_key=pki["server-key.pem"],
                              tls_ca=pki["ca.pem"], require_client_cert=True,
                              client_cert=(pki["client.pem"], pki["client-key.pem"]))
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    run = runner.playbook(play(
        info("with client cert", job="web", ca_cert=pki["ca.pem"], client_cert=pki["client.pem"],
             client_key=pki["client-key.pem"]),
        info("without client cert", job="web", ca_cert=pki["ca.pem"], retries=0, ignore_errors=True),
    ), env=hostile_env(pki)).assert_ok()
    assert run.task("with client cert")["count"] == 3
    message = run.task("without client cert")["msg"]
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(("TLS handshake with", "GET /v1/allocations failed: the connection")), message
    assert "client_cert" in message
