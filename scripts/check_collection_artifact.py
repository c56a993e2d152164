# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Check that a built collection tarball holds what users need and no development artefacts."""

from __future__ import annotations

import sys
import tarfile

REQUIRED_MEMBERS = ('MANIFEST.json', 'FILES.json', 'README.md', 'LICENSE', 'meta/runtime.yml')
# Path prefixes (or path parts) that must never be packed.
FORBIDDEN_PARTS = ('.venv', 'build', '.git', '.ci', 'tests/output', '.pytest_cache', '.hypothesis',
                   '__pycache__', '.ansible', 'collections', 'docs/build', 'changelogs/.plugin-cache.yaml',
                   'tests/integration/inventory', 'Makefile')


def forbidden_reason(member: str) -> str | None:
    parts = member.split('/')
    for forbidden in FORBIDDEN_PARTS:
        length = forbidden.count('/') + 1
        windows = ['/'.join(parts[index:index + length]) for index in range(len(parts) - length + 1)]
        if forbidden in windows:
            return forbidden
    if member.endswith(('.pyc', '.tar.gz')):
        return member.rsplit('.', 1)[-1]
    return None


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit('usage: check_collection_artifact.py <nomadops-nomad-X.Y.Z.tar.gz>')
    with tarfile.open(sys.argv[1]) as artifact:
        members = [name[2:] if name.startswith('./') else name for name in artifact.getnames()]
    problems = [f'missing {required}' for required in REQUIRED_MEMBERS if required not in members]
    for member in members:
        reason = forbidden_reason(member)
        if reason:
            problems.append(f'packed {member} (matches {reason})')
    for problem in problems:
        print(f'collection artifact: {problem}', file=sys.stderr)
    print(f'collection artifact {sys.argv[1]}: {len(members)} members, {len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
