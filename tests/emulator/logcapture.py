# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Task log capture like Nomad's logmon: <alloc dir>/alloc/logs/<task>.<stdout|stderr>.<N>, rotated by size.

Each task's stdout and stderr are pipes read by one thread each (independent of the event loop, so a busy loop
never stalls a task). The rotator appends to the highest existing index (also after a restart), opens N+1 when
the current file reaches max_file_size (cutting at the last newline of the chunk that crosses the limit, when
there is one) and deletes all but the max_files highest indexes.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading

MIB = 1024 * 1024
DEFAULT_MAX_FILES = 10
DEFAULT_MAX_FILE_SIZE = 10 * MIB
_READ_SIZE = 64 * 1024


class LogSpecError(ValueError):
    """A task's `logs` mapping in the scenario is unusable; str() says what to fix."""


def log_settings(spec) -> dict:
    """{max_files, max_file_size (bytes)} from a scenario task's `logs` mapping (Nomad's MB, or exact bytes)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise LogSpecError("logs must be a mapping with max_files, max_file_size (MB) or max_file_size_bytes")
    unknown = set(spec) - {"max_files", "max_file_size", "max_file_size_bytes", "disabled"}
    if unknown:
        raise LogSpecError(f"logs has unknown keys {sorted(unknown)}; use max_files, max_file_size (MB), "
                           "max_file_size_bytes, disabled")
    if "max_file_size" in spec and "max_file_size_bytes" in spec:
        raise LogSpecError("logs: give max_file_size (MB) or max_file_size_bytes, not both")
    size = spec.get("max_file_size_bytes", None)
    size = _positive_int(spec, "max_file_size_bytes") if size is not None else \
        _positive_int(spec, "max_file_size", DEFAULT_MAX_FILE_SIZE // MIB) * MIB
    return {"max_files": _positive_int(spec, "max_files", DEFAULT_MAX_FILES), "max_file_size": size,
            "disabled": bool(spec.get("disabled", False))}


def _positive_int(spec: dict, key: str, default=None) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise LogSpecError(f"logs.{key} must be a positive integer, got {value!r}")
    return value


def log_indexes(logs_dir: str, task: str, kind: str) -> list:
    """Integer indexes of <task>.<kind>.<N> files, ascending (non-integer suffixes ignored here)."""
    pattern = re.compile(re.escape(f"{task}.{kind}.") + r"(\d+)$")
    try:
        names = os.listdir(logs_dir)
    except FileNotFoundError:
        return []
    return sorted(int(match.group(1)) for match in map(pattern.match, names) if match)


class Rotator:
    """Writes one stream of a task into size-limited numbered files."""

    def __init__(self, logs_dir: str, task: str, kind: str, max_files: int, max_file_size: int):
        self.logs_dir, self.prefix = logs_dir, f"{task}.{kind}."
        self.task, self.kind = task, kind
        self.max_files, self.max_file_size = max_files, max_file_size
        existing = log_indexes(logs_dir, task, kind)
        self.index = existing[-1] if existing else 0
        self.handle = open(self.path(self.index), "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self.size = self.handle.tell()

    def path(self, index: int) -> str:
        return os.path.join(self.logs_dir, f"{self.prefix}{index}")

    def write(self, data: bytes) -> None:
        while data:
            room = self.max_file_size - self.size
            if room <= 0:
                self.rotate()
                continue
            piece = data[:room]
            if len(data) > room:
                cut = piece.rfind(b"\n")
                if cut < 0 and self.size > 0:  # no whole line fits: keep the line whole in the next file
                    self.rotate()
                    continue
                piece = piece[:cut + 1] if cut >= 0 else piece
            self.handle.write(piece)
            self.size += len(piece)
            data = data[len(piece):]
            if data:
                self.rotate()

    def rotate(self) -> None:
        self.handle.close()
        self.index += 1
        self.handle = open(self.path(self.index), "ab", buffering=0)  # noqa: SIM115
        self.size = 0
        for old in log_indexes(self.logs_dir, self.task, self.kind)[:-self.max_files]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(old))

    def close(self) -> None:
        self.handle.close()


def _pump(read_fd: int, rotator: Rotator) -> None:
    try:
        while True:
            data = os.read(read_fd, _READ_SIZE)
            if not data:
                break
            rotator.write(data)
    finally:
        os.close(read_fd)
        rotator.close()


def make_layout(alloc_dir: str, task_name: str) -> None:
    """Nomad's allocation dir: alloc/{logs,data,tmp} shared, <task>/{local,secrets,tmp} per task."""
    for parts in (("alloc", "logs"), ("alloc", "data"), ("alloc", "tmp"),
                  (task_name, "local"), (task_name, "secrets"), (task_name, "tmp")):
        os.makedirs(os.path.join(alloc_dir, *parts), exist_ok=True)


@contextlib.contextmanager
def captured_output(alloc_dir: str, task):
    """Yield (stdout, stderr) file descriptors for the task's process; pump them into rotated log files.

    The write ends are closed in the emulator when the block ends (the child keeps its copies), so each pump
    ends when the last process of the task's group has closed the pipe.
    """
    settings = getattr(task, "log_settings", None) or log_settings(None)
    make_layout(alloc_dir, task.name)
    logs_dir = os.path.join(alloc_dir, "alloc", "logs")
    if settings["disabled"]:
        with open(os.devnull, "wb") as sink:
            yield sink.fileno(), sink.fileno()
        return
    pipes = [os.pipe(), os.pipe()]
    try:
        for (read_fd, _write_fd), kind in zip(pipes, ("stdout", "stderr")):
            rotator = Rotator(logs_dir, task.name, kind, settings["max_files"], settings["max_file_size"])
            threading.Thread(target=_pump, args=(read_fd, rotator), daemon=True,
                             name=f"logs-{task.name}-{kind}").start()
        yield pipes[0][1], pipes[1][1]
    finally:
        for _read_fd, write_fd in pipes:
            os.close(write_fd)
