# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection plugin: every Ansible module inside a task of a Nomad allocation, over the exec WebSocket."""

from __future__ import annotations

DOCUMENTATION = r"""
name: nomad_exec
short_description: Run Ansible tasks inside a task of a Nomad allocation
version_added: 0.1.0
author:
  - nomadops.nomad developers (@nomadops)
description:
  - Runs commands, modules, V(raw), and file transfers inside one task of a Nomad allocation through Nomad's
    exec WebSocket (C(/v1/client/allocation/:id/exec)), the API behind C(nomad alloc exec).
  - Every command runs as C(/bin/sh -c <command>) in the task, with the task's environment and working directory.
    The output is returned byte for byte; a session that ends before Nomad reports the exit code is an error,
    never a success with cut output.
  - Files (O(ansible.builtin.copy#module:src), templates, modules when pipelining is off) are streamed over the
    command's standard input in bounded frames, written to a temporary name next to the destination, checked
    (size, and the CRC of POSIX C(cksum) when the task has it) and only then moved into place. Fetched files
    are streamed to a temporary file on the controller, checked the same way and moved into place. Memory use
    does not grow with the file size.
  - The allocation is resolved once per connection (a full ID or a unique prefix, like C(nomad alloc exec)); each
    command opens its own exec WebSocket, because Nomad runs one command per session.
  - The inventory plugin C(nomadops.nomad.nomad_allocs) sets this connection and its variables for
    every allocation it lists.
requirements:
  - websocket-client (Python library, on the controller)
  - C(/bin/sh) in the task, and C(cat), C(wc) and C(mv) for file transfers. Python in the task only for modules
    other than V(raw).
extends_documentation_fragment:
  - nomadops.nomad.connection
  - nomadops.nomad.connection.plugins
  - ansible.builtin.connection_pipelining
options:
  alloc_id:
    description:
      - The allocation to run in, as a full ID or a unique prefix of at least two characters, resolved in
        O(namespace) (V(*) searches every namespace).
      - Taken from C(ansible_nomad_alloc_id), else C(ansible_host), else the inventory host name.
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_nomad_alloc_id
  task:
    description:
      - The task of the allocation to run in.
      - Defaults to the allocation's only task; an allocation with several tasks needs it, and the error names them.
    type: str
    vars:
      - name: ansible_nomad_task
  command_timeout:
    description:
      - Seconds a command or file transfer may take before it is aborted and the task fails. The default, one hour,
        keeps a hung command or a broken endpoint from holding a task forever; V(0) means no limit (the task keyword
        C(timeout) still applies).
      - Not the same as O(timeout), which limits each HTTP request and the opening of each exec session.
    type: float
    default: 3600
    vars:
      - name: ansible_nomad_command_timeout
    ini:
      - section: nomadops_nomad
        key: command_timeout
  become_success_timeout:
    description:
      - Seconds to wait, when a become method expects a password prompt, for the prompt or for the become success
        marker before the task fails.
    type: float
    default: 10
    vars:
      - name: ansible_nomad_become_success_timeout
notes:
  - >-
    Connection option precedence for this plugin, highest first: the C(ansible_nomad_<option>) variables
    (inventory, play or host variables), then the C([nomadops_nomad]) section of C(ansible.cfg), then the
    C(NOMAD_*) environment variables of the controller, then the defaults.
  - The ACL token needs C(alloc-exec) in the allocation's namespace, plus C(alloc-node-exec) for drivers
    without filesystem isolation such as C(raw_exec); it also needs C(read-job) to resolve the allocation.
    A refused exec, an allocation that is gone or not running, and an unknown task make the host UNREACHABLE
    with one line naming the allocation, the task and the reason.
  - >-
    The token never goes into the allocation: a module of this collection run on a host of this connection
    without C(delegate_to) would run inside the allocation, so the C(ansible_nomad_*) variables and the
    C([nomadops_nomad]) section fill none of its options there, and a token, O(http_auth) or password in
    O(address) from them or from the task fails the task before anything is sent. Run such tasks with
    C(delegate_to: localhost); inside the allocation a module may still use the allocation's own E(NOMAD_TOKEN).
  - Exec never follows a redirect of the WebSocket upgrade; a 3xx answer fails with one line.
  - The command runs as the task's user; C(ansible_user) is ignored (Nomad's exec API has no user parameter).
    C(become) works with methods that need no password (V(sudo) with NOPASSWD, V(su) from root); when the
    method asks for a password (for example V(sudo) with O(ansible.builtin.sudo#become:become_pass)), the prompt
    is answered on standard input. V(su) with a password needs a terminal and fails with its own message.
  - With pipelining on (C(ansible_pipelining=true) or C(ANSIBLE_PIPELINING=true)) a module costs one exec
    session instead of several (temporary directory, transfer, run, clean-up); turn it on unless a become method
    without pipelining support (V(su)) is used.
  - Relative remote paths are relative to the task's working directory (the task directory). With the
    C(exec) driver the task directory is C(/) inside the task's chroot and its C(local/) directory is C(/local);
    with C(raw_exec) use C(NOMAD_TASK_DIR) (see the examples).
"""

EXAMPLES = r"""
# Static inventory (INI): the host name is only a label; the allocation is ansible_nomad_alloc_id.
#   [web]
#   web-0 ansible_connection=nomadops.nomad.nomad_exec ansible_nomad_alloc_id=5f1e2b3c ansible_nomad_task=server
#         ansible_nomad_address=https://nomad.example.com:4646 ansible_python_interpreter=/usr/bin/python3

# Dynamic inventory: nomadops.nomad.nomad_allocs sets ansible_connection, ansible_nomad_alloc_id,
# ansible_nomad_task and the address, namespace, region and TLS file paths as host variables.
# web.nomad_allocs.yml:
#   plugin: nomadops.nomad.nomad_allocs
#   address: https://nomad.example.com:4646
#   job: web
#   task: server
# then: ansible-playbook -i web.nomad_allocs.yml site.yml   (the token comes from NOMAD_TOKEN)

- name: Configure the web tasks
  hosts: nomad_job_web
  gather_facts: false
  vars:
    ansible_pipelining: true
  tasks:
    - name: Check that Python works in the task
      ansible.builtin.ping:

    - name: "Render the configuration into the task's local directory (exec driver: /local)"
      ansible.builtin.template:
        src: app.conf.j2
        dest: /local/app.conf
        mode: "0644"

    - name: The same for raw_exec tasks, whose task directory is a host path
      ansible.builtin.template:
        src: app.conf.j2
        dest: "{{ ansible_env.NOMAD_TASK_DIR }}/app.conf"
        mode: "0644"
      when: ansible_env is defined

    - name: Tell the task to reload
      ansible.builtin.command: kill -HUP 1
      changed_when: true

- name: One command in one allocation, from a play on another host
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Show the disk usage of an allocation's task
      ansible.builtin.command: df -h /alloc
      changed_when: false
      delegate_to: 5f1e2b3c
      vars:
        ansible_connection: nomadops.nomad.nomad_exec
        ansible_nomad_task: server
        ansible_nomad_address: https://nomad.example.com:4646

- name: Tasks without Python
  hosts: nomad_job_cache
  gather_facts: false
  tasks:
    - name: Run a command with raw
      ansible.builtin.raw: redis-cli ping
      changed_when: false
"""

import os
import posixpath
import secrets
import tempfile
import threading
import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.facts import allocation_label, read_allocation
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.files import chmod_like_a_new_file
from ansible_collections.nomadops.nomad.plugins.module_utils.common.cksum import PosixCksum
from ansible_collections.nomadops.nomad.plugins.module_utils.common.client import NomadClient
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.exec import (
    HAS_WEBSOCKET,
    ExecArgumentError,
    ExecError,
    ExecRequest,
    ExecSourceError,
    ExecTimeoutError,
    check_task_runs,
    choose_task,
    file_chunks,
    one_line,
    stream_exec,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.filters import resolve_allocation_id
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id
from ansible_collections.nomadops.nomad.plugins.plugin_utils._errors import nomad_errors_as
from ansible_collections.nomadops.nomad.plugins.plugin_utils._options import plugin_connection_options

display = Display()

SHELL = "/bin/sh"
# Output kept of a transfer's helper commands (messages, never file data).
MESSAGE_LIMIT = 64 * 1024
LOCAL_READ_CHUNK = 256 * 1024
LOCAL_WRITE_BUFFER = 1024 * 1024
RUNNING_STATUSES = ("running", "pending")
PART_SUFFIX = ".nomad_exec_part"

# put_file, in the task: $1 destination, $2 temporary name next to it, $3 size, $4 cksum CRC (decimal).
# The file arrives on stdin; it gets its final name only after size and checksum matched.
PUT_SCRIPT = r"""
dest=$1 tmp=$2 size=$3 want=$4
dir=${tmp%/*}
if [ -d "$dest" ]; then echo "$dest is a directory" >&2; exit 20; fi
if [ ! -d "$dir" ]; then echo "directory $dir does not exist" >&2; exit 21; fi
if ! (: > "$tmp") 2>/dev/null; then
  echo "cannot create a file in $dir (permission denied or read-only file system)" >&2; exit 22
fi
trap 'rm -f -- "$tmp"' EXIT
if ! cat > "$tmp"; then echo "writing $tmp failed" >&2; exit 23; fi
set -- $(wc -c < "$tmp"); got=$1
if [ "$got" != "$size" ]; then echo "received $got of $size bytes" >&2; exit 24; fi
sum=
if command -v cksum >/dev/null 2>&1; then set -- $(cksum < "$tmp"); sum=$1; fi
if [ -n "$sum" ] && [ "$sum" != "$want" ]; then
  echo "CRC (cksum) of the received file differs from the sent one" >&2; exit 25
fi
mv -f -- "$tmp" "$dest" || exit 26
trap - EXIT
if [ -n "$sum" ]; then echo "verified size and CRC (cksum)"; else echo "verified size (no cksum in the task)"; fi
"""

# fetch_file, in the task: $1 source. The file on stdout, then its size and cksum CRC ("-" without cksum) on stderr.
FETCH_SCRIPT = r"""
src=$1
if [ ! -e "$src" ]; then echo "no such file: $src" >&2; exit 30; fi
if [ -d "$src" ]; then echo "$src is a directory" >&2; exit 31; fi
cat < "$src" || exit 32
set -- $(wc -c < "$src"); size=$1
sum=-
if command -v cksum >/dev/null 2>&1; then set -- $(cksum < "$src"); sum=$1; fi
echo "nomad_exec_verify $size $sum" >&2
"""
FETCH_MISSING_EXIT = 30
VERIFY_MARKER = "nomad_exec_verify"


class Target:
    """The resolved allocation and task of one connection."""

    def __init__(self, allocation: dict, task: str) -> None:
        self.allocation_id = allocation["ID"]
        self.namespace = allocation.get("Namespace")
        self.task = task
        self.label = f"allocation {short_id(self.allocation_id)} task {task}"


class BoundedBuffer:
    """Collects bytes up to a limit (messages of helper commands; never file data)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.chunks: list = []
        self.size = 0

    def write(self, data: bytes) -> None:
        if self.limit is not None and self.size >= self.limit:
            return
        self.chunks.append(data)
        self.size += len(data)

    def value(self) -> bytes:
        return b"".join(self.chunks)

    def text(self) -> str:
        return to_text(self.value(), errors="surrogate_or_replace")


class FileSink:
    """Writes output chunks to an open file as they arrive, counting them and computing their cksum CRC."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.cksum = PosixCksum()

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.cksum.update(data)


class BecomeConversation:
    """Answers a become password prompt on stdin the way community.docker's docker_api connection does:
    watch the output until the become plugin sees its success marker or its prompt; on a prompt, send the
    password; only then send the command's own input."""

    def __init__(self, become, timeout: float, session_ended: threading.Event) -> None:
        self.become = become
        self.timeout = timeout
        self.session_ended = session_ended
        self.decided = threading.Event()
        self.prompted = False
        self.succeeded = False
        self.output = b""

    def watch(self, data: bytes) -> None:
        if self.decided.is_set():
            return
        self.output += data
        if self.become.check_success(self.output):
            self.succeeded = True
            self.decided.set()
        elif self.become.check_password_prompt(self.output):
            self.prompted = True
            self.decided.set()

    def stdin(self, in_data: bytes | None):
        """The stdin source: nothing until decided, then the password (if prompted), then `in_data`."""
        deadline = time.monotonic() + self.timeout
        while not self.decided.wait(0.05):
            if self.session_ended.is_set():
                return
            if time.monotonic() > deadline:
                raise ExecTimeoutError(
                    f"timed out after {self.timeout:g} s waiting for the {self.become.name} password prompt or "
                    f"its success marker; output so far: {one_line(to_text(self.output, errors='replace'))[:200]!r}"
                )
        if self.prompted:
            password = self.become.get_option("become_pass") or ""
            yield to_bytes(password, errors="surrogate_or_strict") + b"\n"
        if in_data:
            yield in_data


class Connection(ConnectionBase):
    """Run commands and transfer files inside a Nomad allocation's task over the exec WebSocket."""

    transport = "nomadops.nomad.nomad_exec"
    has_pipelining = True
    has_tty = False

    def __init__(self, play_context, *args, **kwargs) -> None:
        super().__init__(play_context, *args, **kwargs)
        self._client = None
        self._target = None

    # -- connection and resolution -----------------------------------------------------------

    def _connect(self):
        if not HAS_WEBSOCKET:
            raise AnsibleConnectionFailure(f"nomad_exec: {missing_required_lib('websocket-client')}")
        if self._connected:
            return self
        alloc_id = self.get_option("alloc_id")
        if (self.get_option("command_timeout") or 0) < 0:
            raise AnsibleError("nomad_exec: command_timeout must be 0 (no limit) or a positive number of seconds, "
                               f"not {self.get_option('command_timeout'):g}")
        if not alloc_id:
            raise AnsibleConnectionFailure(
                "nomad_exec: no allocation given; set ansible_nomad_alloc_id (or ansible_host) to an allocation ID"
            )
        # Errors from NomadClient name the address themselves.
        prefix = f"nomad_exec: allocation {alloc_id}: "
        with nomad_errors_as(AnsibleConnectionFailure, prefix=prefix):
            options = plugin_connection_options(self)
        with nomad_errors_as(AnsibleConnectionFailure, prefix=prefix):
            self._client = NomadClient(options, pool_size=1, warn=display.warning)
            self._target = self._resolve(str(alloc_id), self.get_option("task"))
        display.vvv(
            f"ESTABLISH NOMAD EXEC CONNECTION TO {self._target.label} (namespace {self._target.namespace}) "
            f"AT {options.address}",
            host=self._host(),
        )
        self._connected = True
        return self

    def _resolve(self, alloc_id: str, task: str | None) -> Target:
        allocation = resolve_allocation_id(self._client, alloc_id, self._client.options.namespace)
        if "Job" not in allocation or "TaskStates" not in allocation:
            allocation = read_allocation(self._client, allocation)
        status = allocation.get("ClientStatus")
        if status not in RUNNING_STATUSES:
            raise AnsibleConnectionFailure(
                f"nomad_exec: allocation {allocation_label(allocation)} is {status}, nothing runs in it"
            )
        try:
            chosen = choose_task(allocation, task)
            check_task_runs(allocation, chosen)
        except ExecError as error:
            raise AnsibleConnectionFailure(f"nomad_exec: {error}") from None
        return Target(allocation, chosen)

    def _host(self) -> str:
        return str(self.get_option("alloc_id") or self._play_context.remote_addr)

    def reset(self) -> None:
        """Forget the resolved allocation and close the HTTP session; the next command resolves again."""
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._target = None
        self._connected = False

    # -- one exec session ----------------------------------------------------------------------

    def _run(self, argv: list, **session_options) -> int:
        """Exit code of `argv` in the task (stream_exec keyword arguments); exec failures as Ansible errors."""
        target = self._target
        request = ExecRequest(allocation_id=target.allocation_id, task=target.task, argv=argv,
                              namespace=target.namespace)
        deadline = self.get_option("command_timeout") or None
        try:
            return stream_exec(self._client, request, deadline=deadline, **session_options)
        except (ExecTimeoutError, ExecArgumentError, ExecSourceError) as error:  # the task fails; the host is fine
            raise AnsibleError(f"nomad_exec: {target.label}: {self._client.scrub(str(error))}") from None
        except ExecError as error:
            raise AnsibleConnectionFailure(f"nomad_exec: {target.label}: {self._client.scrub(str(error))}") from None

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        command = to_text(cmd, errors="surrogate_or_strict")
        converse = bool(sudoable and self.become and self.become.expect_prompt())
        display.vvv(
            f"EXEC {SHELL} -c {command!r}"
            + (f" with {len(in_data)} bytes on stdin" if in_data is not None else "")
            + (" answering a become prompt" if converse else ""),
            host=self._host(),
        )
        stdout, stderr = BoundedBuffer(), BoundedBuffer()
        if not converse:
            stdin = (in_data,) if in_data else None
            exit_code = self._run([SHELL, "-c", command], stdin=stdin, on_stdout=stdout.write,
                                  on_stderr=stderr.write)
            return exit_code, stdout.value(), stderr.value()
        return self._exec_with_become_prompt(command, in_data, stdout, stderr)

    def _exec_with_become_prompt(self, command, in_data, stdout, stderr):
        ended = threading.Event()
        conversation = BecomeConversation(self.become, float(self.get_option("become_success_timeout")), ended)

        def watch_stdout(data):
            stdout.write(data)
            conversation.watch(data)

        def watch_stderr(data):
            stderr.write(data)
            conversation.watch(data)

        exit_code = self._run([SHELL, "-c", command], stdin=conversation.stdin(in_data),
                              on_stdout=watch_stdout, on_stderr=watch_stderr, ended=ended)
        if not conversation.decided.is_set():
            output = one_line(to_text(stderr.value() + stdout.value(), errors="replace"))[:300]
            raise AnsibleError(
                f"nomad_exec: {self._target.label}: become method {self.become.name} ended (exit code {exit_code}) "
                f"before it asked for a password or succeeded: {output or 'no output'}"
            )
        if conversation.prompted and not conversation.succeeded and not self.become.check_success(stdout.value()):
            if self.become.check_incorrect_password(stderr.value() + stdout.value()):
                raise AnsibleError(f"nomad_exec: {self._target.label}: incorrect {self.become.name} password")
        err = self.become.strip_become_prompt(stderr.value()) if conversation.prompted else stderr.value()
        return exit_code, stdout.value(), err

    # -- file transfers ------------------------------------------------------------------------

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        size, crc = local_file_digest(in_path)
        dest = to_text(out_path)
        temporary = part_name(dest)
        display.vvv(f"PUT {in_path} TO {dest} ({size} bytes)", host=self._host())
        messages, errors = BoundedBuffer(MESSAGE_LIMIT), BoundedBuffer(MESSAGE_LIMIT)
        argv = [SHELL, "-c", PUT_SCRIPT, "nomad_exec_put", dest, temporary, str(size), str(crc)]
        try:
            exit_code = self._run(argv, stdin=file_chunks(in_path, LOCAL_READ_CHUNK),
                                  on_stdout=messages.write, on_stderr=errors.write)
        except AnsibleError:
            self._remove_quietly(temporary)
            raise
        if exit_code != 0:
            reason = one_line(errors.text()) or f"exit code {exit_code}"
            raise AnsibleError(f"nomad_exec: {self._target.label}: cannot put {dest}: {reason}")
        display.vvv(f"PUT {dest}: {one_line(messages.text())}", host=self._host())

    def _remove_quietly(self, remote_path: str) -> None:
        """Best effort after a failed transfer: the temporary file of a cut session may remain in the task."""
        try:
            self._run([SHELL, "-c", 'rm -f -- "$1"', "nomad_exec_cleanup", remote_path])
        except AnsibleError as error:
            display.vvv(f"could not remove {remote_path}: {error}", host=self._host())

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        source = to_text(in_path)
        display.vvv(f"FETCH {source} TO {out_path}", host=self._host())
        directory, name = os.path.split(os.path.abspath(out_path))
        try:
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=PART_SUFFIX)
        except OSError as error:
            raise AnsibleError(f"nomad_exec: cannot write {out_path} on the controller: {error.strerror}") from None
        try:
            with open(handle, "wb", buffering=LOCAL_WRITE_BUFFER) as stream:
                sink, errors = FileSink(stream), BoundedBuffer(MESSAGE_LIMIT)
                # The script reads no input: its stdin is never closed, so no frame of ours can reach Nomad 1.8+
                # after it closed the connection (which would reset it and drop the file's unread bytes).
                exit_code = self._run([SHELL, "-c", FETCH_SCRIPT, "nomad_exec_fetch", source], reads_stdin=False,
                                      on_stdout=sink.write, on_stderr=errors.write)
            self._check_fetched(source, exit_code, sink, errors.text())
            chmod_like_a_new_file(temporary)
            os.replace(temporary, out_path)
        except OSError as error:
            raise AnsibleError(f"nomad_exec: cannot write {out_path} on the controller: {error.strerror}") from None
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def _check_fetched(self, source: str, exit_code: int, sink: FileSink, messages: str) -> None:
        lines = messages.strip().splitlines()
        label = self._target.label
        if exit_code != 0:
            reason = one_line(messages) or f"exit code {exit_code}"
            error_class = AnsibleFileNotFound if exit_code == FETCH_MISSING_EXIT else AnsibleError
            raise error_class(f"nomad_exec: {label}: cannot fetch {source}: {reason}")
        words = lines[-1].split() if lines else []
        if len(words) != 3 or words[0] != VERIFY_MARKER:
            raise AnsibleError(f"nomad_exec: {label}: cannot fetch {source}: the task did not report its size")
        if words[1] != str(sink.cksum.size):
            raise AnsibleError(
                f"nomad_exec: {label}: cannot fetch {source}: received {sink.cksum.size} of {words[1]} bytes"
            )
        if words[2] != "-" and words[2] != str(sink.cksum.crc()):
            raise AnsibleError(
                f"nomad_exec: {label}: cannot fetch {source}: CRC (cksum) of the received file differs"
            )
        checked = "size and CRC (cksum)" if words[2] != "-" else "size (no cksum in the task)"
        display.vvv(f"FETCH {source}: verified {checked}", host=self._host())


def local_file_digest(path: str) -> tuple:
    """(size, cksum CRC) of a local file, read in chunks."""
    cksum = PosixCksum()
    try:
        for chunk in file_chunks(path, LOCAL_READ_CHUNK):
            cksum.update(chunk)
    except FileNotFoundError:
        raise AnsibleFileNotFound(f"nomad_exec: file or module does not exist: {path}") from None
    except OSError as error:
        raise AnsibleError(f"nomad_exec: cannot read {path}: {error.strerror}") from None
    return cksum.size, cksum.crc()


def part_name(remote_path: str) -> str:
    """A temporary name next to `remote_path`, unique per transfer (the move into place is atomic)."""
    directory, name = posixpath.split(remote_path)
    return posixpath.join(directory or ".", f".{name}.{secrets.token_hex(4)}{PART_SUFFIX}")
