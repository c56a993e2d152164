# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_logs against real task output of the emulator (tests/emulator/scenarios/fs.yml): tails across
rotated files, follow/until, dead tasks, many allocations, and one-line refusals."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time

import pytest
import requests

from tests.integration.conftest import VENV_BIN, AnsibleRunner
from tests.integration.fs_helpers import LOGS_ONLY, MANAGEMENT, NO_FS, allocation_of, fs_jobs_ready, result_of
from tests.waiting import wait_until

LOGS = "nomadops.nomad.nomad_alloc_logs"
EMULATOR_SCENARIO = "fs.yml"
EMULATOR_READY = fs_jobs_ready


@pytest.fixture(scope="module")
def runner(emulator, tmp_path_factory):
    return AnsibleRunner(emulator.address, tmp_path_factory.mktemp("logs"), extra_env={"NOMAD_TOKEN": MANAGEMENT})


def numbers(lines, word):
    return [int(re.fullmatch(rf"{word} (\d+)", line).group(1)) for line in lines]


def failure(run):
    assert run.rc != 0, run.output
    message = result_of(run)["msg"]
    assert "\n" not in message and "Traceback" not in run.output
    return message


def test_tail_lines_of_a_rotated_running_log_are_exactly_the_last_lines(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="chatty", type="stdout", tail_lines=5)).assert_ok())
    seen = numbers(result["stdout_lines"], "line")
    assert len(seen) == 5 and seen == list(range(seen[0], seen[0] + 5)) and seen[0] > 800
    assert result["stdout"] == "".join(f"line {n}\n" for n in seen)
    assert result["stderr"] == "" and result["logs"][0]["task"] == "talker" and result["changed"] is False


def test_tail_across_rotated_files_loses_and_repeats_no_line(runner):
    # 2048-byte files hold about 220 lines: 300 lines span at least two files.
    result = result_of(runner.adhoc(LOGS, dict(job="chatty", type="stdout", tail_lines=300)).assert_ok())
    seen = numbers(result["stdout_lines"], "line")
    assert seen == list(range(seen[0], seen[0] + 300))


def test_stdout_and_stderr_are_separate(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="chatty", tail_lines=3)).assert_ok())
    assert all(line.startswith("line ") for line in result["stdout_lines"])
    assert len(result["stderr_lines"]) == 3 and all(n % 10 == 0 for n in numbers(result["stderr_lines"], "err"))


def test_logs_of_a_dead_task(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="crashed")).assert_ok())
    assert result["stdout_lines"] == [f"out {n}" for n in range(1, 6)]
    assert result["stderr"] == "boom\n"


def test_base64_is_byte_exact(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="crashed", type="stdout", output_encoding="base64")).assert_ok())
    assert base64.b64decode(result["stdout"]) == b"".join(f"out {n}\n".encode() for n in range(1, 6))
    assert result["stdout_lines"] == []


def test_max_bytes_keeps_the_end_and_says_truncated(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="crashed", type="stdout", max_bytes=6)).assert_ok())
    assert result["stdout"] == "out 5\n" and result["logs"][0]["truncated"] is True


def test_many_allocations_in_one_task(runner, emulator):
    ids = [allocation_of(emulator, job)["ID"] for job in ("crashed", "chatty", "slow")]
    result = result_of(runner.adhoc(LOGS, dict(id=ids, type="stdout", tail_lines=1, parallelism=2)).assert_ok())
    assert [entry["ID"] for entry in result["logs"]] == ids
    assert [entry["task"] for entry in result["logs"]] == ["oneshot", "talker", "sleeper"]
    assert result["logs"][0]["stdout_lines"] == ["out 5"] and result["logs"][2]["stdout_lines"] == ["READY"]
    assert "stdout" not in result


def test_follow_until_returns_once_the_line_is_printed(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="slow", type="stdout", until="^READY$", follow_timeout=30)).assert_ok())
    assert result["logs"][0]["matched"] == "READY"


def test_until_waits_for_a_line_the_task_prints_later(runner):
    last_seen = numbers(result_of(runner.adhoc(LOGS, dict(job="chatty", type="stdout", tail_lines=1)))["stdout_lines"],
                        "line")[0]
    awaited = last_seen + 30  # chatty prints one line every 0.1 s: about 3 s from now
    result = result_of(runner.adhoc(LOGS, dict(job="chatty", type="stdout", until=f"^line {awaited}$",
                                               follow_timeout=120)).assert_ok())
    assert result["logs"][0]["matched"] == f"line {awaited}"
    printed = numbers(result["stdout_lines"], "line")
    # It returned once the line came, not at the deadline: 120 s would be 1,200 more lines.
    assert awaited in printed and printed[-1] - awaited < 300


def test_until_fails_with_the_tail_seen_when_the_timeout_passes(runner):
    run = runner.adhoc(LOGS, dict(job="slow", until="NEVER", follow_timeout=1))
    message = failure(run)
    assert "no line matched until 'NEVER'" in message and "READY" in message
    assert result_of(run)["stdout_lines"] == ["READY"]


def test_follow_ends_when_the_task_has_finished(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="crashed", follow=True, follow_timeout=120), timeout=100).assert_ok())
    assert result["stderr"] == "boom\n"


def test_follow_returns_new_lines_of_a_running_task(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="chatty", type="stdout", follow=True, follow_timeout=2,
                                               tail_bytes=20)).assert_ok())
    seen = numbers(result["stdout_lines"][1:], "line")
    assert len(seen) >= 5 and seen == list(range(seen[0], seen[0] + len(seen)))


@pytest.mark.parametrize("args, expected", [
    (dict(job="pair"), "several tasks (left, right): set task"),
    (dict(job="pair", task="middle"), "no task 'middle' in this allocation; its tasks are: left, right"),
    (dict(job="chaty"), 'job "chaty" not found'),
    (dict(job="slow", until="(unclosed"), "until is not a valid regular expression"),
    (dict(job="ghost"), 'task "ghost" not started yet'),
    (dict(job="slow", tail_lines=0), "tail_lines must be at least 1"),
    (dict(type="stdout"), "set at least one selector option"),
])
def test_bad_inputs_fail_with_one_line(runner, args, expected):
    assert expected in failure(runner.adhoc(LOGS, args))


def test_a_token_without_read_logs_is_told_what_it_needs(runner):
    run = runner.adhoc(LOGS, dict(job="crashed"), env={"NOMAD_TOKEN": NO_FS})
    message = failure(run)
    assert "Permission denied: the token needs the read-logs or read-fs capability in namespace 'default'" in message
    # Nomad 1.6 answers the logs endpoint's refusal with 500 "Permission denied" (403 only since PR #27098).
    assert result_of(run)["status"] == 500 and result_of(run)["address"] == runner.address
    assert NO_FS not in runner.adhoc(LOGS, dict(job="crashed"), env={"NOMAD_TOKEN": NO_FS}, verbosity=4).output


def test_a_read_logs_token_is_enough(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="crashed", type="stderr"), env={"NOMAD_TOKEN": LOGS_ONLY}).assert_ok())
    assert result["stderr_lines"] == ["boom"]


def test_check_mode_reads_the_same(runner):
    result = result_of(runner.adhoc(LOGS, dict(job="crashed", type="stderr"), check=True).assert_ok())
    assert result["stderr"] == "boom\n" and result["changed"] is False


def wait_with_peak_rss(process, timeout):
    """(exit code, peak RSS in MiB of the process and its waited-for children), from os.wait4."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{process.args} did not end in {timeout} s")
        time.sleep(0.2)


def logs_requests_of(emulator, alloc_id):
    return sum(count for key, count in emulator.control.requests().items()
               if key.startswith(f"GET /v1/client/fs/logs/{alloc_id}"))


def test_following_a_task_that_writes_256_mib_keeps_memory_bounded(runner, emulator):
    """A followed stream keeps only max_bytes (1 MiB): the module's memory must not grow with the log."""
    flood = allocation_of(emulator, "flood")["ID"]
    record = runner.workdir / "flood.jsonl"
    env = dict(runner.environment(), NOMADOPS_RECORD_RESULTS=str(record))

    def follow(job):
        arguments = dict(job=job, type="stdout", tail_lines=2, follow=True, follow_timeout=600)
        argv = [str(VENV_BIN / "ansible"), "localhost", "-m", LOGS, "-a", json.dumps(arguments)]
        return subprocess.Popen(argv, cwd=runner.workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    baseline_rc, baseline_mib = wait_with_peak_rss(follow("crashed"), 120)
    assert baseline_rc == 0
    before = logs_requests_of(emulator, flood)
    process = follow("flood")
    wait_until(lambda: logs_requests_of(emulator, flood) > before, timeout=60, what="the follow of flood to start")
    signalled = requests.post(f"{emulator.address}/v1/client/allocation/{flood}/signal", timeout=10,
                              json={"Signal": "SIGUSR1", "Task": "flooder"}, headers={"X-Nomad-Token": MANAGEMENT})
    assert signalled.status_code == 200, signalled.text
    rc, peak_mib = wait_with_peak_rss(process, 600)
    result = json.loads(record.read_text().splitlines()[-1])["result"]
    assert rc == 0, result
    assert result["stdout_lines"][-1] == "FLOOD END" and result["logs"][0]["truncated"] is True
    assert peak_mib - baseline_mib < 64, f"peak RSS {peak_mib:.0f} MiB against {baseline_mib:.0f} MiB for a short log"
