# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the quality gates of `make test` one after another, with a header and a one-line result each.

Runs with the interpreter that makes the virtual environment (standard library only), since the first
gate creates that environment. Stops at the first failing gate unless --keep-going is given, and ends
with one summary line: "gates: N passed, N failed, N skipped" (skipped = not run after a failure).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time

RULE = '=' * 78


@dataclasses.dataclass
class GateOutcome:
    name: str
    status: str  # passed, failed or skipped
    seconds: float = 0.0
    exit_code: int = 0


def run_gate(name: str, position: int, total: int) -> GateOutcome:
    print(f'\n{RULE}\n[{position}/{total}] gate {name}: make {name}\n{RULE}', flush=True)
    started = time.monotonic()
    exit_code = subprocess.run(['make', '--no-print-directory', name], check=False).returncode
    seconds = time.monotonic() - started
    status = 'passed' if exit_code == 0 else 'failed'
    detail = '' if exit_code == 0 else f' (exit code {exit_code})'
    print(f'--- gate {name}: {status.upper()} in {seconds:.1f} s{detail}', flush=True)
    return GateOutcome(name, status, seconds, exit_code)


def print_summary(outcomes: list[GateOutcome]) -> None:
    print(f'\n{RULE}\nSummary')
    for outcome in outcomes:
        timing = '' if outcome.status == 'skipped' else f'{outcome.seconds:7.1f} s'
        print(f'  {outcome.name:<16} {outcome.status:<8} {timing}')
    total_seconds = sum(outcome.seconds for outcome in outcomes)
    failed = [outcome.name for outcome in outcomes if outcome.status == 'failed']
    if failed:
        print(f'FAILED gate(s): {", ".join(failed)} (total {total_seconds:.1f} s)')
    else:
        print(f'All gates passed (total {total_seconds:.1f} s)')
    counts = {status: sum(1 for outcome in outcomes if outcome.status == status)
              for status in ('passed', 'failed', 'skipped')}
    print('gates: {passed} passed, {failed} failed, {skipped} skipped'.format(**counts), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--keep-going', action='store_true', help='run every gate even after a failure')
    parser.add_argument('gates', nargs='+', help='make targets, in order')
    arguments = parser.parse_args()

    outcomes: list[GateOutcome] = []
    stop = False
    for position, name in enumerate(arguments.gates, start=1):
        if stop:
            outcomes.append(GateOutcome(name, 'skipped'))
            continue
        outcome = run_gate(name, position, len(arguments.gates))
        outcomes.append(outcome)
        stop = outcome.status == 'failed' and not arguments.keep_going
    print_summary(outcomes)
    return 1 if any(outcome.status == 'failed' for outcome in outcomes) else 0


if __name__ == '__main__':
    sys.exit(main())
