# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run gates of `make test` with the other ansible-core releases that meta/runtime.yml admits.

`make test` runs every gate with ansible-core 2.19 in .venv; this script runs a chosen set of them again
with another release, in its own virtual environment build/venv-<release> (made from the Python that
release needs, found in pyenv or on PATH). The environment gets that ansible-core plus everything of
requirements-dev.txt that the tests need (not the lint/docs/packaging tools, which are pinned for 2.19),
and is reused while that requirement list is unchanged (a stamp file holds it).

Usage: test_matrix.py RELEASE [STEP...]   e.g. `test_matrix.py 2.21` or `test_matrix.py 2.20 units`
       test_matrix.py --all              every release of RELEASES with its default steps
Steps: sanity, units (ansible-test in the collection copy), integration (pytest tests/integration with the
release's own python, hence its ansible-playbook), demo (scripts/run_demo.py likewise).
The environment installs the exact versions of locks/core-<release>-py<python>.txt (`make lock` writes it);
with --latest it is build/latest/venv-<release>, from the unlocked requirements instead (`make test-latest`).
Standard library only: it runs with the interpreter `make` uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS_ROOT = REPOSITORY_ROOT / 'build' / 'collections'
COLLECTION_COPY = COLLECTIONS_ROOT / 'ansible_collections' / 'nomadops' / 'nomad'
PYENV_ROOT = pathlib.Path(os.environ.get('PYENV_ROOT', pathlib.Path.home() / '.pyenv'))


@dataclasses.dataclass(frozen=True)
class Release:
    python: str
    steps: tuple[str, ...]


# 2.19 is .venv's release (every gate of `make test`). 2.20 and 2.21 need Python 3.12+; the newest
# release runs the integration suite and the demo too, on the newest controller Python we have.
RELEASES = {
    '2.20': Release(python='3.12', steps=('sanity', 'units')),
    '2.21': Release(python='3.13', steps=('sanity', 'units', 'integration', 'demo')),
}
STEPS = ('sanity', 'units', 'integration', 'demo')
# requirements-dev.txt entries that are gate tools pinned against 2.19, not needed to run the tests.
NOT_FOR_TESTS = frozenset(('ansible-core', 'ansible-lint', 'molecule', 'antsibull-docs', 'antsibull-changelog',
                           'ansible-builder', 'sphinx-ansible-theme', 'galaxy-importer', 'uv'))
REQUIREMENT_NAME = re.compile(r'^\s*([A-Za-z0-9][A-Za-z0-9._-]*)')


class MatrixError(RuntimeError):
    pass


def requirement_lines(path: pathlib.Path) -> list[str]:
    """The lines of a pip requirements file with `-r` includes expanded and comments dropped."""
    lines = []
    for raw in path.read_text(encoding='utf-8').splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith(('-r ', '--requirement ')):
            lines.extend(requirement_lines(path.parent / line.split(None, 1)[1]))
        else:
            lines.append(line)
    return lines


def test_requirements(release: str) -> str:
    """What build/venv-<release> must hold: that ansible-core line and the test dependencies."""
    major, minor = release.split('.')
    wanted = [f'ansible-core>={release},<{major}.{int(minor) + 1}']
    for line in requirement_lines(REPOSITORY_ROOT / 'requirements-dev.txt'):
        match = REQUIREMENT_NAME.match(line)
        name = match.group(1).lower().replace('_', '-') if match else ''
        if name not in NOT_FOR_TESTS and line not in wanted:
            wanted.append(line)
    return '\n'.join(wanted) + '\n'


def find_python(version: str) -> pathlib.Path:
    candidates = sorted(PYENV_ROOT.glob(f'versions/{version}.*/bin/python{version}'), reverse=True)
    on_path = shutil.which(f'python{version}')
    if on_path:
        candidates.append(pathlib.Path(on_path))
    for candidate in candidates:
        if subprocess.run([str(candidate), '-c', 'pass'], capture_output=True, check=False).returncode == 0:
            return candidate
    raise MatrixError(f'no working python{version} (looked in {PYENV_ROOT}/versions and on PATH); '
                      f'install it with `pyenv install {version}`')


def venv_has_python(python: pathlib.Path, version: str) -> bool:
    completed = subprocess.run([str(python), '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                               capture_output=True, text=True, check=False)
    return completed.returncode == 0 and completed.stdout.strip() == version


def lock_file(release: str, python_version: str) -> pathlib.Path:
    return REPOSITORY_ROOT / 'locks' / f'core-{release}-py{python_version}.txt'


def install_plan(release: str, python_version: str, latest: bool) -> tuple[pathlib.Path, str, list[str]]:
    """Where the environment lives, the text its stamp holds, and pip's arguments to fill it."""
    if latest:
        wanted = f'# Python {python_version}, unlocked\n' + test_requirements(release)
        return REPOSITORY_ROOT / 'build' / 'latest' / f'venv-{release}', wanted, ['-r']
    lock = lock_file(release, python_version)
    if not lock.is_file():
        raise MatrixError(f'{lock} does not exist; `make lock` writes it')
    wanted = f'# Python {python_version}\n' + lock.read_text(encoding='utf-8')
    return REPOSITORY_ROOT / 'build' / f'venv-{release}', wanted, ['--require-hashes', '--no-deps', '-r']


def ensure_venv(release: str, python_version: str, latest: bool = False) -> pathlib.Path:
    """The release's environment, created or updated when what it must hold changed; returns its bin/."""
    venv, wanted, pip_arguments = install_plan(release, python_version, latest)
    stamp = venv / '.requirements-installed'
    python = venv / 'bin' / 'python'
    if stamp.is_file() and stamp.read_text(encoding='utf-8') == wanted and python.exists():
        print(f'matrix {release}: {venv} is up to date', flush=True)
        return venv / 'bin'
    if python.exists() and not venv_has_python(python, python_version):
        shutil.rmtree(venv)
    if not python.exists():
        subprocess.run([str(find_python(python_version)), '-m', 'venv', str(venv)], check=True)
    requirements = venv / 'requirements-wanted.txt'
    requirements.write_text(wanted.split('\n', 1)[1], encoding='utf-8')
    source = 'the unlocked requirements' if latest else lock_file(release, python_version).name
    print(f'matrix {release}: installing {source} into {venv}', flush=True)
    subprocess.run([str(python), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check',
                    *pip_arguments, str(requirements)], check=True)
    stamp.write_text(wanted, encoding='utf-8')
    return venv / 'bin'


def step_environment(venv_bin: pathlib.Path) -> dict[str, str]:
    environment = dict(os.environ)
    # ansible-test looks for `pythonX.Y` on PATH; the venv's own interpreter comes first.
    python_dir = pathlib.Path(os.path.realpath(venv_bin / 'python')).parent
    environment['PATH'] = os.pathsep.join((str(venv_bin), str(python_dir), environment.get('PATH', '')))
    environment['ANSIBLE_COLLECTIONS_PATH'] = str(COLLECTIONS_ROOT)
    environment['NOMADOPS_COLLECTIONS_PATH'] = str(COLLECTIONS_ROOT)
    environment.pop('VIRTUAL_ENV', None)
    return environment


def step_commands(step: str, venv_bin: pathlib.Path, python_version: str) -> list[tuple[list[str], pathlib.Path]]:
    """The commands of one step, each with the directory it runs in."""
    python = str(venv_bin / 'python')
    ansible_test = str(venv_bin / 'ansible-test')
    if step == 'sanity':
        return [([ansible_test, 'sanity', '--venv', '--python', python_version], COLLECTION_COPY)]
    if step == 'units':
        junit = COLLECTION_COPY / 'tests' / 'output' / 'junit'
        shutil.rmtree(junit, ignore_errors=True)
        return [([ansible_test, 'units', '--venv', '--python', python_version], COLLECTION_COPY),
                ([python, str(REPOSITORY_ROOT / 'scripts' / 'check_junit_counts.py'), 'units', str(junit)],
                 REPOSITORY_ROOT)]
    if step == 'integration':
        workers = os.environ.get('INTEGRATION_WORKERS', '2')
        parallel = [] if workers == '0' else ['-n', workers, '--dist', 'loadfile']
        selection = shlex.split(os.environ.get('MATRIX_INTEGRATION_TESTS', 'tests/integration'))
        return [([python, '-m', 'pytest', '-p', 'no:cacheprovider', '-ra', *parallel, *selection], REPOSITORY_ROOT)]
    if step == 'demo':
        return [([python, str(REPOSITORY_ROOT / 'scripts' / 'run_demo.py')], REPOSITORY_ROOT)]
    raise MatrixError(f'unknown step {step!r}; steps are: {", ".join(STEPS)}')


def run_step(release: str, step: str, venv_bin: pathlib.Path, python_version: str) -> bool:
    print(f'=== ansible-core {release} (Python {python_version}): {step}', flush=True)
    started = time.monotonic()
    environment = step_environment(venv_bin)
    passed = True
    for command, directory in step_commands(step, venv_bin, python_version):
        if subprocess.run(command, cwd=directory, env=environment, check=False).returncode != 0:
            passed = False
            break
    print(f'--- ansible-core {release} {step}: {"passed" if passed else "FAILED"} '
          f'in {time.monotonic() - started:.1f} s', flush=True)
    return passed


def unlock_units(collection_copy: pathlib.Path) -> None:
    """ansible-test units reads tests/unit/constraints.txt (the lock) by itself: drop it from the copy."""
    (collection_copy / 'tests' / 'unit' / 'constraints.txt').unlink(missing_ok=True)


def run_release(release: str, steps: tuple[str, ...], latest: bool = False) -> list[str]:
    """Run the steps with one release; return the failed ones as release/step."""
    if release not in RELEASES:
        raise MatrixError(f'unknown release {release!r}; known: {", ".join(RELEASES)}')
    python_version = RELEASES[release].python
    venv_bin = ensure_venv(release, python_version, latest)
    subprocess.run([str(venv_bin / 'python'), str(REPOSITORY_ROOT / 'scripts' / 'install_get_pip_standin.py'),
                    python_version], check=True)
    subprocess.run([sys.executable, str(REPOSITORY_ROOT / 'scripts' / 'sync_collection_copy.py')], check=True)
    if latest:
        unlock_units(COLLECTION_COPY)
    return [f'{release}/{step}' for step in steps or RELEASES[release].steps
            if not run_step(release, step, venv_bin, python_version)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--all', action='store_true', help='every release with its default steps')
    parser.add_argument('--latest', action='store_true',
                        help='build/latest/venv-RELEASE from the unlocked requirements instead of the lock')
    parser.add_argument('release', nargs='?', help=f'one of {", ".join(RELEASES)}')
    parser.add_argument('steps', nargs='*', help=f'any of {", ".join(STEPS)} (default: the release\'s own)')
    arguments = parser.parse_args()
    if arguments.all == bool(arguments.release):
        parser.error('give one RELEASE or --all')
    unknown = [step for step in arguments.steps if step not in STEPS]
    if unknown:
        parser.error(f'unknown step(s) {", ".join(unknown)}; steps are: {", ".join(STEPS)}')
    try:
        failures = []
        for release in (RELEASES if arguments.all else [arguments.release]):
            failures += run_release(release, tuple(arguments.steps), arguments.latest)
    except (MatrixError, subprocess.CalledProcessError) as error:
        print(f'test-matrix: {error}', file=sys.stderr)
        return 1
    if failures:
        print(f'test-matrix: FAILED: {" ".join(failures)}')
        return 1
    print('test-matrix: all passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
