#!/usr/bin/python
# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This file only documents the module; the code runs on the controller in plugins/action/nomad_alloc_exec.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_alloc_exec
short_description: Run a command inside a task of a Nomad allocation
version_added: 0.1.0
description:
  - Runs a command inside a running task of a Nomad allocation through Nomad's exec WebSocket
    (C(/v1/client/allocation/<id>/exec)), like C(nomad alloc exec), and returns its exit code and output.
  - This is an action plugin. It runs on the controller, whatever the inventory host is, and talks to
    Nomad directly; the inventory host's connection is not used.
  - Environment variables used as fallbacks (C(NOMAD_ADDR), C(NOMAD_TOKEN), ...) are read from the
    controller's environment. The task keyword C(environment) does not change them.
  - A non-zero exit code fails the task with C(msg=non-zero return code), like M(ansible.builtin.command)
    does; use C(failed_when) to accept other exit codes. The output is returned either way.
  - The command is run directly, not through a shell. To use shell features, run the shell, for example
    O(argv=[/bin/sh, -c, "..."]).
  - With one allocation (O(id) with one entry and no other selector option) the result is RV(rc), RV(stdout),
    RV(stderr) of that command. With a selector (O(job), O(task_group), O(node), O(client_status), O(filter),
    O(prefix)) or several IDs, the command runs in every selected allocation, O(parallelism) at a time, and the
    result is RV(allocations), one entry per allocation; the task fails after all ran when any command failed,
    listing them. Finished allocations reached through the selector (not named in O(id)) are skipped.
author:
  - nomadops.nomad developers (@nomadops)
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.selector
  - nomadops.nomad.attributes
  - nomadops.nomad.attributes.action_group
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: none
    details:
      - The command is never run in check mode; ansible-core reports the task as skipped.
  diff_mode:
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
    details:
      - Runs on the controller and talks to Nomad over HTTP; the inventory host is not contacted.
options:
  parallelism:
    description:
      - How many allocations run the command at the same time, when several are selected.
    type: int
    default: 10
  task:
    description:
      - The task to run the command in.
      - When omitted, the allocation's task group must have exactly one task, which is used; otherwise
        the task fails and lists the tasks.
    type: str
  command:
    description:
      - The command to run, split into words like a POSIX shell would split it (quotes and backslashes
        work; variables, globs, pipes and redirections do not).
      - A list is refused; give a list of words as O(argv).
      - Exactly one of O(command) and O(argv) is required.
    type: str
  argv:
    description:
      - The command to run as a list of words, passed unchanged.
      - Exactly one of O(command) and O(argv) is required.
    type: list
    elements: str
  stdin:
    description:
      - Text fed to the command's standard input (encoded as UTF-8).
      - Standard input is always closed after it, so commands that read until end of input, such as C(cat),
        finish. When O(stdin) is not given, it is closed once no output has arrived for 50 ms; a command that
        exits before that gets nothing from the controller, since Nomad 1.8 and later reset the connection, and
        drop output not yet received, when input arrives after the command has exited.
    type: str
  stdin_add_newline:
    description:
      - Append a newline to O(stdin).
    type: bool
    default: true
  tty:
    description:
      - Run the command with a pseudo-terminal. Standard error is then merged into standard output,
        and line endings are those of a terminal (C(\r\n)).
    type: bool
    default: false
  tty_size:
    description:
      - Size of the pseudo-terminal. Needs O(tty=true).
    type: dict
    suboptions:
      height:
        description:
          - Rows; a positive integer.
        type: int
        required: true
      width:
        description:
          - Columns; a positive integer.
        type: int
        required: true
  command_timeout:
    description:
      - Seconds the command may run, from opening the exec session to its exit. When the time is up the
        session is dropped (Nomad then ends the command) and the task fails with
        C(command did not finish within N s).
      - Not to be confused with the connection option O(timeout), the limit of each HTTP request (for example
        the lookup of O(id)), which a C(module_defaults) group may set for every module.
      - Before version 0.2.0 this option was called C(timeout). A task that still sets O(timeout) larger than
        O(command_timeout), without O(command_timeout), gets a warning, and the timeout message says which option to raise.
    type: float
    default: 300
  max_output_bytes:
    description:
      - At most this many bytes of each of RV(stdout) and RV(stderr) are kept on the controller, in memory and in the
        result; they are the end of the output. When a command wrote more, its beginning is dropped and RV(truncated)
        is V(true). A command, or a broken endpoint, that sends output without end cannot exhaust the controller's memory.
      - For more, write the output to a file in the allocation and copy it with M(nomadops.nomad.nomad_alloc_fetch).
    type: int
    default: 134217728
  output_lines:
    description:
      - Also return the output split into lines in RV(stdout_lines) and RV(stderr_lines) (with
        O(output_encoding=text)).
      - Set to V(false) for commands with large output that is used as text only, so that the result does not
        carry the output twice; RV(stdout_lines) and RV(stderr_lines) are then empty lists.
    type: bool
    default: true
  output_encoding:
    description:
      - How RV(stdout) and RV(stderr) are returned.
      - V(text) decodes the bytes as UTF-8, replacing invalid sequences with U+FFFD, and also returns
        RV(stdout_lines) and RV(stderr_lines) unless O(output_lines=false).
      - V(base64) returns the exact bytes, base64 encoded, in RV(stdout) and RV(stderr) (decode them with
        the P(ansible.builtin.b64decode#filter) filter); O(strip_empty_ends) is then ignored and
        RV(stdout_lines) and RV(stderr_lines) are empty lists.
    type: str
    choices: [text, base64]
    default: text
  strip_empty_ends:
    description:
      - Remove trailing newlines (empty lines) from RV(stdout) and RV(stderr), like M(ansible.builtin.command).
    type: bool
    default: true
  ws_handshake:
    description:
      - >-
        Send the token in the first WebSocket message (C({"version": 1, "auth_token": ...})) instead of the
        C(X-Nomad-Token) header of the upgrade request, as Nomad's web UI does. Useful behind proxies that
        drop headers.
    type: bool
    default: false
notes:
  - Nomad needs the C(alloc-exec) capability on the allocation's namespace, and also C(alloc-node-exec)
    for drivers without filesystem isolation (C(raw_exec)). The action first looks the allocation up
    (to resolve O(id) and check O(task)), which needs C(read-job) too.
  - The connection keeps itself alive with a heartbeat message every 10 seconds.
  - >-
    If the server closes the session before the command reported its exit code, the task fails with
    the close code and reason (for example C(close code 1008: task "web" is not running.)); Nomad 1.5
    and 1.6 sometimes lose the reason.
  - The token never appears in the returned values or in the output, at any verbosity.
  - >-
    Like every module and the P(nomadops.nomad.nomad_alloc#lookup) lookup, this action also takes the connection
    options from the Ansible variables C(ansible_nomad_<option>) and the C([nomadops_nomad]) section of
    C(ansible.cfg), in the precedence the connection options describe. So one play reads and acts on one cluster.
  - Errors that name no allocation the server knows, and connection errors, name the address that was asked.
requirements:
  # requests comes with the nomadops.nomad.connection fragment; listing it here too showed it twice.
  - websocket-client (Python library, on the controller, which runs the exec session)
seealso:
  - module: ansible.builtin.command
  - name: Nomad alloc exec command
    description: The Nomad CLI command this module mirrors.
    link: https://developer.hashicorp.com/nomad/docs/commands/alloc/exec
"""

EXAMPLES = r"""
- name: Read a file from the only task of an allocation
  nomadops.nomad.nomad_alloc_exec:
    id: 5a1f3c2e
    command: cat /local/config.json
  register: config

- name: Run a shell pipeline in a named task
  nomadops.nomad.nomad_alloc_exec:
    id: "{{ alloc_id }}"
    task: server
    argv: [/bin/sh, -c, "ps aux | grep -c worker"]

- name: Feed standard input and accept exit code 1
  nomadops.nomad.nomad_alloc_exec:
    id: "{{ alloc_id }}"
    command: grep -q ready
    stdin: "{{ status_text }}"
  register: ready
  failed_when: ready.rc not in [0, 1]

- name: Copy binary data out of a task, byte for byte
  nomadops.nomad.nomad_alloc_exec:
    id: "{{ alloc_id }}"
    command: cat /alloc/data/dump.bin
    output_encoding: base64
  register: dump

- name: Save it on the controller
  ansible.builtin.copy:
    content: "{{ dump.stdout | b64decode }}"
    dest: /tmp/dump.bin
    mode: "0600"
  delegate_to: localhost

- name: Use a terminal of a given size and authenticate in the first message
  nomadops.nomad.nomad_alloc_exec:
    id: "{{ alloc_id }}"
    command: stty size
    tty: true
    tty_size:
      height: 40
      width: 120
    ws_handshake: true
    command_timeout: 30

- name: Run a command in every running allocation of job web, three at a time
  nomadops.nomad.nomad_alloc_exec:
    job: web
    client_status: [running]
    task: server
    command: cat /local/version
    parallelism: 3
  register: versions

- name: Connection options once for every module of the collection
  module_defaults:
    group/nomadops.nomad.nomad:
      address: https://nomad.example.com:4646
      ca_cert: /etc/nomad/ca.pem
  block:
    - name: Check the service answers inside the task
      nomadops.nomad.nomad_alloc_exec:
        id: "{{ alloc_id }}"
        command: wget -qO- http://127.0.0.1:8080/health
"""

RETURN = r"""
rc:
  description: Exit code of the command (Nomad's exited frame omits it when it is 0).
  returned: when the command ran to its end
  type: int
  sample: 0
stdout:
  description:
    - Standard output of the command (everything, when O(tty=true)).
    - With O(output_encoding=base64), the exact bytes, base64 encoded.
    - When the session failed (timeout, connection closed), the output received until then.
  returned: when the command ran to its end, or produced output before the session failed
  type: str
  sample: hello
stderr:
  description:
    - Standard error of the command (empty when O(tty=true)).
    - With O(output_encoding=base64), the exact bytes, base64 encoded.
    - When the session failed (timeout, connection closed), the output received until then.
  returned: when the command ran to its end, or produced output before the session failed
  type: str
  sample: ""
truncated:
  description: Whether RV(stdout) or RV(stderr) lost its beginning because the command wrote more than O(max_output_bytes).
  returned: when RV(stdout) is returned
  type: bool
  sample: false
stdout_lines:
  description: RV(stdout) split into lines; empty with O(output_encoding=base64) or O(output_lines=false).
  returned: when RV(stdout) is returned
  type: list
  elements: str
  sample: [hello]
stderr_lines:
  description: RV(stderr) split into lines; empty with O(output_encoding=base64) or O(output_lines=false).
  returned: when RV(stderr) is returned
  type: list
  elements: str
  sample: []
allocations:
  description:
    - One entry per selected allocation, in Nomad's list order, when the command ran in a selection (see the description).
    - Each has C(ID), C(Name), C(task), C(failed), and C(rc), C(stdout), C(stderr), C(truncated) (and C(stdout_lines),
      C(stderr_lines) as at the top level); C(msg) says why a failed entry failed; skipped finished allocations have C(skipped=true)
      and C(msg).
  returned: when the command ran in a selection of allocations
  type: list
  elements: dict
  sample:
    - ID: 5a1f3c2e-8a0b-4c51-9d7e-0e2f6a4b8c11
      Name: web.frontend[0]
      task: server
      failed: false
      rc: 0
      stdout: ok
      stderr: ""
cmd:
  description: The argv that was run.
  returned: when the command ran to its end
  type: list
  elements: str
  sample: [cat, /local/config.json]
allocation_id:
  description: Full ID of the allocation the command ran in.
  returned: when the command ran to its end
  type: str
  sample: 5a1f3c2e-8a0b-4c51-9d7e-0e2f6a4b8c11
task:
  description: The task the command ran in.
  returned: when the command ran to its end
  type: str
  sample: server
"""
