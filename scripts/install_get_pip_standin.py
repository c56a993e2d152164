# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Put the offline get-pip stand-in where ansible-test looks for its cached get-pip script.

The pip version comes from the installed ansible-test itself, so an ansible-core upgrade that
changes the pin gets a stand-in under the new name. A genuine cached get-pip script (one that is
not our stand-in) is left alone.
"""

from __future__ import annotations

import os
import pathlib
import sys
import types

from ansible_test._internal.python_requirements import get_venv_packages

STANDIN_SOURCE = pathlib.Path(__file__).resolve().parent / 'get_pip_standin.py'
STANDIN_MARKER = 'Offline stand-in for the get-pip.py script'
CACHE_DIRECTORY = pathlib.Path(os.path.expanduser('~/.ansible/test/cache'))


def pip_versions_requested(python_versions: list[str]) -> set[str]:
    """The pip versions ansible-test bootstraps into virtual environments for these Pythons."""
    return {get_venv_packages(types.SimpleNamespace(version=version))['pip'] for version in python_versions}


def install_standin(pip_version: str, source: str) -> str:
    """Write the stand-in for one pip version; return what was done, for the log."""
    target = CACHE_DIRECTORY / (f'get_pip_{pip_version.replace(".", "_")}.py')
    if target.exists():
        current = target.read_text(encoding='utf-8')
        if STANDIN_MARKER not in current:
            return f'kept genuine {target}'
        if current == source:
            return f'up to date {target}'
    CACHE_DIRECTORY.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding='utf-8')
    return f'wrote {target}'


def main() -> None:
    python_versions = sys.argv[1:] or [f'{sys.version_info[0]}.{sys.version_info[1]}']
    source = STANDIN_SOURCE.read_text(encoding='utf-8')
    for pip_version in sorted(pip_versions_requested(python_versions)):
        print(f'get-pip stand-in: {install_standin(pip_version, source)}')


if __name__ == '__main__':
    main()
