# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fail when the commit being built carries a release tag that is not galaxy.yml's version (`make build`).

Release tags are `X.Y.Z`, exactly galaxy.yml's `version` (docs/releasing.md). An untagged commit passes; so
does a checkout without git metadata (an unpacked source archive).
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import yaml

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASE_TAG = re.compile(r'^v?\d+\.\d+\.\d+(?:[-+].*)?$')


def tags_at_head() -> list[str]:
    completed = subprocess.run(['git', 'tag', '--points-at', 'HEAD'], cwd=REPOSITORY_ROOT, capture_output=True,
                               text=True, check=False)
    return completed.stdout.split() if completed.returncode == 0 else []


def main() -> int:
    version = str(yaml.safe_load((REPOSITORY_ROOT / 'galaxy.yml').read_text(encoding='utf-8'))['version'])
    release_tags = [tag for tag in tags_at_head() if RELEASE_TAG.match(tag)]
    wrong = [tag for tag in release_tags if tag != version]
    for tag in wrong:
        print(f'release tag {tag!r} does not match galaxy.yml version {version!r}: tag releases as exactly '
              f'{version!r} (docs/releasing.md)', file=sys.stderr)
    if not wrong:
        print(f'release tag: {release_tags[0] if release_tags else "none at HEAD"} (galaxy.yml version {version})')
    return 1 if wrong else 0


if __name__ == '__main__':
    sys.exit(main())
