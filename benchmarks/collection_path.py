# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where ansible (and the in-process workers) find nomadops.nomad: the same place as the test suites."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.collection_tree import collections_path  # noqa: E402  (re-exported for the benchmark modules)

__all__ = ("REPO_ROOT", "collections_path")
