# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nomadops.nomad.nomad_alloc lookup in templates and loops, run by real ansible-playbook."""

from __future__ import annotations

import yaml

from tests.integration.observe import closed_address, play

LOOKUP = "nomadops.nomad.nomad_alloc"


def debug(name, msg, **extra):
    return dict({"name": name, "ansible.builtin.debug": {"msg": msg}}, **extra)


def web_allocations(emulator):
    return [a for a in emulator.allocations("*") if a["JobID"] == "web"]


def test_lookup_in_loop_and_template(ansible_runner, integration_emulator, tmp_path):
    report = tmp_path / "report.txt"
    template = ("{% for alloc in query('" + LOOKUP + "', job='web') %}{{ alloc.Name }} {{ alloc.ClientStatus }}\n"
                "{% endfor %}")
    run = ansible_runner.playbook(play(
        debug("loop", "{{ item.ID }}", loop=f"{{{{ query('{LOOKUP}', job='web', client_status=['running']) }}}}"),
        {"name": "template", "ansible.builtin.copy": {"dest": str(report), "content": template, "mode": "0644"}},
        debug("count everywhere", f"{{{{ query('{LOOKUP}', namespace='*') | length }}}}"),
        debug("empty is a list", f"{{{{ query('{LOOKUP}', job='nope') }}}}"),
    )).assert_ok()
    expected = sorted(a["ID"] for a in web_allocations(integration_emulator))
    loop = run.task("loop")
    assert sorted(item["msg"] for item in loop["results"]) == expected
    lines = sorted(report.read_text().splitlines())
    assert lines == [f"web.frontend[{n}] running" for n in range(3)]
    assert int(run.task("count everywhere")["msg"]) == len(integration_emulator.allocations("*"))
    assert run.task("empty is a list")["msg"] == []


def test_terms_are_ids_and_prefixes_returning_full_objects(ansible_runner, integration_emulator):
    web = web_allocations(integration_emulator)
    run = ansible_runner.playbook(play(
        debug("two", f"{{{{ query('{LOOKUP}', '{web[0]['ID'][:8]}', '{web[1]['ID']}') | map(attribute='Job.ID') }}}}"),
        debug("services", f"{{{{ query('{LOOKUP}', id=['{web[0]['ID'][:8]}'], services=true)[0].Services | map(attribute='ServiceName') }}}}"),
        debug("lookup keeps a single result a dict", f"{{{{ lookup('{LOOKUP}', '{web[0]['ID'][:8]}').ID }}}}"),
    )).assert_ok()
    assert run.task("two")["msg"] == ["web", "web"]
    assert run.task("services")["msg"] == ["web"]
    assert run.task("lookup keeps a single result a dict")["msg"] == web[0]["ID"]


def test_precedence_keyword_over_variable_over_environment(ansible_runner, integration_emulator):
    address = integration_emulator.address
    run = ansible_runner.playbook(play(
        debug("variable beats environment", f"{{{{ query('{LOOKUP}', job='cache') | length }}}}"),
        debug("keyword beats variable", f"{{{{ query('{LOOKUP}', job='cache', namespace='default') | length }}}}"),
        vars={"ansible_nomad_address": address, "ansible_nomad_namespace": "prod"},
    ), env={"NOMAD_ADDR": closed_address(), "NOMAD_NAMESPACE": "default"}).assert_ok()
    assert run.task("variable beats environment")["msg"] == 2
    assert run.task("keyword beats variable")["msg"] == 0
    env_only = ansible_runner.playbook(play(
        debug("environment", f"{{{{ query('{LOOKUP}', job='cache') | length }}}}"),
    ), env={"NOMAD_NAMESPACE": "prod"}).assert_ok()
    assert env_only.task("environment")["msg"] == 2


def test_lookup_errors_are_one_line_without_traceback(ansible_runner):
    unreachable = closed_address()
    run = ansible_runner.playbook(play(
        debug("bad id", f"{{{{ query('{LOOKUP}', 'zz') }}}}", ignore_errors=True),
        debug("bad filter", f"{{{{ query('{LOOKUP}', filter='JobID ==') }}}}", ignore_errors=True),
        debug("unreachable", f"{{{{ query('{LOOKUP}', address='{unreachable}', retries=0) }}}}", ignore_errors=True),
        debug("bad option", f"{{{{ query('{LOOKUP}', per_page='many') }}}}", ignore_errors=True),
    )).assert_ok()
    expected = {
        "bad id": 'id "zz" is not an allocation ID or ID prefix',
        "bad filter": "GET /v1/allocations failed: 400 failed to create result paginator",
        "unreachable": f"cannot reach Nomad at {unreachable}: connection refused (check address / NOMAD_ADDR)",
        "bad option": "per_page",
    }
    for name, text in expected.items():
        result = run.task(name)
        assert result["_status"] == "ignored", name
        assert text in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"]


def test_lookup_data_is_never_templated(start_emulator, tmp_path):
    from tests.integration.conftest import AnsibleRunner, SCENARIOS

    scenario = yaml.safe_load((SCENARIOS / "integration.yml").read_text())
    scenario["jobs"] = [{
        "id": "evil-{{ 7 * 7 }}", "namespace": "default", "type": "batch",
        "groups": [{"name": "g", "count": 1, "tasks": [{"name": "t", "command": ["/bin/sh", "-c", "exit 0"]}]}],
    }]
    path = tmp_path / "evil.yml"
    path.write_text(yaml.safe_dump(scenario))
    emulator = start_emulator(str(path))
    runner = AnsibleRunner(emulator.address, tmp_path / "ansible")
    run = runner.playbook(play(
        debug("job id", "{{ item.JobID }}", loop=f"{{{{ query('{LOOKUP}') }}}}"),
        debug("via set_fact", f"{{{{ query('{LOOKUP}')[0].JobID }}}}"),
    )).assert_ok()
    assert [item["msg"] for item in run.task("job id")["results"]] == ["evil-{{ 7 * 7 }}"]
    assert run.task("via set_fact")["msg"] == "evil-{{ 7 * 7 }}"


def test_playbook_file(ansible_runner):
    run = ansible_runner.playbook("lookup_loop.yml").assert_ok()
    assert len(run.task("Loop over the running allocations of web")["results"]) == 3
    assert run.task("Check the summary")["_status"] == "ok"
