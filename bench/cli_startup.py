"""How fast the ``marketmeter`` command answers: wall time of whole processes, as a user types
them, next to the interpreter's own start (the floor no command can go under) in the same run.

    .venv/bin/python -m bench.cli_startup              # 15 runs of each, medians
    .venv/bin/python -m bench.cli_startup --runs 5 --json out.json

Commands: ``marketmeter --help``, ``marketmeter --version``, and ``marketmeter clock`` and
``marketmeter usage list --endpoint`` against a server started here (a command that talks to
the server over HTTP: one admin API call). The peers: ``python -c pass`` (the interpreter
starting and stopping) and ``python -c "import click"`` (the command-line library). Prints
median, p90 and min seconds per command and the median over the interpreter's; the targets
are ``--help``/``--version`` <= 0.2 s and a server command <= 0.35 s. Exits 1 if a
command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.processes import free_port, machine_description

__all__ = ["TARGETS", "main", "measure"]

BIN = Path(sys.executable).parent
TARGETS = {"marketmeter --help": 0.2, "marketmeter --version": 0.2, "marketmeter clock": 0.35}


def _time(argv: Sequence[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - began


def measure(runs: int, endpoint: str) -> dict[str, list[float]]:
    """Seconds of each command, ``runs`` times, interleaved (a load spike hits them all)."""
    python = sys.executable
    mm = str(BIN / "marketmeter")
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import click'": [python, "-c", "import click"],
        "marketmeter --help": [mm, "--help"],
        "marketmeter --version": [mm, "--version"],
        "marketmeter clock": [mm, "clock", "--endpoint", endpoint],
        "marketmeter usage list --endpoint": [mm, "usage", "list", "--endpoint", endpoint],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETMETER_")}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm the page cache and the .pyc files
        _time(argv, env)
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(_time(argv, env))
    return times


def _serve(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "marketmeter"), "serve", "--port", str(port), "--db", str(directory / "m.db")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [str(BIN / "marketmeter"), "clock", "--endpoint", endpoint], capture_output=True
        )
        if probe.returncode == 0:
            return process, endpoint
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not start within 60 s")


def _table(times: dict[str, list[float]]) -> str:
    floor = statistics.median(times["python -c pass"])
    lines = [f"{'command':<36} {'median s':>9} {'p90 s':>7} {'min s':>7} {'x python':>9} target"]
    for name, seconds in times.items():
        ordered = sorted(seconds)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        median = statistics.median(seconds)
        target = TARGETS.get(name)
        verdict = f"<= {target}: {'met' if median <= target else 'MISSED'}" if target else ""
        lines.append(
            f"{name:<36} {median:>9.3f} {p90:>7.3f} {ordered[0]:>7.3f} "
            f"{median / floor:>9.1f} {verdict}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (15)")
    parser.add_argument("--json", type=Path, default=None, help="write the times to this file")
    options = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        server, endpoint = _serve(Path(directory))
        try:
            times = measure(options.runs, endpoint)
        except subprocess.CalledProcessError as error:
            print(f"failed: {error.cmd}: exit {error.returncode}", file=sys.stderr)
            return 1
        finally:
            server.terminate()
            server.wait(30)
    print(machine_description())
    print(_table(times))
    if options.json is not None:
        options.json.write_text(json.dumps(times, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
