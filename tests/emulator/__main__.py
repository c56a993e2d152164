# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""CLI: python -m tests.emulator --scenario FILE [--port N] ... (contract in CONTRIBUTING.md)."""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile

from aiohttp import web

from .scenario import (
    ScenarioError,
    build_jobs,
    build_nodes,
    build_virtual,
    install_faults,
    load_scenario_file,
    scenario_version,
    virtual_settings,
)
from .nomadversion import DEFAULT_VERSION, SUPPORTED_VERSIONS, NomadVersion, UnsupportedVersion
from .server import make_app, make_ssl_context
from .state import Emulator
from .tasks import Supervisor

STARTUP_WAIT_SECONDS = 15.0
HANDLER_SHUTDOWN_SECONDS = 2.0  # blocked long-polls must not hold up the exit
# Nomad serves HTTP with Go's net/http defaults: request line and headers up to 1 MiB (http.DefaultMaxHeaderBytes),
# where aiohttp refuses lines over 8 KiB.
NOMAD_HEADER_LIMITS = {"max_line_size": 1 << 20, "max_field_size": 1 << 20}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description="Nomad API emulator")
    parser.add_argument("--scenario", required=True, help="scenario YAML file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4646, help="0 picks a free port")
    parser.add_argument("--state-dir", help="task directories (default: a temporary directory removed on exit)")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-ca")
    parser.add_argument("--tls-require-client-cert", action="store_true")
    parser.add_argument("--virtual", type=int, help="add N process-less allocations")
    parser.add_argument("--string-token-compare", action="store_true",
                        help="compare pagination tokens as strings, like Nomad 1.5/1.6 (hashicorp/nomad#25435)")
    parser.add_argument("--nomad-version", metavar="VERSION",
                        help=f"answer as this Nomad version ({', '.join(SUPPORTED_VERSIONS)}; default: the scenario's "
                             f"nomad_version, else {DEFAULT_VERSION})")
    args = parser.parse_args(argv)
    if args.nomad_version is not None:
        try:
            NomadVersion.parse(args.nomad_version)
        except UnsupportedVersion as err:
            parser.error(str(err).replace("nomad_version", "--nomad-version", 1))
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_require_client_cert and not args.tls_ca:
        parser.error("--tls-require-client-cert needs --tls-ca")
    return args


async def start_initial_allocations(emulator: Emulator, allocs) -> None:
    """Run the scenario's allocations until their tasks are up, so clients see them running at once."""
    runs = [emulator.supervisor.spawn(emulator.supervisor.run_allocation(alloc)) for alloc in allocs]
    if runs:
        await asyncio.wait(runs, timeout=STARTUP_WAIT_SECONDS)


async def serve(args, state_dir: str) -> None:
    scenario = load_scenario_file(args.scenario)
    emulator = Emulator(scenario, state_dir=state_dir, string_token_compare=args.string_token_compare,
                        version=scenario_version(scenario, args.nomad_version))
    emulator.supervisor = Supervisor(emulator)
    build_nodes(emulator)
    created = build_jobs(emulator)
    install_faults(emulator)
    build_virtual(emulator, virtual_settings(emulator, args.virtual))
    ssl_context = None
    if args.tls_cert:
        ssl_context = make_ssl_context(args.tls_cert, args.tls_key, args.tls_ca, args.tls_require_client_cert)
    runner = web.AppRunner(make_app(emulator), access_log=None, handle_signals=False,
                           shutdown_timeout=HANDLER_SHUTDOWN_SECONDS, **NOMAD_HEADER_LIMITS)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=ssl_context)
    await site.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await start_initial_allocations(emulator, created)
        port = runner.addresses[0][1]
        scheme = "https" if ssl_context else "http"
        print(f"Nomad emulator listening on {scheme}://{args.host}:{port}", flush=True)
        print(f"nomad emulator: answering as Nomad {emulator.version.text}", file=sys.stderr, flush=True)
        await stopping.wait()
    finally:
        end_exec_sessions()
        await emulator.supervisor.shutdown()
        await runner.cleanup()


def end_exec_sessions() -> None:
    """Kill the processes of open exec sessions (only if an exec request ever loaded the handler)."""
    exec_module = sys.modules.get(f"{__package__}.exec_ws")
    kill = getattr(exec_module, "kill_exec_processes", None)
    if kill is not None:
        kill()


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    temporary = args.state_dir is None
    state_dir = tempfile.mkdtemp(prefix="nomad-emulator-") if temporary else os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    try:
        asyncio.run(serve(args, state_dir))
    except ScenarioError as err:
        print(f"nomad emulator: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"nomad emulator: cannot listen on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
