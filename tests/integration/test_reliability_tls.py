# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""TLS for every runtime (module, lookup, exec action): CA verification, a wrong CA, tls_server_name,
mutual TLS, validate_certs=false / NOMAD_SKIP_VERIFY and ca_path, always with REQUESTS_CA_BUNDLE and
CURL_CA_BUNDLE set in the environment to a bundle that must NOT decide (the user's options win)."""

from __future__ import annotations

import time

import pytest
import trustme

from conftest import AnsibleRunner

INFO = "nomadops.nomad.nomad_alloc_info"
SIGNAL = "nomadops.nomad.nomad_alloc_signal"
EXEC = "nomadops.nomad.nomad_alloc_exec"
OTHER_NAME = "nomad.internal"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reliability-pki")
    ca, unrelated = trustme.CA(), trustme.CA()
    blobs = {
        "ca.pem": ca.cert_pem,
        "unrelated-ca.pem": unrelated.cert_pem,
    }
    for name, cert in (("local", ca.issue_cert("127.0.0.1", "localhost")),
                       ("other-name", ca.issue_cert(OTHER_NAME)),
                       ("client", ca.issue_cert("client.global.nomad")),
                       ("foreign-client", unrelated.issue_cert("client.global.nomad"))):
        blobs[f"{name}.pem"] = cert.cert_chain_pems[0]
        blobs[f"{name}-key.pem"] = cert.private_key_pem
    files = {}
    for name, blob in blobs.items():
        blob.write_to_path(str(directory / name))
        files[name] = str(directory / name)
    ca_dir = directory / "ca-dir"
    ca_dir.mkdir()
    unrelated.cert_pem.write_to_path(str(ca_dir / "a-unrelated.pem"))
    ca.cert_pem.write_to_path(str(ca_dir / "nomad-ca.pem"))
    files["ca-dir"] = str(ca_dir)
    return files


def bundle_env(path):
    return {"REQUESTS_CA_BUNDLE": path, "CURL_CA_BUNDLE": path, "SSL_CERT_FILE": None}


def wait_for_web(emulator):
    deadline = time.monotonic() + 20
    while True:
        web = [a for a in emulator.allocations("*") if a["JobID"] == "web" and a["ClientStatus"] == "running"]
        if len(web) == 3:
            return sorted(web, key=lambda a: a["Name"])
        assert time.monotonic() < deadline, "web did not start"
        time.sleep(0.1)


def every_runtime(case, web_id, ignore_errors=False, **connection):
    """The same connection settings through the module, the lookup and the exec action."""
    lookup_args = ", ".join(["job='web'", "retries=0"] + [f"{key}={key}_value" for key in connection])
    tasks = [
        {"name": f"{case} info", INFO: dict(job="web", retries=0, **connection)},
        {"name": f"{case} lookup", "ansible.builtin.set_fact": {
            "found": f"{{{{ lookup('nomadops.nomad.nomad_alloc', {lookup_args}) }}}}"},
         "vars": {f"{key}_value": value for key, value in connection.items()}},
        {"name": f"{case} exec", EXEC: dict(id=web_id, task="server", command="echo over-tls", **connection)},
    ]
    for task in tasks:
        if ignore_errors:
            task["ignore_errors"] = True
    return tasks


def statuses(run, case):
    return {kind: run.task(f"{case} {kind}")["_status"] for kind in ("info", "lookup", "exec")}


def messages(run, case):
    return {kind: run.task(f"{case} {kind}").get("msg", "") for kind in ("info", "lookup", "exec")}


def assert_ok(run, case):
    assert set(statuses(run, case).values()) <= {"ok", "changed"}, (case, messages(run, case))
    assert run.task(f"{case} info")["count"] == 3
    assert len(run.task(f"{case} lookup")["ansible_facts"]["found"]) == 3
    assert run.task(f"{case} exec")["stdout"] == "over-tls"


def assert_fails_with(run, case, *texts):
    assert set(statuses(run, case).values()) == {"ignored"}, (case, statuses(run, case), messages(run, case))
    for kind, message in messages(run, case).items():
        assert "\n" not in message and "Traceback" not in message, (case, kind, message)
        assert any(text in message for text in texts), (case, kind, message)


# The harness reads a TLS emulator started without `tls_ca` unverified (it has no CA to check it with): the
# warning urllib3 gives for that is expected there, and only there.
HARNESS_READS_UNVERIFIED = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def play(*task_lists):
    return [dict(hosts="localhost", gather_facts=False, tasks=[task for tasks in task_lists for task in tasks])]


@HARNESS_READS_UNVERIFIED
def test_server_verification_with_a_hostile_ca_bundle_in_the_environment(start_emulator, pki, tmp_path):
    emulator = start_emulator(tls_cert=pki["local.pem"], tls_key=pki["local-key.pem"])
    web = wait_for_web(emulator)
    web_id = web[0]["ID"]
    address = emulator.address
    localhost = address.replace("127.0.0.1", "localhost")
    runner = AnsibleRunner(address, tmp_path / "run")

    # The environment bundle is unrelated: anything that trusts it instead of our options fails.
    run = runner.playbook(play(
        every_runtime("ca_cert", web_id, ca_cert=pki["ca.pem"]),
        every_runtime("ca_cert by name", web_id, ca_cert=pki["ca.pem"], address=localhost),
        every_runtime("ca_path", web_id, ca_path=pki["ca-dir"]),
        every_runtime("no verification", web_id, validate_certs=False),
        every_runtime("wrong ca", web_id, True, ca_cert=pki["unrelated-ca.pem"]),
        every_runtime("no ca", web_id, True),
        every_runtime("plain http", web_id, True, address=address.replace("https://", "http://")),
        [{"name": "signal with ca_cert", SIGNAL: dict(id=[web[1]["ID"]], task="server", signal="SIGHUP",
                                                      ca_cert=pki["ca.pem"])}],
    ), env=bundle_env(pki["unrelated-ca.pem"]))
    for case in ("ca_cert", "ca_cert by name", "ca_path", "no verification"):
        assert_ok(run, case)
    assert run.task("signal with ca_cert")["_status"] == "changed"
    assert "SIGHUP" in emulator.control.tasks(web[1]["ID"])["server"]["signals"]
    assert_fails_with(run, "wrong ca", "TLS verification failed", "certificate verify failed")
    assert_fails_with(run, "no ca", "TLS verification failed", "certificate verify failed")
    assert_fails_with(run, "plain http", "https", "TLS", "broke", "closed")


@HARNESS_READS_UNVERIFIED
def test_user_options_win_over_a_correct_environment_bundle_and_skip_verify(start_emulator, pki, tmp_path):
    emulator = start_emulator(tls_cert=pki["local.pem"], tls_key=pki["local-key.pem"])
    web_id = wait_for_web(emulator)[0]["ID"]
    runner = AnsibleRunner(emulator.address, tmp_path / "run")
    # Now the environment bundle WOULD verify the server, and NOMAD_SKIP_VERIFY says not to verify:
    # an explicit wrong ca_cert with validate_certs=true must still fail.
    env = dict(bundle_env(pki["ca.pem"]), NOMAD_SKIP_VERIFY="true")
    run = runner.playbook(play(
        every_runtime("skip verify from the environment", web_id),
        every_runtime("explicit wrong ca", web_id, True, ca_cert=pki["unrelated-ca.pem"], validate_certs=True),
    ), env=env)
    assert_ok(run, "skip verify from the environment")
    assert_fails_with(run, "explicit wrong ca", "TLS verification failed", "certificate verify failed")


@HARNESS_READS_UNVERIFIED
def test_tls_server_name(start_emulator, pki, tmp_path):
    emulator = start_emulator(tls_cert=pki["other-name.pem"], tls_key=pki["other-name-key.pem"])
    web_id = wait_for_web(emulator)[0]["ID"]
    runner = AnsibleRunner(emulator.address, tmp_path / "run")
    run = runner.playbook(play(
        every_runtime("server name", web_id, ca_cert=pki["ca.pem"], tls_server_name=OTHER_NAME),
        every_runtime("address name only", web_id, True, ca_cert=pki["ca.pem"]),
        every_runtime("wrong server name", web_id, True, ca_cert=pki["ca.pem"], tls_server_name="elsewhere.test"),
    ), env=bundle_env(pki["unrelated-ca.pem"]))
    assert_ok(run, "server name")
    assert_fails_with(run, "address name only", "TLS verification failed")
    assert_fails_with(run, "wrong server name", "TLS verification failed")


def test_mutual_tls_required(start_emulator, pki, tmp_path):
    emulator = start_emulator(tls_cert=pki["local.pem"], tls_key=pki["local-key.pem"], tls_ca=pki["ca.pem"],
                              require_client_cert=True, client_cert=(pki["client.pem"], pki["client-key.pem"]))
    web_id = wait_for_web(emulator)[0]["ID"]
    runner = AnsibleRunner(emulator.address, tmp_path / "run")
    run = runner.playbook(play(
        every_runtime("client cert", web_id, ca_cert=pki["ca.pem"], client_cert=pki["client.pem"],
                      client_key=pki["client-key.pem"]),
        every_runtime("client cert from another ca", web_id, True, ca_cert=pki["ca.pem"],
                      client_cert=pki["foreign-client.pem"], client_key=pki["foreign-client-key.pem"]),
        every_runtime("no client cert", web_id, True, ca_cert=pki["ca.pem"]),
    ), env=bundle_env(pki["unrelated-ca.pem"]))
    assert_ok(run, "client cert")
    assert_fails_with(run, "no client cert", "client_cert", "client certificate", "certificate required")
    assert_fails_with(run, "client cert from another ca", "TLS", "certificate", "broke")
