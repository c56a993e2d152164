# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""`make importer`: import the built artifact with galaxy-importer as Galaxy does, and fail on any warning.

galaxy-importer runs ansible-doc on every plugin, reads the docs, the changelog and the README, and runs
ansible-lint on the unpacked artifact (without the repository's .ansible-lint, which is not packed). It
runs offline here: ansible-test is off (it would need a container engine, and when it cannot start one
it still exits 0), so sanity stays with `make sanity`. Galaxy shows every WARNING of the import on the
collection's page, so any WARNING line fails the gate.

Usage: run_galaxy_importer.py ARTIFACT.tar.gz
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile

CONFIG = """[galaxy-importer]
run_ansible_test = False
run_ansible_lint = True
offline_ansible_lint = True
run_ansible_doc = True
check_changelog = True
ansible_local_tmp = {tmp}/ansible-tmp
tmp_root_dir = {tmp}
"""
WARNING_LINE = re.compile(r'\bWARNING\b')


def run_importer(artifact: pathlib.Path, scratch: pathlib.Path) -> subprocess.CompletedProcess:
    config = scratch / 'galaxy-importer.cfg'
    config.write_text(CONFIG.format(tmp=scratch), encoding='utf-8')
    bin_directory = pathlib.Path(sys.executable).parent
    environment = dict(os.environ, GALAXY_IMPORTER_CONFIG=str(config), HOME=str(scratch / 'home'),
                       PATH=f'{bin_directory}{os.pathsep}{os.environ.get("PATH", "")}')
    # The importer must read only what is packed: no collection tree from the Makefile.
    environment.pop('ANSIBLE_COLLECTIONS_PATH', None)
    return subprocess.run([sys.executable, '-m', 'galaxy_importer.main', str(artifact)], cwd=scratch,
                          env=environment, capture_output=True, text=True, check=False)


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit('usage: run_galaxy_importer.py ARTIFACT.tar.gz')
    artifact = pathlib.Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix='galaxy-importer-') as scratch:
        completed = run_importer(artifact, pathlib.Path(scratch))
    output = completed.stdout + completed.stderr
    print(output, end='')
    warnings = [line for line in output.splitlines() if WARNING_LINE.search(line)]
    if completed.returncode != 0:
        print(f'galaxy-importer: FAILED with exit code {completed.returncode}', file=sys.stderr)
        return 1
    if warnings:
        print(f'galaxy-importer: {len(warnings)} warning(s), Galaxy would show them:', file=sys.stderr)
        for line in warnings:
            print(f'  {line}', file=sys.stderr)
        return 1
    print(f'galaxy-importer: {artifact.name} imported without warnings')
    return 0


if __name__ == '__main__':
    sys.exit(main())
