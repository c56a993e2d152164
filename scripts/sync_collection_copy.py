# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Mirror the checkout into build/collections/ansible_collections/nomadops/nomad (`make collection`).

ansible-test needs a physical ansible_collections/<namespace>/<name> directory, and playbooks find the
collection there through ANSIBLE_COLLECTIONS_PATH. The copy is updated in place, file by file with an
atomic rename, and files gone from the checkout are removed, so that a run that is using the copy (an
integration test, a playbook) never sees it missing or half written. Generated paths are not copied
and, inside the copy, are left alone (ansible-test writes tests/output there).
"""

from __future__ import annotations

import fnmatch
import os
import pathlib
import shutil
import subprocess
import sys

SOURCE = pathlib.Path(__file__).resolve().parent.parent
TARGET = SOURCE / 'build' / 'collections' / 'ansible_collections' / 'nomadops' / 'nomad'

# Paths relative to the root (keep in step with .gitignore and galaxy.yml build_ignore).
EXCLUDED_PATHS = frozenset((
    '.git', '.venv', 'build', 'collections', 'tests/output', 'tests/integration/inventory', 'docs/build',
    'docs/rst', 'docs/temp-rst', 'changelogs/.plugin-cache.yaml', '.cache',
))
# Names excluded wherever they appear.
EXCLUDED_NAME_PATTERNS = ('.venv-*', '.ansible', '.pytest_cache', '.hypothesis', '__pycache__', '*.pyc',
                          '*.tar.gz', '.molecule')


def is_excluded(relative: str) -> bool:
    name = relative.rsplit('/', 1)[-1]
    return relative in EXCLUDED_PATHS or any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED_NAME_PATTERNS)


def source_files() -> dict[str, pathlib.Path]:
    """Every file and symlink to copy, by path relative to the root."""
    files = {}
    for directory, directory_names, file_names in os.walk(SOURCE):
        relative_directory = os.path.relpath(directory, SOURCE)
        prefix = '' if relative_directory == '.' else relative_directory + '/'
        directory_names[:] = [name for name in directory_names if not is_excluded(prefix + name)]
        for name in file_names:
            if not is_excluded(prefix + name):
                files[prefix + name] = pathlib.Path(directory, name)
    return files


def is_up_to_date(source: pathlib.Path, target: pathlib.Path) -> bool:
    if source.is_symlink() or target.is_symlink():
        return source.is_symlink() and target.is_symlink() and os.readlink(source) == os.readlink(target)
    if not target.is_file():
        return False
    source_stat, target_stat = source.stat(), target.stat()
    return (source_stat.st_size == target_stat.st_size and source_stat.st_mtime_ns == target_stat.st_mtime_ns
            and source_stat.st_mode == target_stat.st_mode)


def copy_atomically(source: pathlib.Path, target: pathlib.Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f'.{target.name}.sync-{os.getpid()}')
    if source.is_symlink():
        os.symlink(os.readlink(source), staging)
    else:
        shutil.copy2(source, staging)
    os.replace(staging, target)


def is_generated_directory(relative_directory: str) -> bool:
    """True inside the copy's own .git or a generated directory (tests/output, caches)."""
    if relative_directory == '.':
        return False
    parts = relative_directory.split('/')
    return any(is_excluded('/'.join(parts[:depth])) for depth in range(1, len(parts) + 1))


def remove_stale(wanted: set[str]) -> int:
    """Remove files of the copy that the checkout no longer has; return how many."""
    removed = 0
    for directory, directory_names, file_names in os.walk(TARGET, topdown=False):
        relative_directory = os.path.relpath(directory, TARGET)
        prefix = '' if relative_directory == '.' else relative_directory + '/'
        if is_generated_directory(relative_directory):
            continue
        for name in file_names:
            if prefix + name not in wanted and not is_excluded(prefix + name):
                os.unlink(os.path.join(directory, name))
                removed += 1
        if relative_directory != '.' and not os.listdir(directory):
            os.rmdir(directory)
    return removed


def initialise_git(target: pathlib.Path) -> None:
    # ansible-test lists content with git from the nearest .git upwards; without a repository of its
    # own the copy would be read through the checkout's .git, which ignores build/: every target skipped.
    if not (target / '.git').exists():
        subprocess.run(['git', 'init', '--quiet', str(target)], check=True)


def main() -> int:
    files = source_files()
    TARGET.mkdir(parents=True, exist_ok=True)
    copied = 0
    for relative, source in files.items():
        target = TARGET / relative
        if not is_up_to_date(source, target):
            copy_atomically(source, target)
            copied += 1
    removed = remove_stale(set(files))
    initialise_git(TARGET)
    print(f'collection copy {TARGET}: {len(files)} files, {copied} updated, {removed} removed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
