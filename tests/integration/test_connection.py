# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomadops.nomad.nomad_exec: real ansible-playbook runs whose hosts are tasks of emulator allocations."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import AnsibleRunner

CONNECTION = "nomadops.nomad.nomad_exec"
EMULATOR_SCENARIO = "connection.yml"
PYTHON = sys.executable
ACL_EXEC_TOKEN = "00000000-0000-4000-8000-000000000004"
ACL_NO_NODE_EXEC_TOKEN = "00000000-0000-4000-8000-000000000005"
ACL_READ_ONLY_TOKEN = "00000000-0000-4000-8000-000000000002"


# ------------------------------------------------------------------------------------------- helpers
def allocations(emulator, job):
    return sorted((a for a in emulator.allocations("*") if a["JobID"] == job), key=lambda a: a["Name"])


def host_line(name, alloc_id, **variables):
    # Quoted: INI inventory values are Python literals, so a prefix such as 00 would arrive as the integer 0.
    settings = dict(ansible_connection=CONNECTION, ansible_nomad_alloc_id=f'"{alloc_id}"',
                    ansible_python_interpreter=PYTHON, **variables)
    return name + " " + " ".join(f"{key}={value}" for key, value in settings.items())


def write_inventory(path: Path, groups: dict) -> Path:
    lines = []
    for group, hosts in groups.items():
        lines.append(f"[{group}]")
        lines.extend(hosts)
    path.write_text("\n".join(lines) + "\n")
    return path


def host_play(hosts, *tasks, **options):
    return [dict(hosts=hosts, gather_facts=False, tasks=list(tasks), **options)]


def result_of(run, task, host):
    for entry in reversed(run.results):
        if entry["task"] == task and entry["host"] == host:
            return dict(entry["result"], _status=entry["status"])
    raise AssertionError(f"no result of {task!r} on {host}: {run.statuses()}\n{run.output}")


def assert_one_line(message, *fragments):
    assert "\n" not in message and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def task_dir(emulator, alloc_id, task):
    return Path(emulator.control.tasks(alloc_id)[task]["task_dir"])


def part_files(directory: Path):
    return [path.name for path in directory.rglob("*nomad_exec_part")]


@pytest.fixture(scope="module")
def hosts(emulator):
    apps = allocations(emulator, "app")
    duo = allocations(emulator, "duo")[0]
    return {
        "apps": [a["ID"] for a in apps],
        "app0": apps[0]["ID"],
        "duo": duo["ID"],
        "cache": allocations(emulator, "cache")[0]["ID"],
        "once": allocations(emulator, "once")[0]["ID"],
    }


@pytest.fixture(scope="module")
def runner(emulator, hosts, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("connection")
    runner = AnsibleRunner(emulator.address, workdir)
    write_inventory(workdir / "hosts.ini", {
        "apps": [host_line(f"app{index}", alloc_id) for index, alloc_id in enumerate(hosts["apps"])],
        "duo": [host_line("duo_web", hosts["duo"], ansible_nomad_task="web"),
                host_line("duo_worker", hosts["duo"], ansible_nomad_task="worker"),
                host_line("duo_no_task", hosts["duo"])],
        "others": [host_line("short", hosts["app0"][:8]),
                   host_line("cache", hosts["cache"], ansible_nomad_namespace="prod"),
                   host_line("cache_wrong_namespace", hosts["cache"]),
                   host_line("finished", hosts["once"]),
                   host_line("unknown", "0123abcd-0000-4000-8000-000000000000"),
                   host_line("typo", "zz12")],
    })
    runner.inventory = workdir / "hosts.ini"
    (workdir / "random.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    (workdir / "empty").write_bytes(b"")
    (workdir / "app.conf.j2").write_text("name={{ inventory_hostname }}\nport={{ 8000 + 80 }}\n")
    return runner


def playbook(runner, plays, *args, **options):
    return runner.playbook(plays, args=("-i", str(runner.inventory)) + tuple(args), **options)


# ------------------------------------------------------------------------------------------- commands
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_ping_command_shell_and_raw(runner, hosts, emulator, pipelining):
    directory = task_dir(emulator, hosts["app0"], "main")
    run = playbook(runner, host_play(
        "app0",
        {"name": "ping", "ansible.builtin.ping": {}},
        {"name": "command", "ansible.builtin.command": {"argv": ["printf", "%s|", "a b", "$HOME"]}},
        {"name": "shell", "ansible.builtin.shell": "echo out; echo err >&2; echo $NOMAD_ALLOC_ID; pwd; exit 3",
         "ignore_errors": True},
        {"name": "raw", "ansible.builtin.raw": "printf 'no python \\001\\n'; echo raw-err >&2"},
        {"name": "stdin", "ansible.builtin.command": {"cmd": "cat", "stdin": "line1\nline2"}},
        vars={"ansible_pipelining": pipelining},
    ), verbosity=3).assert_ok()
    assert result_of(run, "ping", "app0")["ping"] == "pong"
    # The command module expands $HOME itself: the emulator's exec puts HOME in the task directory.
    assert result_of(run, "command", "app0")["stdout"] == f"a b|{directory}|"
    shell = result_of(run, "shell", "app0")
    assert shell["_status"] == "ignored" and shell["rc"] == 3
    assert shell["stdout_lines"][:2] == ["out", hosts["app0"]] and shell["stderr"] == "err"
    assert shell["stdout_lines"][2] == str(directory)
    raw = result_of(run, "raw", "app0")
    assert raw["rc"] == 0 and raw["stdout"] == "no python \x01\n" and raw["stderr"] == "raw-err\n"
    assert result_of(run, "stdin", "app0")["stdout_lines"] == ["line1", "line2"]
    exec_lines = [line for line in run.output.splitlines() if "EXEC /bin/sh -c" in line]
    uploads = [line for line in run.output.splitlines() if line.startswith(f"<{hosts['app0']}> PUT ")]
    if pipelining:
        assert not uploads and any("bytes on stdin" in line for line in exec_lines)
    else:
        assert uploads, run.output


def test_ten_allocations_with_forks_10(runner, hosts):
    run = playbook(runner, host_play(
        "apps", {"name": "who", "ansible.builtin.command": "printenv NOMAD_ALLOC_ID"},
        vars={"ansible_pipelining": True},
    ), "--forks", "10").assert_ok()
    for index, alloc_id in enumerate(hosts["apps"]):
        assert result_of(run, "who", f"app{index}")["stdout"] == alloc_id


def test_two_task_allocation_and_short_id(runner, hosts):
    run = playbook(runner, host_play(
        "duo:short",
        {"name": "task name", "ansible.builtin.command": "printenv NOMAD_TASK_NAME"},
        vars={"ansible_pipelining": True},
    ))
    assert run.rc == 4, run.output   # duo_no_task is unreachable
    assert result_of(run, "task name", "duo_web")["stdout"] == "web"
    assert result_of(run, "task name", "duo_worker")["stdout"] == "worker"
    assert result_of(run, "task name", "short")["stdout"] == "main"
    missing = result_of(run, "task name", "duo_no_task")
    assert missing["_status"] == "unreachable"
    assert_one_line(missing["msg"], hosts["duo"][:8], "several tasks (web, worker)", "set task")


def test_delegate_to_with_ansible_connection(runner, hosts, emulator):
    run = playbook(runner, [dict(hosts="localhost", gather_facts=False, tasks=[{
        "name": "delegated", "ansible.builtin.command": "printenv NOMAD_TASK_NAME NOMAD_NAMESPACE",
        "delegate_to": hosts["cache"][:6],
        "vars": {"ansible_connection": CONNECTION, "ansible_nomad_namespace": "*",
                 "ansible_python_interpreter": PYTHON},
    }])]).assert_ok()
    assert result_of(run, "delegated", "localhost")["stdout_lines"] == ["redis", "prod"]


def test_command_timeout_fails_the_task_with_one_line(runner, hosts):
    run = playbook(runner, host_play(
        "app0",
        {"name": "slow", "ansible.builtin.raw": "sleep 5", "ignore_errors": True,
         "vars": {"ansible_nomad_command_timeout": 1}},
        {"name": "negative", "ansible.builtin.raw": "true", "ignore_errors": True,
         "vars": {"ansible_nomad_command_timeout": -2}},
        {"name": "not a number", "ansible.builtin.raw": "true", "ignore_errors": True,
         "vars": {"ansible_nomad_command_timeout": "soon"}},
    )).assert_ok()
    assert_one_line(result_of(run, "slow", "app0")["msg"], hosts["app0"][:8], "did not finish within 1 s")
    assert_one_line(result_of(run, "negative", "app0")["msg"], "command_timeout must be 0")
    assert_one_line(result_of(run, "not a number", "app0")["msg"], "command_timeout", "soon")


# ------------------------------------------------------------------------------------------- files
def test_copy_template_fetch_lineinfile_stat(runner, hosts, emulator):
    directory = task_dir(emulator, hosts["app0"], "main")
    local = runner.workdir
    fetched = local / "fetched.bin"
    conf = f"{directory}/local/app.conf"
    tasks = [
        {"name": "local dir", "ansible.builtin.file": {"path": f"{directory}/local", "state": "directory"}},
        {"name": "copy binary", "ansible.builtin.copy": {"src": str(local / "random.bin"), "dest": f"{directory}/random.bin"}},
        {"name": "copy empty", "ansible.builtin.copy": {"src": str(local / "empty"), "dest": f"{directory}/empty"}},
        {"name": "template", "ansible.builtin.template": {"src": str(local / "app.conf.j2"), "dest": conf, "mode": "0640"}},
        {"name": "line 1", "ansible.builtin.lineinfile": {"path": conf, "line": "debug=true"}},
        {"name": "line 2", "ansible.builtin.lineinfile": {"path": conf, "line": "debug=true"}},
        {"name": "stat", "ansible.builtin.stat": {"path": f"{directory}/random.bin", "checksum_algorithm": "sha256"}},
        {"name": "fetch", "ansible.builtin.fetch": {"src": f"{directory}/random.bin", "dest": str(fetched), "flat": True}},
        {"name": "copy again", "ansible.builtin.copy": {"src": str(local / "random.bin"), "dest": f"{directory}/random.bin"}},
    ]
    for pipelining in (True, False):
        fetched.unlink(missing_ok=True)
        (directory / "random.bin").unlink(missing_ok=True)
        run = playbook(runner, host_play("app0", *tasks, vars={"ansible_pipelining": pipelining})).assert_ok()
        sent = hashlib.sha256((local / "random.bin").read_bytes()).hexdigest()
        assert result_of(run, "copy binary", "app0")["_status"] == "changed"
        assert hashlib.sha256((directory / "random.bin").read_bytes()).hexdigest() == sent
        assert (directory / "empty").exists() and (directory / "empty").stat().st_size == 0
        assert (directory / "local" / "app.conf").read_text() == "name=app0\nport=8080\ndebug=true\n"
        assert oct((directory / "local" / "app.conf").stat().st_mode & 0o777) == "0o640"
        assert result_of(run, "line 1", "app0")["_status"] in ("changed", "ok")
        assert result_of(run, "line 2", "app0")["_status"] == "ok"
        assert result_of(run, "stat", "app0")["stat"]["checksum"] == sent
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == sent
        assert result_of(run, "copy again", "app0")["_status"] == "ok"
        assert not part_files(directory) and not part_files(local)


def test_bad_file_transfers_fail_with_one_line(runner, hosts, emulator):
    directory = task_dir(emulator, hosts["app0"], "main")
    run = playbook(runner, host_play(
        "app0",
        {"name": "no such directory", "ansible.builtin.copy": {
            "src": str(runner.workdir / "random.bin"), "dest": f"{directory}/missing/dir/file.bin"},
         "ignore_errors": True},
        {"name": "read-only", "ansible.builtin.copy": {"content": "x", "dest": "/proc/nomad_exec_test"},
         "ignore_errors": True},
        {"name": "missing source", "ansible.builtin.fetch": {
            "src": f"{directory}/nope.txt", "dest": str(runner.workdir / "nope.txt"), "flat": True},
         "ignore_errors": True},
        vars={"ansible_pipelining": True},
    )).assert_ok()
    for name in ("no such directory", "read-only", "missing source"):
        result = result_of(run, name, "app0")
        assert result["_status"] == "ignored", result
        assert_one_line(result["msg"])
    assert not (directory / "missing").exists()
    assert not (runner.workdir / "nope.txt").exists()
    assert not part_files(directory) and not part_files(runner.workdir)


def test_script_is_uploaded_and_run(runner, hosts):
    script = runner.workdir / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $NOMAD_TASK_NAME\n")
    run = playbook(runner, host_play("app0", {"name": "script", "ansible.builtin.script": str(script)})).assert_ok()
    assert result_of(run, "script", "app0")["stdout"] == "hello from main\n"


# ------------------------------------------------------------------------------------------- become
def fake_sudo(directory: Path) -> Path:
    """A stand-in for sudo that really prompts on stderr and reads the password from stdin, as sudo -S does."""
    path = directory / "fake-sudo"
    path.write_text(
        "#!/bin/sh\n"
        "prompt=Password:\n"
        "while [ $# -gt 0 ]; do case $1 in -p) prompt=$2; shift 2;; -u) shift 2;; -*) shift;; *) break;; esac; done\n"
        "printf '%s' \"$prompt\" >&2\n"
        "IFS= read -r answer\n"
        "if [ \"$answer\" != opensesame ]; then echo 'Sorry, try again.' >&2; exit 1; fi\n"
        "exec \"$@\"\n"
    )
    path.chmod(0o755)
    return path


def test_become(runner, hosts):
    sudo = fake_sudo(runner.workdir)
    passwords = runner.workdir / "passwords.yml"
    passwords.write_text("good: opensesame\nbad: wrong-pass\n")
    assert os.getuid() == 0, "the emulator's tasks run as root here: su needs no password"
    run = playbook(runner, host_play(
        "app0",
        {"name": "su root", "ansible.builtin.command": "id -un", "become": True, "become_method": "su"},
        {"name": "su nobody raw", "ansible.builtin.raw": "id -un", "become": True, "become_method": "su",
         "become_user": "nobody", "become_flags": "-s /bin/sh"},
        {"name": "sudo prompt", "ansible.builtin.command": "printenv NOMAD_TASK_NAME", "become": True,
         "become_method": "sudo", "vars": {"ansible_become_password": "{{ good }}", "ansible_become_exe": str(sudo)}},
        {"name": "sudo wrong password", "ansible.builtin.command": "id", "become": True, "become_method": "sudo",
         "vars": {"ansible_become_password": "{{ bad }}", "ansible_become_exe": str(sudo)}, "ignore_errors": True},
        {"name": "sudo missing", "ansible.builtin.command": "id", "become": True, "become_method": "sudo",
         "vars": {"ansible_become_password": "{{ good }}", "ansible_become_exe": "/nonexistent/sudo"},
         "ignore_errors": True},
    ), "-e", f"@{passwords}", verbosity=4).assert_ok()
    assert result_of(run, "su root", "app0")["stdout"] == "root"
    assert result_of(run, "su nobody raw", "app0")["stdout"].strip() == "nobody"
    assert result_of(run, "sudo prompt", "app0")["stdout"] == "main"
    wrong = result_of(run, "sudo wrong password", "app0")
    assert wrong["_status"] == "ignored"
    assert_one_line(wrong["msg"], "incorrect sudo password")
    missing = result_of(run, "sudo missing", "app0")
    assert missing["_status"] == "ignored"
    assert_one_line(missing["msg"], "become method sudo ended", "/nonexistent/sudo")
    assert "opensesame" not in run.output and "wrong-pass" not in run.output


# ------------------------------------------------------------------------------------------- unreachable
def test_unreachable_targets_say_which_and_why(runner, hosts, emulator):
    victim = hosts["apps"][-1]
    response = requests.post(f"{emulator.address}/v1/allocation/{victim}/stop", timeout=30)
    assert response.status_code == 200, response.text
    write_inventory(runner.workdir / "gone.ini", {"gone": [host_line("stopped", victim)]})
    run = playbook(runner, host_play(
        "finished:unknown:typo:cache_wrong_namespace:cache",
        {"name": "probe", "ansible.builtin.raw": "true"},
    ))
    assert run.rc == 4, run.output
    expectations = {
        "finished": (hosts["once"][:8], "is complete"),
        "unknown": ("0123abcd-0000-4000-8000-000000000000", "No allocation"),
        "typo": ("zz12",),
        "cache_wrong_namespace": ("No allocation", 'namespace "default"'),
    }
    for host, fragments in expectations.items():
        result = result_of(run, "probe", host)
        assert result["_status"] == "unreachable", result
        assert_one_line(result["msg"], "nomad_exec", *fragments)
    assert result_of(run, "probe", "cache")["_status"] == "changed"
    stopped = runner.playbook(host_play("stopped", {"name": "probe", "ansible.builtin.raw": "true"}),
                              args=("-i", str(runner.workdir / "gone.ini")))
    result = result_of(stopped, "probe", "stopped")
    assert result["_status"] == "unreachable", result
    assert_one_line(result["msg"], victim[:8])


# ------------------------------------------------------------------------------------------- ACL and secrets
def test_token_is_never_printed_and_refusals_are_unreachable(acl_emulator, tmp_path):
    web = allocations(acl_emulator, "web")[0]["ID"]
    runner = AnsibleRunner(acl_emulator.address, tmp_path)
    write_inventory(tmp_path / "acl.ini", {"acl": [
        host_line("allowed", web, ansible_nomad_token=ACL_EXEC_TOKEN),
        host_line("no_node_exec", web, ansible_nomad_token=ACL_NO_NODE_EXEC_TOKEN),
        host_line("read_only", web, ansible_nomad_token=ACL_READ_ONLY_TOKEN),
    ]})
    (tmp_path / "file.txt").write_text("payload\n")
    run = runner.playbook(host_play(
        "acl",
        {"name": "command", "ansible.builtin.command": "echo ok"},
        {"name": "copy", "ansible.builtin.copy": {"src": str(tmp_path / "file.txt"), "dest": "file.txt"}},
    ), verbosity=4, args=("-i", str(tmp_path / "acl.ini")))
    assert run.rc == 4, run.output
    assert result_of(run, "command", "allowed")["stdout"] == "ok"
    assert result_of(run, "copy", "allowed")["_status"] == "changed"
    for host in ("no_node_exec", "read_only"):
        refused = result_of(run, "command", host)
        assert refused["_status"] == "unreachable"
        assert_one_line(refused["msg"], web[:8], "Permission denied", "alloc-node-exec")
    for token in (ACL_EXEC_TOKEN, ACL_NO_NODE_EXEC_TOKEN, ACL_READ_ONLY_TOKEN):
        assert token not in run.output


def test_ambiguous_prefix_lists_the_matches(start_emulator, tmp_path):
    crowded = start_emulator("connection.yml", virtual=300)
    ids = [a["ID"] for a in crowded.allocations("*")]
    prefix = next(two for two in sorted({i[:2] for i in ids}) if sum(i.startswith(two) for i in ids) > 1)
    runner = AnsibleRunner(crowded.address, tmp_path)
    write_inventory(tmp_path / "crowded.ini", {"crowded": [host_line("ambiguous", prefix)]})
    run = runner.playbook(host_play("ambiguous", {"name": "probe", "ansible.builtin.raw": "true"}),
                          args=("-i", str(tmp_path / "crowded.ini")))
    result = result_of(run, "probe", "ambiguous")
    assert result["_status"] == "unreachable", result
    assert_one_line(result["msg"], f'Prefix "{prefix}" matched', "give more characters", crowded.address)
