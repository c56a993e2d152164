# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""`make demo`: start the Nomad API emulator on a free port, run the demo playbook against it, stop it.

The emulator is started through its command line (contract in CONTRIBUTING.md) and stopped with
SIGTERM whatever the playbook does, so its task processes never outlive the demo.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import selectors
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


def start_emulator(scenario: str) -> tuple[subprocess.Popen, str]:
    """Start the emulator on a free loopback port; return the process and its address once it is ready."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'tests.emulator', '--scenario', scenario, '--host', '127.0.0.1', '--port', '0'],
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
    environment = dict(os.environ, NOMAD_ADDR=address)
    environment.pop('NOMAD_TOKEN', None)
    environment.setdefault('ANSIBLE_COLLECTIONS_PATH', str(REPOSITORY_ROOT / 'build' / 'collections'))
    command = [str(pathlib.Path(sys.executable).with_name('ansible-playbook')), playbook] + extra_arguments
    print(f'demo: NOMAD_ADDR={address} {" ".join(command)}', flush=True)
    return subprocess.run(command, cwd=REPOSITORY_ROOT, env=environment, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenario', default='tests/emulator/scenarios/demo.yml')
    parser.add_argument('--playbook', default='playbooks/demo.yml')
    parser.add_argument('playbook_arguments', nargs='*', help='passed to ansible-playbook (after --)')
    arguments = parser.parse_args()

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
    return exit_code


if __name__ == '__main__':
    sys.exit(main())
