# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One connection model for every plugin kind: the lookup, the modules (through their actions) and the exec
action resolve the same options in the same precedence, refuse what they do not know, and name the address."""

from __future__ import annotations

from tests.integration.observe import closed_address, play, running_allocations

INFO = "nomadops.nomad.nomad_alloc_info"
EXEC = "nomadops.nomad.nomad_alloc_exec"
MANAGEMENT_TOKEN = "00000000-0000-4000-8000-000000000001"


def debug(name, msg, **extra):
    return dict({"name": name, "ansible.builtin.debug": {"msg": msg}}, **extra)


def test_a_lookup_typo_is_refused_naming_the_keyword(emulator, ansible_runner):
    run = ansible_runner.playbook(play(
        debug("typo", "{{ query('nomadops.nomad.nomad_alloc', jbo='web') }}", ignore_errors=True),
        debug("namespace typo", "{{ query('nomadops.nomad.nomad_alloc', namespce='prod') }}", ignore_errors=True),
    )).assert_ok()
    typo = run.task("typo")
    assert typo["_status"] == "ignored"
    assert "unknown keyword argument jbo (did you mean job?); known: address," in typo["msg"]
    assert "unknown keyword argument namespce (did you mean namespace?)" in run.task("namespace typo")["msg"]


def test_play_variable_wins_over_nomad_addr_for_info_lookup_and_exec(emulator, ansible_runner):
    web = running_allocations(emulator, "web")
    run = ansible_runner.playbook(play(
        {"name": "info", INFO: {"job": "web"}, "register": "info"},
        debug("lookup", "{{ query('nomadops.nomad.nomad_alloc', job='web') | map(attribute='ID') | sort }}"),
        {"name": "exec", EXEC: {"id": "{{ info.allocations[0].ID }}", "task": "server", "command": "echo same"}},
        vars={"ansible_nomad_address": emulator.address},
    ), env={"NOMAD_ADDR": closed_address()}).assert_ok()
    expected = sorted(a["ID"] for a in web)
    assert sorted(a["ID"] for a in run.task("info")["allocations"]) == expected
    assert run.task("lookup")["msg"] == expected
    assert run.task("exec")["stdout"] == "same"


def test_a_play_variable_defined_through_another_variable_works(emulator, ansible_runner):
    run = ansible_runner.playbook(play(
        debug("lookup", "{{ query('nomadops.nomad.nomad_alloc', job='web') | length }}"),
        {"name": "info", INFO: {"job": "web"}},
        vars={"nomad_addr": emulator.address, "ansible_nomad_address": "{{ nomad_addr }}"},
    ), env={"NOMAD_ADDR": closed_address()}).assert_ok()
    assert run.task("lookup")["msg"] == 3
    assert run.task("info")["count"] == 3


def test_the_ini_section_sits_below_variables_and_above_nomad_addr(emulator, ansible_runner, tmp_path):
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[nomadops_nomad]\naddress = {emulator.address}\nnamespace = prod\n")
    run = ansible_runner.playbook(play(
        debug("lookup", "{{ query('nomadops.nomad.nomad_alloc', job='cache') | length }}"),
        {"name": "info", INFO: {"job": "cache"}},
        {"name": "exec", EXEC: {"id": "{{ query('nomadops.nomad.nomad_alloc', job='cache')[0].ID }}", "command": "echo ini"}},
        {"name": "variable wins", INFO: {"job": "web"}, "vars": {"ansible_nomad_namespace": "default"}},
    ), env={"NOMAD_ADDR": closed_address(), "NOMAD_NAMESPACE": "default", "ANSIBLE_CONFIG": str(config)}).assert_ok()
    assert run.task("lookup")["msg"] == 2
    assert run.task("info")["count"] == 2
    assert run.task("exec")["stdout"] == "ini"
    assert run.task("variable wins")["count"] == 3


def test_a_module_defaults_http_timeout_does_not_cut_a_command_short(emulator, ansible_runner):
    web = running_allocations(emulator, "web")[0]
    run = ansible_runner.playbook(play(
        {"name": "slow command", EXEC: {"id": web["ID"], "task": "server", "argv": ["/bin/sh", "-c", "sleep 3; echo done"]}},
        module_defaults={"group/nomadops.nomad.nomad": {"timeout": 1}},
    )).assert_ok()
    result = run.task("slow command")
    assert result["stdout"] == "done" and result["rc"] == 0


def test_a_leftover_timeout_meant_as_the_deadline_is_explained(emulator, ansible_runner):
    web = running_allocations(emulator, "web")[0]
    run = ansible_runner.playbook(play(
        {"name": "old deadline", EXEC: {"id": web["ID"], "task": "server", "command": "true", "timeout": 600}},
    )).assert_ok()
    assert any("timeout (600 s) is the limit of each HTTP request" in warning
               for warning in run.task("old deadline").get("warnings", []))


def test_a_wrong_allocation_id_names_the_address(emulator, ansible_runner):
    run = ansible_runner.playbook(play(
        {"name": "exec", EXEC: {"id": "3490", "command": "true"}, "ignore_errors": True},
        {"name": "info", INFO: {"id": ["3490"]}, "ignore_errors": True},
    )).assert_ok()
    for name in ("exec", "info"):
        result = run.task(name)
        assert result["msg"].startswith(f'No allocation(s) with prefix or id "3490" found in namespace "default" at {emulator.address}')
        assert result["address"] == emulator.address


def test_exec_output_lines_can_be_left_out(emulator, ansible_runner):
    web = running_allocations(emulator, "web")[0]
    run = ansible_runner.playbook(play(
        {"name": "no lines", EXEC: {"id": web["ID"], "task": "server", "command": "echo a", "output_lines": False}},
    )).assert_ok()
    result = run.task("no lines")
    assert result["stdout"] == "a" and result["stdout_lines"] == [] and result["stderr_lines"] == []


def test_a_token_from_a_play_variable_is_never_printed_at_vvvv(start_emulator, ansible_runner):
    acl = start_emulator("acl.yml")
    run = ansible_runner.playbook(play(
        {"name": "info", INFO: {"job": "web"}, "register": "info"},
        debug("lookup", "{{ query('nomadops.nomad.nomad_alloc', job='web') | length }}"),
        {"name": "exec", EXEC: {"id": "{{ info.allocations[0].ID }}", "task": "server", "command": "echo ok"}},
        vars={"ansible_nomad_address": acl.address, "nomad_token": MANAGEMENT_TOKEN,
              "ansible_nomad_token": "{{ nomad_token }}"},
    ), verbosity=4, env={"NOMAD_ADDR": closed_address()}).assert_ok()
    assert run.task("info")["count"] >= 1 and run.task("exec")["stdout"] == "ok"
    assert MANAGEMENT_TOKEN not in run.output
    assert MANAGEMENT_TOKEN.replace("-", "") not in run.output


def test_the_task_environment_reaches_controller_side_actions_below_play_variables(start_emulator, ansible_runner):
    """The exec action reads NOMAD_* of `environment:` as a module would. (A module's own environment is printed by
    ansible-core at -vvv with its command line, which is why the info task gets the token from variables.)"""
    acl = start_emulator("acl.yml")
    nomad_env = {"NOMAD_ADDR": acl.address, "NOMAD_TOKEN": "{{ nomad_token }}"}
    run = ansible_runner.playbook(play(
        {"name": "info", INFO: {"job": "web"}, "register": "info",
         "vars": {"ansible_nomad_address": acl.address, "ansible_nomad_token": "{{ nomad_token }}"}},
        {"name": "exec", EXEC: {"id": "{{ info.allocations[0].ID }}", "task": "server", "command": "echo env"},
         "environment": nomad_env},
        {"name": "variable wins", EXEC: {"id": "{{ info.allocations[0].ID }}", "command": "echo never"},
         "environment": nomad_env, "vars": {"ansible_nomad_address": closed_address()}, "ignore_errors": True},
        vars={"nomad_token": MANAGEMENT_TOKEN},
    ), verbosity=4, env={"NOMAD_ADDR": closed_address()}).assert_ok()
    assert run.task("info")["count"] >= 1 and run.task("exec")["stdout"] == "env"
    assert run.task("variable wins")["_status"] == "ignored"
    assert MANAGEMENT_TOKEN not in run.output and MANAGEMENT_TOKEN.replace("-", "") not in run.output
