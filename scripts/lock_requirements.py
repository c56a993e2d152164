# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write the lock files every environment of `make test` installs from (`make lock`), or compare one with what
an unlocked environment got (`make test-latest`).

`make test` never resolves requirements anew: each virtual environment installs the exact versions, direct and
transitive, of its lock file, with pip's `--require-hashes`. The lock files are resolved by uv's
`uv pip compile` for the Python and platform of the environment, from the ranges in requirements-dev.txt (and,
for ansible-test's units environment, tests/unit/requirements.txt).

Usage: lock_requirements.py                 write every lock file (needs `uv`, from .venv)
       lock_requirements.py --compare VENV  list the packages whose version in VENV differs from the lock
Standard library only, apart from the `uv` command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import test_matrix

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCKS = REPOSITORY_ROOT / 'locks'
PLATFORM = 'x86_64-unknown-linux-gnu'
# What `python -m venv` seeds: an unlocked environment keeps the seeded version when nothing asks for another,
# which says nothing about newer releases.
SEED_TOOLS = frozenset(('pip', 'setuptools', 'wheel'))
PINNED = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)', re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Lock:
    path: pathlib.Path
    python: str
    purpose: str
    hashes: bool = True


def dev_lock() -> Lock:
    return Lock(LOCKS / 'dev-py3.11.txt', '3.11', '.venv: ansible-core 2.19 and every gate tool (make venv)')


def release_lock(release: str) -> Lock:
    python = test_matrix.RELEASES[release].python
    return Lock(LOCKS / f'core-{release}-py{python}.txt', python,
                f'build/venv-{release}: ansible-core {release} and the test dependencies (scripts/test_matrix.py)')


def units_lock() -> Lock:
    return Lock(REPOSITORY_ROOT / 'tests' / 'unit' / 'constraints.txt', '3.11',
                "ansible-test units' environments on Python 3.11+ (ansible-test reads this file as constraints)",
                hashes=False)


def lock_inputs() -> dict[Lock, str]:
    """Each lock file with the requirement text it is resolved from."""
    development = test_matrix.requirement_lines(REPOSITORY_ROOT / 'requirements-dev.txt')
    inputs = {dev_lock(): '\n'.join(development) + '\n'}
    for release in test_matrix.RELEASES:
        inputs[release_lock(release)] = test_matrix.test_requirements(release)
    units = test_matrix.requirement_lines(REPOSITORY_ROOT / 'tests' / 'unit' / 'requirements.txt')
    inputs[units_lock()] = '\n'.join(units) + '\n'
    return inputs


def compile_lock(lock: Lock, requirements: str, uv: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source = pathlib.Path(scratch) / 'requirements.in'
        source.write_text(requirements, encoding='utf-8')
        command = [uv, 'pip', 'compile', '--quiet', '--no-header', '--python-version', lock.python,
                   '--output-file', str(pathlib.Path(scratch) / 'lock.txt'), str(source)]
        if lock.hashes:
            command[3:3] = ['--generate-hashes', '--python-platform', PLATFORM]
        else:
            command[3:3] = ['--universal', '--no-annotate']
        subprocess.run(command, check=True)
        resolved = (pathlib.Path(scratch) / 'lock.txt').read_text(encoding='utf-8')
    header = (f'# Lock file for {lock.purpose}.\n'
              f'# Python {lock.python}; written by `make lock` (scripts/lock_requirements.py, uv pip compile).'
              ' Do not edit by hand.\n')
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.write_text(header + resolved.replace(str(source), 'requirements.in'), encoding='utf-8')
    print(f'lock: wrote {lock.path.relative_to(REPOSITORY_ROOT)}', flush=True)


def pinned_versions(text: str) -> dict[str, str]:
    return {normalised(name): version for name, version in PINNED.findall(text)}


def normalised(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def installed_versions(venv: pathlib.Path) -> dict[str, str]:
    listing = subprocess.run([str(venv / 'bin' / 'python'), '-m', 'pip', 'list', '--format', 'json',
                              '--disable-pip-version-check'], capture_output=True, text=True, check=True)
    return {normalised(entry['name']): entry['version'] for entry in json.loads(listing.stdout)}


def compare(venv: pathlib.Path, lock: Lock) -> int:
    """Print what the unlocked environment `venv` has that differs from `lock`; always 0 (it informs)."""
    locked = pinned_versions(lock.path.read_text(encoding='utf-8'))
    installed = installed_versions(venv)
    drift = [f'  {name}: {locked[name]} (lock) -> {installed[name]}' for name in sorted(set(locked) - SEED_TOOLS)
             if name in installed and installed[name] != locked[name]]
    added = [f'  {name}: new, {installed[name]}' for name in sorted(set(installed) - set(locked) - SEED_TOOLS)]
    name = lock.path.relative_to(REPOSITORY_ROOT)
    if drift or added:
        print(f'test-latest: {venv} differs from {name}:\n' + '\n'.join(drift + added))
        print('test-latest: if the gates passed with these, `make lock` takes them (commit the lock files).')
    else:
        print(f'test-latest: {venv} has exactly the versions of {name}')
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--compare', metavar='VENV', type=pathlib.Path,
                        help='list how the packages of VENV differ from the lock of .venv (or of --release)')
    parser.add_argument('--release', help='with --compare: the lock of build/venv-RELEASE')
    arguments = parser.parse_args()
    if arguments.compare:
        return compare(arguments.compare, release_lock(arguments.release) if arguments.release else dev_lock())
    uv = shutil.which('uv')
    if uv is None:
        print('lock: `uv` is not on PATH; run `make lock` (it puts .venv/bin first)', file=sys.stderr)
        return 1
    try:
        for lock, requirements in lock_inputs().items():
            compile_lock(lock, requirements, uv)
    except subprocess.CalledProcessError as error:
        print(f'lock: uv pip compile failed (exit code {error.returncode}); its message is above', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
