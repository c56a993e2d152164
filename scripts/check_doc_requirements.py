# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fail when a plugin's rendered docs list the same requirement twice (`make docs-lint`).

A plugin's `requirements:` are merged with those of its doc fragments (nomadops.nomad.connection adds
requests); when the plugin lists the same package again in other words, ansible-doc and antsibull-docs
show both lines. This reads every plugin's merged docs with one `ansible-doc --metadata-dump` and compares
the package names (the first word of each entry, case-insensitive).

Usage: check_doc_requirements.py   (with ANSIBLE_COLLECTIONS_PATH pointing at a tree holding the collection)
"""

from __future__ import annotations

import collections
import json
import pathlib
import re
import subprocess
import sys

COLLECTION = 'nomadops.nomad'
PACKAGE_NAME = re.compile(r'^\s*([A-Za-z0-9][A-Za-z0-9._-]*)')


def collection_docs() -> dict[str, dict]:
    """Every plugin of the collection (`<type> <name>`) with its merged documentation."""
    ansible_doc = pathlib.Path(sys.executable).with_name('ansible-doc')
    completed = subprocess.run([str(ansible_doc), '--metadata-dump', '--no-fail-on-errors', COLLECTION],
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f'doc requirements: ansible-doc could not read {COLLECTION} (is ANSIBLE_COLLECTIONS_PATH set?): '
                 f'{completed.stderr.strip()}')
    dump = json.loads(completed.stdout)
    return {f'{kind} {name}': entry.get('doc') or {}
            for kind, plugins in dump['all'].items() for name, entry in plugins.items()
            if name.startswith(COLLECTION + '.')}


def duplicated_requirements(requirements: list[str]) -> list[list[str]]:
    by_package = collections.defaultdict(list)
    for requirement in requirements:
        match = PACKAGE_NAME.match(requirement)
        by_package[(match.group(1) if match else requirement).lower()].append(requirement)
    return [entries for entries in by_package.values() if len(entries) > 1]


def main() -> int:
    docs = collection_docs()
    problems = [f'{plugin}: requirement listed {len(entries)} times: {entries} (the doc fragment already '
                'lists it; drop it from the plugin\'s own requirements)'
                for plugin, doc in sorted(docs.items())
                for entries in duplicated_requirements(doc.get('requirements') or [])]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f'doc requirements: {len(docs)} plugins checked, {len(problems)} duplicate(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
