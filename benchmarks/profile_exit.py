# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where a module's exit spends its time on a large result (the numbers behind benchmarks/analysis.md).

    .venv/bin/python benchmarks/profile_exit.py [--count 100000] [--repeat 3]

Starts an emulator with `count` virtual allocations, lists them once (task_states=false, as section 1 does),
then times, in this one process, each per-value step of AnsibleModule's exit on that list: ansible-core's
`remove_values` (the no_log scrub) with no no_log value and with a token, the module encoder's `json.dumps`
(what `_record_module_result` prints), a plain `json.dumps`, and the check that lets the collection skip the
scrub (one `json.dumps` and a substring search per no_log value). Medians of `repeat` runs; not part of
`make bench`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import sections, workers  # noqa: E402
from benchmarks.collection_path import collections_path  # noqa: E402

sys.path.insert(0, str(collections_path()))

from ansible.module_utils.common.parameters import remove_values  # noqa: E402
from ansible.module_utils.common import json as _json  # noqa: E402
from tests.emulator.harness import EmulatorProcess  # noqa: E402

TOKEN = "4f1b6c0e-7c43-4b7e-9a51-2f0d3c8e9b17"


def module_encoder():
    # "legacy" is the serialization profile the controller gives modules that do not declare one.
    return _json.get_module_encoder("legacy", _json.Direction.MODULE_TO_CONTROLLER)


def list_allocations(count: int) -> list:
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        settings = sections.Settings.for_mode(True, None, Path(workdir))
        scenario = sections.write_scenario(settings, "profile", virtual_jobs=10)
        with EmulatorProcess(scenario=str(scenario), virtual=count) as emulator:
            session = workers.raw_session()
            items, _bytes = workers.raw_list(session, emulator.address,
                                             {"namespace": "default", "task_states": "false"}, 1000)
    return items


def timed(function, repeat: int) -> float:
    seconds = []
    for _run in range(repeat):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import plain_json_text, text_holds_no_log_value

    allocations = list_allocations(arguments.count)
    result = {"changed": False, "allocations": allocations, "count": len(allocations), "index": 7}
    encoder = module_encoder()
    steps = {
        "remove_values, no no_log value": lambda: remove_values(result, set()),
        "remove_values, one token": lambda: remove_values(result, {TOKEN}),
        "json.dumps, module encoder": lambda: json.dumps(result, cls=encoder),
        "json.dumps, plain": lambda: json.dumps(result),
        "text_holds_no_log_value, one token": lambda: text_holds_no_log_value(plain_json_text(allocations), {TOKEN}),
    }
    print(f"{len(allocations):,} allocations, medians of {arguments.repeat} runs:")
    for label, step in steps.items():
        print(f"  {label:40s} {timed(step, arguments.repeat):7.3f} s", flush=True)


if __name__ == "__main__":
    main()
