# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Checks on changelog fragments that `antsibull-changelog lint` does not make (`make changelog-lint`).

- Fragments are reStructuredText: Ansible's documentation markup (``C(...)``, ``O(...)``, ``V(...)``,
  ``M(...)``, ...) is copied verbatim into CHANGELOG.rst, so it is refused; write ````code```` instead.
- Before the first release there is nothing released to fix, break or deprecate: such sections would
  show up in the initial release's changelog, so they are refused while changelog.yaml has no release.

- With --release COLLECTION_COPY: `antsibull-changelog release` of galaxy.yml's version, run in a
  temporary copy of the collection with this interpreter's bin/ (ansible-doc) on PATH, must succeed and
  write a CHANGELOG.rst without Ansible markup.

Usage: check_changelog_fragments.py [--release COLLECTION_COPY]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent
ANSIBLE_MARKUP = re.compile(r'(?<![A-Za-z0-9_])(?:RV|[BCEILMOPUV])\(')
NOT_BEFORE_FIRST_RELEASE = ('bugfixes', 'security_fixes', 'breaking_changes', 'deprecated_features',
                            'removed_features')


def markup_problems(path: pathlib.Path) -> list[str]:
    problems = []
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), start=1):
        for match in ANSIBLE_MARKUP.finditer(line):
            problems.append(f'{path}:{number}: Ansible markup {match.group(0)}...) in an RST fragment; '
                            'write ``code`` (double backquotes) instead')
    return problems


def first_release_problems(path: pathlib.Path, fragment: object) -> list[str]:
    if not isinstance(fragment, dict):
        return []
    return [f'{path}: section {section!r} before the first release (nothing is released yet); '
            'use minor_changes' for section in NOT_BEFORE_FIRST_RELEASE if section in fragment]


def has_releases(changelogs: pathlib.Path) -> bool:
    changes = changelogs / 'changelog.yaml'
    if not changes.is_file():
        return False
    return bool((yaml.safe_load(changes.read_text(encoding='utf-8')) or {}).get('releases'))


def release_problems(collection_copy: pathlib.Path) -> list[str]:
    """Run a release of galaxy.yml's version in a throw-away copy; return what is wrong with it."""
    version = yaml.safe_load((collection_copy / 'galaxy.yml').read_text(encoding='utf-8'))['version']
    bin_directory = pathlib.Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix='changelog-release-') as root:
        copy = pathlib.Path(root, 'ansible_collections', 'nomadops', 'nomad')
        shutil.copytree(collection_copy, copy, ignore=shutil.ignore_patterns('.git', 'tests', '.ansible'))
        environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=root,
                           PATH=f'{bin_directory}{os.pathsep}{os.environ.get("PATH", "")}')
        completed = subprocess.run([str(bin_directory / 'antsibull-changelog'), 'release', '--version', version],
                                   cwd=copy, env=environment, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            return [f'antsibull-changelog release --version {version} failed: '
                    f'{(completed.stdout + completed.stderr).strip()}']
        rendered = copy / 'CHANGELOG.rst'
        problems = markup_problems(rendered)
    return [problem.replace(str(rendered), 'CHANGELOG.rst (dry release)') for problem in problems]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--release', metavar='COLLECTION_COPY', type=pathlib.Path,
                        help='also run a dry antsibull-changelog release in a copy of this collection tree')
    arguments = parser.parse_args()
    changelogs = REPOSITORY_ROOT / 'changelogs'
    released = has_releases(changelogs)
    fragments = sorted((changelogs / 'fragments').glob('*.y*ml'))
    problems = []
    for path in fragments:
        problems += markup_problems(path)
        if not released:
            problems += first_release_problems(path, yaml.safe_load(path.read_text(encoding='utf-8')))
    if arguments.release:
        problems += release_problems(arguments.release)
    for problem in problems:
        print(problem, file=sys.stderr)
    dry_release = ' and a dry release' if arguments.release else ''
    print(f'changelog fragments: {len(fragments)} checked{dry_release}, {len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
