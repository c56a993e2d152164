# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one private ansible-core interface the collection relies on: AnsibleModule._record_module_result.

NomadAnsibleModule overrides it to splice the JSON text of large listings into the result (benchmarks/analysis.md:
ansible-core's no_log scrub and module encoder copy every value of a 100,000-allocation listing). No public
interface does this. These tests fail loudly when an ansible-core release renames the hook, changes its
signature or stops calling it from exit_json; they run on every supported ansible-core (make test runs the units on
2.19, 2.20 and 2.21)."""

from __future__ import annotations

import inspect
import json

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible.module_utils.ansible_release import __version__ as ansible_core_version

from ansible_collections.nomadops.nomad.plugins.module_utils.common.ansible_module import NomadAnsibleModule

LISTING = [{"ID": "00000001-0000-4000-8000-000000000000", "JobID": "web"}]


def core_has_the_hook():
    """ansible-core 2.19.0 has no hook (exit_json_with_listings then returns everything through exit_json)."""
    return ansible_core_version != "2.19.0"


def test_the_hook_exists_with_the_signature_the_override_relies_on():
    if not core_has_the_hook():
        assert not hasattr(AnsibleModule, "_record_module_result")
        return
    assert list(inspect.signature(AnsibleModule._record_module_result).parameters) == ["self", "o"]


def test_exit_json_calls_the_override_with_the_scrubbed_result_and_the_listing_is_spliced_in(monkeypatch, capsys):
    calls = []
    override = NomadAnsibleModule._record_module_result

    def recording(module, result):
        calls.append(sorted(result))
        override(module, result)

    monkeypatch.setattr(NomadAnsibleModule, "_record_module_result", recording)
    with patch_module_args({"token": "s3cr3t-token"}):
        module = NomadAnsibleModule(argument_spec={}, supports_check_mode=True)
        with pytest.raises(SystemExit):
            module.exit_json_with_listings({"allocations": LISTING}, changed=False, count=1)
    printed = capsys.readouterr().out
    result = json.loads(printed)
    assert result["allocations"] == LISTING and result["count"] == 1
    assert "s3cr3t-token" not in printed
    if core_has_the_hook():
        # called once, with the result ansible-core scrubbed: the listing went around the scrub, as its text
        assert len(calls) == 1 and "count" in calls[0] and "allocations" not in calls[0]
    else:
        assert calls == []
