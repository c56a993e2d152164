# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Real task processes: start (own process group), watch exits, signal, restart, stop, shut down."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from . import restarts
from .logcapture import captured_output
from .nomadtime import now_ns, rfc3339
from .state import Allocation, Emulator, Task

HEALTHY_AFTER_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 2.0
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def reset_inherited_signal_state():
    """Run in the forked child: a Nomad task starts with default signal dispositions and an empty mask.

    Ignored signals survive exec, so an emulator started under nohup (SIGHUP ignored) would otherwise
    give every task a SIGHUP it cannot trap.
    """
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(signum) == signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            continue
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class TaskNotRunning(Exception):
    pass


def signal_number(name: str) -> int:
    """Nomad's exec/raw_exec drivers look names up case-sensitively and fall back to SIGINT."""
    member = getattr(signal.Signals, name, None) if name.startswith("SIG") else None
    if isinstance(member, signal.Signals):
        return int(member)
    return int(signal.SIGINT)


def _signal_group(pid, signum: int) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self._background: set = set()

    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- allocation lifecycle --------------------------------------------------------------------
    def start_allocation(self, alloc: Allocation) -> None:
        if not alloc.virtual:
            self.spawn(self.run_allocation(alloc))

    async def run_allocation(self, alloc: Allocation) -> None:
        alloc.alloc_dir = os.path.join(self.emulator.state_dir, alloc.id)
        os.makedirs(os.path.join(alloc.alloc_dir, "alloc", "logs"), exist_ok=True)
        for task in alloc.tasks.values():
            task.add_event("Received", "Task received by client")
        if not await self.run_prestart(alloc):
            return
        for task in alloc.tasks.values():
            if not task.is_prestart_ephemeral and task.state != "running" and not alloc.terminal:
                await self.start_task(alloc, task)
        if alloc.terminal or alloc.client_status != "pending":
            return
        alloc.client_status = "running"
        alloc.client_description = "Tasks are running"
        self.register_services(alloc)
        self.emulator.touch(alloc, client_update=True)
        if alloc.job["Type"] == "service":
            self.spawn(self.mark_healthy_later(alloc))

    async def run_prestart(self, alloc: Allocation) -> bool:
        """Run prestart non-sidecar tasks to completion; False (and the alloc failed) if one fails."""
        for task in alloc.tasks.values():
            if not task.is_prestart_ephemeral:
                continue
            await self.start_task(alloc, task)
            await task.exited.wait()
            if task.failed:
                self.finish_allocation(alloc)
                return False
        return True

    async def mark_healthy_later(self, alloc: Allocation) -> None:
        await asyncio.sleep(HEALTHY_AFTER_SECONDS)
        if alloc.terminal or alloc.deployment_status or alloc.deployment_id:  # deployments.py judges those
            return
        if not all(task.state == "running" for task in alloc.main_tasks):
            return
        if not all(task.healthy for task in alloc.tasks.values()):
            return
        index = self.emulator.bump()
        alloc.deployment_status = {"Healthy": True, "Timestamp": rfc3339(now_ns()), "Canary": False,
                                   "ModifyIndex": index}
        self.emulator.touch(alloc, client_update=True)

    def register_services(self, alloc: Allocation) -> None:
        from .checks import start_checks
        from .scenario import service_registrations
        start_checks(self.emulator, alloc)
        if alloc.service_specs:
            index = self.emulator.bump()
            alloc.services = service_registrations(self.emulator, alloc, index)
            self.emulator.services_index = index

    def deregister_services(self, alloc: Allocation) -> None:
        from .checks import stop_checks
        stop_checks(alloc)
        if alloc.services:
            alloc.services = []
            self.emulator.services_index = self.emulator.bump()

    def finish_allocation(self, alloc: Allocation) -> None:
        failed = any(task.failed for task in alloc.tasks.values() if not task.is_sidecar)
        alloc.client_status = "failed" if failed else "complete"
        alloc.client_description = "Failed tasks" if failed else "All tasks have completed"
        self.deregister_services(alloc)
        self.emulator.touch(alloc, client_update=True)

    # --- one task --------------------------------------------------------------------------------
    def task_environment(self, alloc: Allocation, task: Task) -> dict:
        env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
        env.update(task.job_env)
        env.update({
            "NOMAD_ALLOC_ID": alloc.id, "NOMAD_ALLOC_NAME": alloc.name, "NOMAD_ALLOC_INDEX": str(alloc.index_in_group),
            "NOMAD_JOB_ID": alloc.job_id, "NOMAD_JOB_NAME": alloc.job["Name"], "NOMAD_GROUP_NAME": alloc.task_group,
            "NOMAD_TASK_NAME": task.name, "NOMAD_NAMESPACE": alloc.namespace, "NOMAD_REGION": self.emulator.region,
            "NOMAD_DC": self.emulator.datacenter, "NOMAD_TASK_DIR": task.task_dir,
            "NOMAD_ALLOC_DIR": os.path.join(alloc.alloc_dir, "alloc"),
        })
        return env

    async def start_task(self, alloc: Allocation, task: Task) -> None:
        if not alloc.alloc_dir:
            alloc.alloc_dir = os.path.join(self.emulator.state_dir, alloc.id)
            os.makedirs(os.path.join(alloc.alloc_dir, "alloc", "logs"), exist_ok=True)
        if task.restart_wait is not None:  # a user restart during a policy delay supersedes the delay
            task.restart_wait.cancel()
            task.restart_wait = None
        self.emulator.ensure_task_dir(alloc, task)
        task.env = self.task_environment(alloc, task)
        task.add_event("Task Setup", "Building Task Directory", Message="Building Task Directory")
        if task.exited is None or task.exited.is_set():  # a policy restart keeps the run's waiters waiting
            task.exited = asyncio.Event()
        task.expected_exit = False
        try:
            with captured_output(alloc.alloc_dir, task) as (stdout, stderr):
                process = await asyncio.create_subprocess_exec(
                    *task.command, cwd=task.task_dir, env=task.env, stdin=subprocess.DEVNULL,
                    stdout=stdout, stderr=stderr, start_new_session=True,
                    preexec_fn=reset_inherited_signal_state)
        except OSError as err:
            task.state = "dead"
            task.failed = True
            task.finished_at = now_ns()
            task.add_event("Driver Failure", f"failed to launch command: {err.strerror}", FailsTask=True)
            task.exited.set()
            self.emulator.touch(alloc, client_update=True)
            return
        task.process = process
        task.pid = process.pid
        task.restart_window_start = task.restart_window_start or now_ns()
        task.state = "running"
        task.started = True
        task.failed = False
        task.started_at = now_ns()
        task.finished_at = 0
        task.add_event("Started", "Task started by client")
        self.emulator.touch(alloc, client_update=True)
        self.spawn(self.watch_task(alloc, task, process))

    async def watch_task(self, alloc: Allocation, task: Task, process) -> None:
        returncode = await process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # leftovers of the group (e.g. a sleeping child)
        if task.process is not process:
            return  # superseded by a newer run of the task; that run owns the state
        exit_code, signum = (0, -returncode) if returncode < 0 else (returncode, 0)
        task.pid = None
        task.process = None
        task.finished_at = now_ns()
        message = f"Exit Code: {exit_code}" + (f", Signal: {signum}" if signum else "")
        task.add_event("Terminated", message, ExitCode=exit_code, Signal=signum,
                       Details={"exit_code": str(exit_code), "signal": str(signum)})
        expected = task.expected_exit
        policy = None if expected else restarts.task_policy(alloc, task.name)
        if policy is None:
            task.state = "dead"
            task.failed = not expected and returncode != 0
        elif self.apply_restart_policy(alloc, task, policy, returncode == 0):
            return
        task.exited.set()
        self.emulator.touch(alloc, client_update=True)
        if not expected:
            self.after_unexpected_exit(alloc, task)

    def apply_restart_policy(self, alloc: Allocation, task: Task, policy: dict, exit_ok: bool) -> bool:
        """The restart tracker's verdict on an exit (restarts.py); True when the task will run again."""
        on_success = restarts.restarts_on_success(alloc.job.get("Type", "service"), task.lifecycle)
        decision = restarts.decide(task, policy, on_success, exit_ok, now_ns(), f"{alloc.id}/{task.name}")
        if not decision.restart:
            task.state = "dead"
            task.failed = decision.fails_task
            if decision.fails_task:
                task.add_event("Not Restarting", decision.reason, RestartReason=decision.reason, FailsTask=True)
            return False
        task.state = "pending"
        task.restarts += 1
        task.add_event("Restarting", restarts.restarting_message(decision), RestartReason=decision.reason,
                       StartDelay=decision.delay_ns)
        task.last_restart = task.events[-1]["Time"]
        if not any(t.state == "running" for t in alloc.tasks.values()):
            alloc.client_status, alloc.client_description = "pending", "No tasks have started"
        self.emulator.touch(alloc, client_update=True)
        task.restart_wait = self.spawn(self.restart_after(alloc, task, decision.delay_ns))
        return True

    async def restart_after(self, alloc: Allocation, task: Task, delay_ns: int) -> None:
        await asyncio.sleep(delay_ns / 1e9)  # the policy's delay itself, not a test wait
        task.restart_wait = None
        if alloc.terminal or alloc.desired_status != "run" or task.state != "pending":
            return
        await self.start_task(alloc, task)
        if task.state == "running" and alloc.client_status == "pending":
            alloc.client_status, alloc.client_description = "running", "Tasks are running"
            self.emulator.touch(alloc, client_update=True)

    def after_unexpected_exit(self, alloc: Allocation, task: Task) -> None:
        if task.is_prestart_ephemeral or alloc.client_status in ("complete", "failed"):
            return
        main = [t for t in alloc.tasks.values() if not t.lifecycle]
        if main and any(t.state != "dead" for t in main):
            return
        self.spawn(self.finish_after_sidecars(alloc))

    async def finish_after_sidecars(self, alloc: Allocation) -> None:
        await self.kill_tasks(alloc, [t for t in alloc.tasks.values() if t.state == "running"])
        if alloc.client_status not in ("complete", "failed"):
            self.finish_allocation(alloc)

    async def kill_task(self, task: Task, signum: int = signal.SIGTERM) -> None:
        if task.process is None or task.exited is None:
            return
        task.expected_exit = True
        task.add_event("Killing", f"Sent interrupt. Waiting {task.kill_timeout:g}s before force killing",
                       KillTimeout=int(task.kill_timeout * 1e9))
        _signal_group(task.pid, signum)
        try:
            await asyncio.wait_for(asyncio.shield(task.exited.wait()), task.kill_timeout)
        except asyncio.TimeoutError:
            _signal_group(task.pid, signal.SIGKILL)
            await task.exited.wait()
        task.add_event("Killed", "Task successfully killed")

    async def kill_tasks(self, alloc: Allocation, tasks) -> None:
        await asyncio.gather(*(self.kill_task(task) for task in tasks))
        if tasks:
            self.emulator.touch(alloc, client_update=True)

    # --- API operations --------------------------------------------------------------------------
    async def stop_allocation(self, alloc: Allocation, *, fail_tasks: bool = False) -> None:
        """The client side of a stop: kill the tasks, then the allocation is complete.

        fail_tasks: Nomad 1.10.3-1.10.5 marks the killed tasks of a migrating batch allocation failed (row 15 of
        the changes reference), so the allocation ends `failed`.
        """
        async with alloc.lifecycle_lock:
            self.cancel_restart_waits(alloc)
            running = [t for t in alloc.tasks.values() if t.state == "running"]
            await self.kill_tasks(alloc, running)
            if alloc.client_status not in ("complete", "failed"):
                for task in running if fail_tasks else ():
                    task.failed = True
                failed = any(task.failed for task in running)
                alloc.client_status = "failed" if failed else "complete"
                alloc.client_description = "Failed tasks" if failed else "All tasks have completed"
                self.deregister_services(alloc)
                self.emulator.touch(alloc, client_update=True)

    @staticmethod
    def cancel_restart_waits(alloc: Allocation) -> None:
        """A task killed while it waits to restart is dead at once (task_runner.go: the kill ends the wait)."""
        for task in alloc.tasks.values():
            if task.restart_wait is None:
                continue
            task.restart_wait.cancel()
            task.restart_wait = None
            task.state = "dead"
            task.finished_at = now_ns()
            task.add_event("Killed", "Task successfully killed")
            if task.exited is not None:
                task.exited.set()

    def stop_virtual(self, alloc: Allocation) -> None:
        for task in alloc.tasks.values():
            task.state = "dead"
            task.finished_at = now_ns()
            task.add_event("Killed", "Task successfully killed")
        alloc.client_status = "complete"
        alloc.client_description = "All tasks have completed"
        self.emulator.touch(alloc, client_update=True)

    def signal_task(self, alloc: Allocation, task: Task, signal_name: str) -> None:
        if task.state != "running":
            raise TaskNotRunning("Task not running")
        signum = signal_number(signal_name)
        task.signals.append(signal.Signals(signum).name)
        task.add_event("Signaling", "Task being sent a signal", TaskSignal=signal_name)
        if not alloc.virtual:
            _signal_group(task.pid, signum)
        self.emulator.touch(alloc, client_update=True)

    async def restart_tasks(self, alloc: Allocation, tasks, *, rerun_prestart: bool = False) -> None:
        """Kill the given tasks, wait for them to exit, then start them again (new PIDs)."""
        now = now_ns()
        for task in tasks:
            task.add_event("Restart Signaled", "User requested task to restart",
                           RestartReason="User requested task to restart")
        if alloc.virtual:
            for task in tasks:
                self.mark_restarted(task, now)
                task.state = "running"
                task.add_event("Started", "Task started by client")
            self.emulator.touch(alloc, client_update=True)
            return
        async with alloc.lifecycle_lock:  # one restart/stop of an allocation at a time
            await asyncio.gather(*(self.kill_task(task) for task in tasks if task.state == "running"))
            for task in tasks:
                self.mark_restarted(task, now)
            if rerun_prestart:
                for task in tasks:
                    if task.is_prestart_ephemeral:
                        await self.start_task(alloc, task)
                        await task.exited.wait()
            for task in tasks:
                if not task.is_prestart_ephemeral and not alloc.terminal:
                    await self.start_task(alloc, task)

    @staticmethod
    def mark_restarted(task: Task, now: int) -> None:
        task.restarts += 1
        task.last_restart = now
        task.add_event("Restarting", "Task restarting in 0s", RestartReason="User requested task to restart")

    async def shutdown(self) -> None:
        running = [task for alloc in self.emulator.allocs.values() if not alloc.virtual
                   for task in alloc.tasks.values() if task.process is not None]
        for task in running:
            task.expected_exit = True
            _signal_group(task.pid, signal.SIGTERM)
        waits = [task.exited.wait() for task in running if task.exited is not None]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), SHUTDOWN_GRACE_SECONDS)
            except asyncio.TimeoutError:
                pass
        for task in running:
            _signal_group(task.pid, signal.SIGKILL)
        for task in running:
            if task.process is not None:
                try:
                    await asyncio.wait_for(task.process.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        for pending in list(self._background):
            pending.cancel()
