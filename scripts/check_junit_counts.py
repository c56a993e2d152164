# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fail when a test run recorded no test at all (ansible-test units exits 0 when every target is skipped).

Usage: check_junit_counts.py LABEL DIRECTORY — sums tests/failures/errors/skipped over DIRECTORY/*.xml.
"""

from __future__ import annotations

import pathlib
import sys
from xml.etree import ElementTree

COUNTERS = ('tests', 'failures', 'errors', 'skipped')


def suite_counts(path: pathlib.Path) -> dict[str, int]:
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
    return {counter: sum(int(suite.get(counter, '0')) for suite in suites) for counter in COUNTERS}


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit('usage: check_junit_counts.py LABEL DIRECTORY')
    label, directory = sys.argv[1], pathlib.Path(sys.argv[2])
    totals = {counter: 0 for counter in COUNTERS}
    for path in sorted(directory.glob('*.xml')):
        for counter, value in suite_counts(path).items():
            totals[counter] += value
    passed = totals['tests'] - totals['failures'] - totals['errors'] - totals['skipped']
    failed = totals['failures'] + totals['errors']
    print(f"{label}: {passed} passed, {failed} failed, {totals['skipped']} skipped")
    if totals['tests'] == 0:
        print(f'{label}: no test ran (no JUnit results in {directory})', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
