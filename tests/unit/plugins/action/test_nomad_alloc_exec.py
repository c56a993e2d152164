# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The exec action's module-like argument handling: validation, defaults, fallbacks, play variables, no_log."""

from __future__ import annotations

import pytest

from ansible_collections.nomadops.nomad.plugins.action.nomad_alloc_exec import ActionModule
from ansible_collections.nomadops.nomad.plugins.plugin_utils._controller_action import ActionModuleContext, _ModuleExit

ACTION = "nomadops.nomad.nomad_alloc_exec"
SECRET = "5e0c7b1a-1111-4222-8333-944455556666"


class FakeShell:
    tmpdir = "/nonexistent"


class FakeConnection:
    _shell = FakeShell()


class FakeTask:
    def __init__(self, args, check_mode=False):
        self.action = ACTION
        self.resolved_action = ACTION
        self.args = args
        self.check_mode = check_mode
        self.async_val = 0
        self.environment = {}  # post-validated: the merged `environment:` keyword


class PassThroughTemplar:
    def template(self, value):
        return value


def make_action(args, check_mode=False):
    return ActionModule(task=FakeTask(args, check_mode), connection=FakeConnection(), play_context=None,
                        loader=None, templar=PassThroughTemplar())


def finished(action, arguments):
    """The result a module-like context ends with (validation failures end it right away)."""
    with pytest.raises(_ModuleExit) as exit_:
        ActionModuleContext(action, action.argument_spec(), arguments).fail_json(msg="validated")
    return exit_.value.result


def test_defaults_of_the_exec_options():
    action = make_action({})
    params = finished(action, {"id": "ab12", "command": "true"})["invocation"]["module_args"]
    assert params["command_timeout"] == 300 and params["timeout"] == 30
    assert params["output_lines"] is True
    assert params["output_encoding"] == "text"
    assert params["stdin_add_newline"] is True and params["strip_empty_ends"] is True
    assert params["tty"] is False and params["ws_handshake"] is False
    assert params["address"] == "http://127.0.0.1:4646" and params["namespace"] == "default"


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"id": "ab12", "command": "true", "argv": ["true"]}, "parameters are mutually exclusive: command|argv"),
        ({"id": "ab12"}, "one of the following is required: command, argv"),
        ({"command": "true"}, "one of the following is required: id, job, task_group, node, client_status, filter, prefix"),
        ({"id": "ab12", "command": "true", "output_encoding": "hex"},
         "value of output_encoding must be one of: text, base64, got: hex"),
        ({"id": "ab12", "command": "true", "tty_size": {"height": 2}},
         "missing required arguments: width found in tty_size"),
    ],
)
def test_validation_failures_are_module_like(arguments, message):
    result = finished(make_action({}), arguments)
    assert result["failed"] is True and result["msg"] == message


def test_unknown_options_are_named():
    result = finished(make_action({}), {"id": "ab12", "command": "true", "shell": True})
    assert result["msg"].startswith(f"Unsupported parameters for ({ACTION}) module: shell.")


def test_token_from_the_environment_is_used_and_masked(monkeypatch):
    monkeypatch.setenv("NOMAD_TOKEN", SECRET)
    action = make_action({})
    with pytest.raises(_ModuleExit) as exit_:
        context = ActionModuleContext(action, action.argument_spec(), {"id": "ab12", "command": "true"})
        assert context.params["token"] == SECRET
        context.exit_json(changed=True, stdout=f"token={SECRET}")
    result = exit_.value.result
    assert SECRET not in repr(result)
    assert result["stdout"] == "token=********"
    assert result["invocation"]["module_args"]["token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_derived_secrets_can_be_masked_too():
    action = make_action({})
    with pytest.raises(_ModuleExit) as exit_:
        context = ActionModuleContext(action, action.argument_spec(), {"id": "ab12", "command": "true"})
        context.add_no_log_values(["hunter2", None, ""])
        context.fail_json(msg="failed with hunter2")
    assert exit_.value.result["msg"] == "failed with ********"


def test_play_variables_sit_between_task_arguments_and_the_environment(monkeypatch):
    monkeypatch.setenv("NOMAD_ADDR", "http://from-environment:4646")
    monkeypatch.setenv("NOMAD_NAMESPACE", "from-environment")
    action = make_action({})
    from_play = action.option_values_from_play({
        "ansible_nomad_address": "http://from-variable:4646",
        "ansible_nomad_token": SECRET,
        "unrelated": 1,
    })
    assert from_play == {"address": "http://from-variable:4646", "token": SECRET}
    arguments = dict(from_play, id="ab12", command="true", token="from-task")
    params = ActionModuleContext(action, action.argument_spec(), arguments).params
    assert params["address"] == "http://from-variable:4646"
    assert params["token"] == "from-task"
    assert params["namespace"] == "from-environment"


def test_run_returns_the_validation_failure_without_secrets():
    action = make_action({"id": "ab12", "command": "true", "argv": ["true"], "token": SECRET})
    result = action.run(task_vars={})
    assert result["failed"] is True
    assert result["msg"] == "parameters are mutually exclusive: command|argv"
    assert SECRET not in repr(result)


def test_missing_websocket_client_is_reported(monkeypatch):
    from ansible_collections.nomadops.nomad.plugins.action import nomad_alloc_exec

    monkeypatch.setattr(nomad_alloc_exec, "HAS_WEBSOCKET", False)
    result = make_action({"id": "ab12", "command": "true"}).run(task_vars={})
    assert result["failed"] is True
    assert "websocket-client" in result["msg"] and "\n" not in result["msg"]
