# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where one task's time goes: the steps of a `nomad_job` plan, a `nomad_alloc_exec` or a `nomad_alloc_fetch`
task, in ms, inside a real `ansible-playbook` run (the numbers behind benchmarks/analysis.md for sections 4 and 9).

    .venv/bin/python benchmarks/profile_task.py plan [--runs 5] [--format json|hcl|templated] [--cprofile DIR]
    .venv/bin/python benchmarks/profile_task.py exec [--runs 3] [--bytes 268435456] [--cprofile DIR]
    .venv/bin/python benchmarks/profile_task.py fetch [--runs 5] [--bytes 268435456] [--dest-dir DIR] [--cprofile DIR]
    .venv/bin/python benchmarks/profile_task.py import [--runs 7] [--action nomad_job] TREE [TREE ...]

Starts the emulator and the playbook of the section (section_jobs.plan_playbooks, sections.exec_playbooks),
then runs, interleaved, `runs` times each: the playbook and the `debug` baseline as `make bench` runs them, and
both again through this script's `inside` command, which runs ansible-playbook in-process with timers around
ansible-core's per-task steps (controller: queueing the worker, reading its result, the callbacks; worker:
templating the arguments, loading the action, running it, sending the result) and the collection's steps.
The timers are plain monotonic clocks around a few dozen calls, so they cost microseconds; `--cprofile DIR`
also writes a cProfile of the controller and of every worker to DIR (cProfile makes Python code about twice as
slow: use it for where, the timers for how much). `import` measures what the controller pays to import one
action plugin of the collection from each collections TREE (for example a copy from before a change and
build/dev-collections), in fresh processes, interleaved: CPU time, with requests already imported (the floor
imports it too). Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import atexit
import builtins
import functools
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SELF = Path(__file__).resolve()
COLLECTION = "ansible_collections.nomadops.nomad.plugins."
CORE_CONTROLLER_STEPS = {
    "controller: queue the task (fork a worker)": ("ansible.plugins.strategy", "StrategyBase._queue_task"),
    "controller: task variables (VariableManager.get_vars)": ("ansible.vars.manager", "VariableManager.get_vars"),
    "controller: compile collection modules from source (whole run)":
        ("ansible.utils.collection_loader._collection_finder", "_AnsibleCollectionPkgLoaderBase.get_code"),
}
CORE_WORKER_STEPS = {
    "worker: TaskExecutor.run (all of the task in the worker)": ("ansible.executor.task_executor", "TaskExecutor.run"),
    "worker: template and validate the task (Task.post_validate)": ("ansible.playbook.task", "Task.post_validate"),
    "worker: load the action plugin":
        ("ansible.executor.task_executor", "TaskExecutor._get_action_handler_with_module_context"),
}
# The steps every controller-side action of the collection goes through, then each scenario's own.
ACTION_STEPS = {
    "action: run (ModuleLikeActionBase.run)": ("plugin_utils._controller_action", "ModuleLikeActionBase.run"),
    "action: validate the arguments (ActionModuleContext)":
        ("plugin_utils._controller_action", "ActionModuleContext.__init__"),
    "action: scrub no_log values from the result (remove_values)":
        ("plugin_utils._controller_action", "remove_values"),
}
COLLECTION_STEPS = {
    "plan": {
        **ACTION_STEPS,
        "action: options from the play (ansible_nomad_* variables, ini)":
            ("plugin_utils._options", "play_connection_values"),
        "nomad_job: deploy_job (everything between arguments and result)":
            ("module_utils.jobs.deploy", "deploy_job"),
        "nomad_job: the spec to an API job (job_of_request)": ("module_utils.jobs.spec", "job_of_request"),
        "nomad_job: POST plan (plan_job)": ("module_utils.jobs.spec", "plan_job"),
        "nomad_job: GET the stored job (read_job)": ("module_utils.jobs.spec", "read_job"),
        "nomad_job: render the plan as text (render_plan)": ("module_utils.jobs.plan_render", "render_plan"),
        "client: open the session (NomadClient.__init__)": ("module_utils.common.client", "NomadClient.__init__"),
    },
    "exec": {
        **ACTION_STEPS,
        "exec: read the allocation (full_allocation)": ("action.nomad_alloc_exec", "full_allocation"),
        "exec: the WebSocket session (run_exec)": ("module_utils.allocations.exec", "run_exec"),
        "exec: bytes to the result's text (shape_output)": ("module_utils.allocations.exec", "shape_output"),
    },
    "fetch": {
        **ACTION_STEPS,
        "fetch: resolve the allocation ID (resolve_allocation_id)": ("action.nomad_alloc_fetch", "resolve_allocation_id"),
        "fetch: stat src (stat_path)": ("action.nomad_alloc_fetch", "stat_path"),
        "fetch: temporary file, download, checks, move (_download_beside)":
            ("action.nomad_alloc_fetch", "ActionModule._download_beside"),
        "fetch: stream, write and hash the bytes (copy_file)": ("module_utils.allocations.files", "copy_file"),
        "fetch: size check of the temporary file (_check_written_size)":
            ("action.nomad_alloc_fetch", "_check_written_size"),
        "fetch: chmod and rename into place (_move)": ("action.nomad_alloc_fetch", "_move"),
    },
}


WORKER_RUN = "worker: WorkerProcess.run, from the fork's first Python line to sending the result"


# ------------------------------------------------------------------------------------------ inside ansible-playbook
class Recorder:
    """(label, start, seconds) of every timed call in this process; written to a JSON file when it ends."""

    def __init__(self, directory: Path, role: str) -> None:
        self.directory, self.role = directory, role
        self.events: list = []
        self.task_name = ""

    def timed(self, label: str, function):
        @functools.wraps(function)
        def timed_call(*args, **kwargs):
            start = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                self.events.append((label, start, time.monotonic() - start))
        timed_call.__wrapped_original__ = function
        return timed_call

    def write_at_exit(self) -> None:
        self.events.append(("ended", time.monotonic(), 0.0))
        self.write()

    def write(self) -> None:
        path = self.directory / f"{self.role}-{os.getpid()}.json"
        path.write_text(json.dumps({"role": self.role, "task": self.task_name, "events": self.events}))


def patch(module_name: str, qualname: str, wrapper_of) -> None:
    """Replace module.qualname (a function or Class.method) with wrapper_of(original), also where other modules of
    the collection imported the function by name."""
    module = importlib.import_module(module_name)
    owner, _dot, name = qualname.rpartition(".")
    holder = getattr(module, owner) if owner else module
    original = getattr(holder, name)
    wrapped = wrapper_of(original)
    setattr(holder, name, wrapped)
    if owner:
        return
    for other in list(sys.modules.values()):
        if getattr(other, "__name__", "").startswith(COLLECTION) and getattr(other, name, None) is original:
            setattr(other, name, wrapped)


def time_imports(recorder: Recorder, label: str) -> None:
    """Top-level `import` statements (nested ones are inside them), as one label."""
    original = builtins.__import__
    depth = [0]

    def timed_import(*args, **kwargs):
        depth[0] += 1
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                recorder.events.append((label, start, time.monotonic() - start))
    builtins.__import__ = timed_import


def install_controller_timers(recorder: Recorder) -> None:
    for label, (module, qualname) in CORE_CONTROLLER_STEPS.items():
        patch(module, qualname, functools.partial(recorder.timed, label))

    def queued(original):
        @functools.wraps(original)
        def queue(strategy, host, task, task_vars, play_context):
            start = time.monotonic()
            try:
                return original(strategy, host, task, task_vars, play_context)
            finally:
                recorder.events.append((f"queued {task.get_name()}", start, 0.0))
        return queue

    def processed(original):
        @functools.wraps(original)
        def process(strategy, *args, **kwargs):
            start = time.monotonic()
            results = original(strategy, *args, **kwargs)
            if results:
                seconds = time.monotonic() - start
                recorder.events.append(("controller: process the result (callbacks' copies, callbacks, register)",
                                        start, seconds))
                for raw in results:
                    recorder.events.append((f"processed {raw.task.get_name()}", start + seconds, 0.0))
            return results
        return process

    patch("ansible.plugins.strategy", "StrategyBase._queue_task", queued)
    patch("ansible.plugins.strategy", "StrategyBase._process_pending_results", processed)


def install_worker_timers(recorder: Recorder, scenario: str) -> None:
    for label, (module, qualname) in CORE_WORKER_STEPS.items():
        patch(module, qualname, functools.partial(recorder.timed, label))
    time_imports(recorder, "worker: import statements run in the worker")

    def loaded(original):
        """Time the collection's steps once the action plugin (and so the collection's code) is imported."""
        @functools.wraps(original)
        def load(executor, *args, **kwargs):
            handler = original(executor, *args, **kwargs)
            if type(handler[0]).__module__.startswith(COLLECTION):
                for label, (module, qualname) in COLLECTION_STEPS[scenario].items():
                    patch(COLLECTION + module, qualname, functools.partial(recorder.timed, label))
            return handler
        return load

    patch("ansible.executor.task_executor", "TaskExecutor._get_action_handler_with_module_context", loaded)


def inside(directory: Path, scenario: str, use_cprofile: bool, playbook_argv: list) -> None:
    """ansible-playbook in this process, with the timers (and cProfile) in the controller and in every worker."""
    import cProfile

    from ansible.cli.playbook import main as playbook_main
    from ansible.executor.process.worker import WorkerProcess

    controller = Recorder(directory, "controller")
    controller.events.append(("started", time.monotonic(), 0.0))
    install_controller_timers(controller)
    time_imports(controller, "controller: import statements (whole run)")
    original_run = WorkerProcess.run

    def profiled_worker_run(worker):
        recorder = Recorder(directory, "worker")
        recorder.task_name = worker._task.get_name()
        install_worker_timers(recorder, scenario)
        start = time.monotonic()
        profile = cProfile.Profile() if use_cprofile else None

        def written_before_sending(original):
            """The controller may end the worker as soon as it has the result: write the timers first."""
            @functools.wraps(original)
            def send(queue, task_result):
                if profile:
                    profile.disable()
                    profile.dump_stats(str(directory / f"worker-{os.getpid()}.pstats"))
                recorder.events.append((WORKER_RUN, start, time.monotonic() - start))
                recorder.write()
                return original(queue, task_result)
            return send

        patch("ansible.executor.task_queue_manager", "FinalQueue.send_task_result", written_before_sending)
        if profile:
            profile.enable()
        return original_run(worker)

    WorkerProcess.run = profiled_worker_run
    atexit.register(controller.write_at_exit)
    sys.argv = ["ansible-playbook", *playbook_argv]
    if use_cprofile:
        profile = cProfile.Profile()
        atexit.register(lambda: profile.dump_stats(str(directory / "controller.pstats")))
        profile.enable()
    playbook_main()


# ------------------------------------------------------------------------------------------ the parent
def task_breakdown(directory: Path, task: str) -> dict:
    """{label: seconds} of one timed run: the whole controller timeline (start-up, each task's span, the end), the
    steps of `task`'s worker, and the controller's steps during `task`'s span."""
    files = [json.loads(path.read_text()) for path in directory.glob("*.json")]
    controller = next(data for data in files if data["role"] == "controller")
    worker = next(data for data in files if data["role"] == "worker" and data["task"] == task)
    marks = {label: start for label, start, _seconds in controller["events"] if not label.startswith("controller:")}
    queued, done = marks[f"queued {task}"], marks[f"processed {task}"]
    tasks = [label[len("queued "):] for label in marks if label.startswith("queued ")]
    breakdown = {"controller: start-up to the first task queued": marks[f"queued {tasks[0]}"] - marks["started"]}
    breakdown["task span of the measured task (queued to its result processed)"] = done - queued
    breakdown["task spans of the other tasks"] = sum(marks[f"processed {name}"] - marks[f"queued {name}"]
                                                     for name in tasks if name != task)
    breakdown["controller: last result processed to exit"] = marks["ended"] - marks[f"processed {tasks[-1]}"]
    for label, _start, seconds in worker["events"]:
        breakdown[label] = breakdown.get(label, 0.0) + seconds
    for label, start, seconds in controller["events"]:
        whole_run = label.endswith("(whole run)")
        if label.startswith("controller:") and (whole_run or queued <= start <= done):
            breakdown[label] = breakdown.get(label, 0.0) + seconds
    worker_run = breakdown.get(WORKER_RUN, 0.0)
    breakdown["controller and fork, outside the worker's run"] = done - queued - worker_run
    return breakdown


def timed_run(ansible, address: str, playbook: Path, scenario: str, task: str, cprofile_dir: Path | None):
    from benchmarks.measure import PYTHON, run_child

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        argv = [PYTHON, str(SELF), "inside", str(directory), scenario, "1" if cprofile_dir else "0", str(playbook)]
        sample = run_child(argv, env=ansible.environment(address), cwd=ansible.workdir)
        sample.data["breakdown"] = task_breakdown(directory, task)
        if cprofile_dir:
            cprofile_dir.mkdir(parents=True, exist_ok=True)
            for path in directory.glob("*.pstats"):
                path.replace(cprofile_dir / f"{playbook.stem}-{path.name}")
    return sample


def prepared_plan(settings, ansible, emulator, arguments):
    from benchmarks import section_jobs

    job_file, hcl_file = section_jobs.prepare_unchanged_job(settings, emulator.address)
    return section_jobs.plan_playbooks(ansible, job_file, hcl_file)[arguments.format], "Register the unchanged job"


def prepared_exec(settings, ansible, emulator, arguments):
    from benchmarks import sections

    alloc_id = emulator.allocations("default")[0]["ID"]
    return sections.exec_playbooks(ansible, alloc_id, arguments.bytes)["stream"], "Stream stdout"


def prepared_fetch(settings, ansible, emulator, arguments):
    """The section 7 playbook with a literal dest (the timed runs take no extra vars); the file is removed and
    the page cache written back before every run (see FetchRuns)."""
    from benchmarks import section_logs

    alloc_id = section_logs._Runner(None, emulator.address, settings.workdir).wait_for_the_task(emulator)
    task = {"name": "Fetch the file", "nomadops.nomad.nomad_alloc_fetch": {
        "id": alloc_id, "src": "alloc/data/big.bin", "dest": str(fetched_path(arguments)), "flat": True}}
    return ansible.write_playbook("profile-fetch", [task]), "Fetch the file"


def fetched_path(arguments) -> Path:
    return Path(arguments.dest_dir or tempfile.gettempdir()) / "nomadops-profile-fetched.bin"


def synced_without_dest(arguments, run):
    """`run` after the fetched file is removed, then section 7's after_sync (os.sync() before the run)."""
    from benchmarks.section_logs import after_sync

    def without_dest():
        fetched_path(arguments).unlink(missing_ok=True)
        return after_sync(run)()
    return without_dest


def emulator_for(scenario: str, settings, arguments):
    from benchmarks import section_jobs, section_logs, sections

    if scenario == "fetch":
        return sections.EmulatorProcess(scenario=str(section_logs.write_scenario(settings, 1024, arguments.bytes)))
    if scenario == "plan":
        return sections.EmulatorProcess(scenario=str(section_jobs.scenario(settings)))
    return sections.EmulatorProcess(scenario=str(sections.write_scenario(settings, "exec", virtual_jobs=1)), virtual=1)


def report(samples: dict, task: str) -> None:
    from benchmarks.measure import cpus, walls

    baseline, playbook = walls(samples["baseline"]).median, walls(samples["playbook"]).median
    print(f"\nplaybook {playbook:.3f} s, debug baseline {baseline:.3f} s (medians of {len(samples['playbook'])} "
          f"interleaved runs): task time {playbook - baseline:.3f} s; CPU {cpus(samples['playbook']).median:.3f} s "
          f"and {cpus(samples['baseline']).median:.3f} s: task CPU "
          f"{cpus(samples['playbook']).median - cpus(samples['baseline']).median:.3f} s")
    print(f"timed runs: playbook {walls(samples['timed']).median:.3f} s, baseline "
          f"{walls(samples['timed baseline']).median:.3f} s")
    debug = [sample.data["breakdown"] for sample in samples["timed baseline"]]
    rows = [sample.data["breakdown"] for sample in samples["timed"]]
    labels = list(dict.fromkeys(label for row in rows for label in row))
    print(f"\n{'step (inclusive; medians of the timed runs)':78s} {task[:18]:>18s} {'debug task':>11s}")
    for label in labels:
        mine = statistics.median(row.get(label, 0.0) for row in rows) * 1000
        theirs = statistics.median(row.get(label, 0.0) for row in debug) * 1000
        print(f"{label[:78]:78s} {mine:15.1f} ms {theirs:8.1f} ms")


def import_action(tree: str, action: str) -> None:
    """In this fresh process: CPU time of importing the action from `tree` as ansible-core's collection loader does."""
    import requests  # noqa: F401  (imported first: measure the collection's own part)
    from ansible.plugins.action import ActionBase  # noqa: F401
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    _AnsibleCollectionFinder(paths=[tree])._install()
    start = time.process_time()
    importlib.import_module(f"{COLLECTION}action.{action}")
    print(json.dumps({"cpu": time.process_time() - start,
                      "modules": sum(1 for name in sys.modules if name.startswith(COLLECTION))}))


def compare_imports(trees: list, action: str, runs: int) -> None:
    from benchmarks.measure import PYTHON, alternate, run_child, worker_environment

    samples = alternate({tree: functools.partial(run_child, [PYTHON, str(SELF), "import-one", tree, action],
                                                 env=worker_environment()) for tree in trees}, runs)
    for tree, runs_of_tree in samples.items():
        cpu = statistics.median(sample.data["cpu"] for sample in runs_of_tree) * 1000
        print(f"{tree}: importing {action} took {cpu:.1f} ms CPU (median of {len(runs_of_tree)}), "
              f"{runs_of_tree[0].data['modules']} modules of the collection")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "inside":
        inside(Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "import-one":
        import_action(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "import":
        parser = argparse.ArgumentParser(description="CPU time of importing one action plugin, per collections tree")
        parser.add_argument("--runs", type=int, default=7)
        parser.add_argument("--action", default="nomad_job")
        parser.add_argument("trees", nargs="+")
        arguments = parser.parse_args(sys.argv[2:])
        compare_imports([str(Path(tree).resolve()) for tree in arguments.trees], arguments.action, arguments.runs)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=("plan", "exec", "fetch"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--format", choices=("json", "hcl", "templated"), default="json",
                        help="plan: `src:` the JSON file, `src:` the HCL file, or the JSON through a template as `spec`")
    parser.add_argument("--bytes", type=int, default=256 * 1024 * 1024, help="exec: bytes of stdout; fetch: of the file")
    parser.add_argument("--dest-dir", help="fetch: the directory the file is fetched into (default: the temp dir)")
    parser.add_argument("--cprofile", type=Path, help="also write cProfile stats of every process here")
    arguments = parser.parse_args()

    from benchmarks import sections
    from benchmarks.measure import alternate

    with tempfile.TemporaryDirectory() as workdir:
        settings = sections.Settings.for_mode(False, None, Path(workdir))
        ansible = settings.ansible()
        baseline = sections.baseline_playbook(ansible)
        with emulator_for(arguments.scenario, settings, arguments) as emulator:
            prepare = {"plan": prepared_plan, "exec": prepared_exec, "fetch": prepared_fetch}[arguments.scenario]
            playbook, task = prepare(settings, ansible, emulator, arguments)
            address = emulator.address
            runs = {
                "playbook": lambda: ansible.playbook(playbook, address),
                "baseline": lambda: ansible.playbook(baseline, address),
                "timed": lambda: timed_run(ansible, address, playbook, arguments.scenario, task, arguments.cprofile),
                "timed baseline": lambda: timed_run(ansible, address, baseline, arguments.scenario, "Report",
                                                    arguments.cprofile),
            }
            if arguments.scenario == "fetch":
                runs = {name: synced_without_dest(arguments, run) for name, run in runs.items()}
            samples = alternate(runs, arguments.runs)
    report(samples, task)


if __name__ == "__main__":
    main()
