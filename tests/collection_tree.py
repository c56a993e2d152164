# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where ansible-playbook, ansible and in-process imports find nomadops.nomad during tests and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def collections_path() -> Path:
    """NOMADOPS_COLLECTIONS_PATH (the Makefile points it at its copy of the collection), else
    build/dev-collections, a symlink tree to this checkout made on first use."""
    configured = os.environ.get("NOMADOPS_COLLECTIONS_PATH")
    if configured:
        return Path(configured)
    root = REPO_ROOT / "build" / "dev-collections"
    link = root / "ansible_collections" / "nomadops" / "nomad"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(REPO_ROOT, target_is_directory=True)
        except FileExistsError:  # a parallel worker made it first
            pass
    return root
