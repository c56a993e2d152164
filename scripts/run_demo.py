# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""`make demo`: start the Nomad API emulator on a free port, run the demo playbook against it, stop it.

`make demo-cluster` (--serve): start the emulator with the demo scenario on a fixed port (4646) and keep it
running until Ctrl-C, printing the `export` lines that let another shell run README.md's examples as written.

The emulator is started through its command line (contract in CONTRIBUTING.md) and stopped with
SIGTERM whatever the playbook does, so its task processes never outlive the demo.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import selectors
import shlex
import signal
import subprocess
import sys
import time

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent
READY_LINE = re.compile(r'^Nomad emulator listening on (https?://\S+)$')
STARTUP_TIMEOUT_SECONDS = 30.0
SHUTDOWN_TIMEOUT_SECONDS = 15.0


class EmulatorStartError(RuntimeError):
    pass


# What a shell needs to run README.md's examples against the demo cluster (the checkout's collection and
# virtual environment, the cluster's address) and to keep their output clean: ad-hoc lines and playbooks
# with `hosts: localhost` use Ansible's implicit localhost, so the warnings about having no inventory
# say nothing useful there. NOMAD_TOKEN is not set: the demo cluster has no ACLs.
QUIET_LOCALHOST = {'ANSIBLE_LOCALHOST_WARNING': 'false', 'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false'}


def shell_environment(address: str, root: str = '$PWD') -> dict:
    """The variables README.md's setup exports (with `root` the checkout; `$PWD` as printed for pasting)."""
    return dict({'PATH': f'{root}/.venv/bin:$PATH', 'ANSIBLE_COLLECTIONS_PATH': f'{root}/build/collections',
                 'NOMAD_ADDR': address}, **QUIET_LOCALHOST)


def export_lines(address: str) -> list:
    """The `export` lines for another shell started in the checkout (README.md shows the same lines)."""
    environment = shell_environment(address)
    paths = ' '.join(f'{name}="{environment[name]}"' for name in ('PATH', 'ANSIBLE_COLLECTIONS_PATH'))
    rest = ' '.join(f'{name}={value}' for name, value in environment.items()
                    if name not in ('PATH', 'ANSIBLE_COLLECTIONS_PATH'))
    return [f'export {paths}', f'export {rest}']


def start_emulator(scenario: str, port: int = 0) -> tuple[subprocess.Popen, str]:
    """Start the emulator on a loopback port (0: a free one); return the process and its address once ready."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'tests.emulator', '--scenario', scenario, '--host', '127.0.0.1', '--port', str(port)],
        cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        return process, wait_for_address(process)
    except EmulatorStartError:
        stop_emulator(process)
        raise


def wait_for_address(process: subprocess.Popen) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            if not line:
                raise EmulatorStartError(f'the emulator exited with code {process.wait()} before it was ready')
            match = READY_LINE.match(line.strip())
            if match:
                return match.group(1)
            print(f'emulator: {line.rstrip()}')
    raise EmulatorStartError(f'the emulator did not report its address within {STARTUP_TIMEOUT_SECONDS:.0f} s')


def stop_emulator(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.stdout.close()


def run_playbook(playbook: str, address: str, extra_arguments: list[str]) -> int:
    environment = dict(os.environ, NOMAD_ADDR=address, **QUIET_LOCALHOST)
    environment.pop('NOMAD_TOKEN', None)
    environment.setdefault('ANSIBLE_COLLECTIONS_PATH', str(REPOSITORY_ROOT / 'build' / 'collections'))
    command = [str(pathlib.Path(sys.executable).with_name('ansible-playbook')), playbook] + extra_arguments
    shown = ' '.join(f'{name}={shlex.quote(environment[name])}'
                     for name in ('ANSIBLE_COLLECTIONS_PATH', 'NOMAD_ADDR', *QUIET_LOCALHOST))
    print(f'demo: {shown} {shlex.join(command)}', flush=True)
    return subprocess.run(command, cwd=REPOSITORY_ROOT, env=environment, check=False).returncode


def serve(scenario: str, port: int) -> int:
    """Run the demo cluster until Ctrl-C (or SIGTERM), after printing how to use it from another shell."""
    try:
        process, address = start_emulator(scenario, port)
    except EmulatorStartError as error:
        print(f'demo-cluster: {error} (is port {port} in use? DEMO_PORT=<port> picks another)', file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lines = '\n'.join(f'  {line}' for line in export_lines(address))
    print(f'demo-cluster: the demo cluster runs at {address} (scenario {scenario}); Ctrl-C stops it.\n'
          f'In another shell, in {REPOSITORY_ROOT}, paste these lines, then run any example of README.md:\n'
          f'{lines}', flush=True)
    try:
        for line in process.stdout:
            print(f'emulator: {line.rstrip()}', flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop_emulator(process)
        print('demo-cluster: emulator stopped', flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenario', default='tests/emulator/scenarios/demo.yml')
    parser.add_argument('--playbook', default='playbooks/demo.yml')
    parser.add_argument('--serve', action='store_true', help='keep the demo cluster running, run no playbook')
    parser.add_argument('--port', type=int, default=4646, help='the port of --serve (default 4646)')
    parser.add_argument('playbook_arguments', nargs='*', help='passed to ansible-playbook (after --)')
    arguments = parser.parse_args()
    if arguments.serve:
        return serve(arguments.scenario, arguments.port)

    try:
        process, address = start_emulator(arguments.scenario)
    except EmulatorStartError as error:
        print(f'demo: {error}', file=sys.stderr)
        return 1
    print(f'demo: emulator running at {address} (scenario {arguments.scenario})', flush=True)
    try:
        exit_code = run_playbook(arguments.playbook, address, arguments.playbook_arguments)
    finally:
        stop_emulator(process)
        print('demo: emulator stopped', flush=True)
    print('demo: ' + ('playbook succeeded' if exit_code == 0 else f'playbook FAILED (exit code {exit_code})'))
    print('demo: to run it (or README.md\'s examples) again, `make demo-cluster` keeps a demo cluster running and '
          f'prints the exports for a second shell; then `ansible-playbook {arguments.playbook}` there', flush=True)
    return exit_code


if __name__ == '__main__':
    sys.exit(main())
