# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Offline stand-in for the get-pip.py script that ansible-test downloads.

ansible-test bootstraps pip into each virtual environment it creates by running a cached
``~/.ansible/test/cache/get_pip_<version>.py``; when that file is missing it tries to download it
from a host that is not reachable from every network. This stand-in bootstraps pip with the
standard library's ``ensurepip`` and then runs ``pip install`` with the arguments ansible-test gave.

``ensurepip`` replaces PIP_CONFIG_FILE with os.devnull in its own process environment, which would
drop the machine's pip configuration (index, CA bundle), so it runs in a child process and the
second pip gets a copy of the environment taken before anything ran.
"""

from __future__ import annotations

import os
import subprocess
import sys

# get-pip.py options that `pip install` does not understand.
GET_PIP_ONLY_OPTIONS = frozenset(('--no-setuptools', '--no-wheel'))


def bootstrap_pip_with_ensurepip(environment: dict[str, str]) -> None:
    """Install the pip bundled with this Python into the running interpreter's environment."""
    completed = subprocess.run(
        [sys.executable, '-m', 'ensurepip', '--default-pip'],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr)
        sys.exit(f'get-pip stand-in: ensurepip failed with exit code {completed.returncode}')


def pip_install(arguments: list[str], environment: dict[str, str]) -> int:
    """Run `pip install` with the arguments get-pip.py was given, minus its own options."""
    install_arguments = [argument for argument in arguments if argument not in GET_PIP_ONLY_OPTIONS]
    command = [sys.executable, '-m', 'pip', 'install', '--quiet'] + install_arguments
    return subprocess.run(command, env=environment, check=False).returncode


def main() -> None:
    original_environment = dict(os.environ)
    bootstrap_pip_with_ensurepip(dict(original_environment))
    sys.exit(pip_install(sys.argv[1:], original_environment))


if __name__ == '__main__':
    main()
