# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTPS and mutual TLS (certificates from trustme)."""
from __future__ import annotations

import pytest
import requests
import trustme

from conftest import Api


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example")
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server-key.pem",
             "client": directory / "client.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return {name: str(path) for name, path in paths.items()}


def test_https(emulator_factory, pki):
    emulator = emulator_factory(tls_cert=pki["cert"], tls_key=pki["key"], tls_ca=pki["ca"])
    assert emulator.address.startswith("https://127.0.0.1:")
    assert emulator.verify == pki["ca"]
    assert Api(emulator).allocations()
    assert emulator.allocations()
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(emulator.address + "/v1/allocations", timeout=10)  # system CAs do not know the test CA


def test_mutual_tls_requires_a_client_certificate(emulator_factory, pki):
    emulator = emulator_factory(tls_cert=pki["cert"], tls_key=pki["key"], tls_ca=pki["ca"],
                                require_client_cert=True, client_cert=pki["client"])
    session = requests.Session()
    session.trust_env = False
    with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
        session.get(emulator.address + "/v1/allocations", verify=pki["ca"], timeout=10)
    response = session.get(emulator.address + "/v1/allocations", verify=pki["ca"], cert=pki["client"], timeout=10)
    assert response.status_code == 200
    assert emulator.allocations()  # the harness passes its client certificate
