"""Where the server's time goes under the bench's load: py-spy samples it while wrk loads it.

    .venv/bin/python -m bench.profile              # sqlite-full, 64 connections, 10 s
    .venv/bin/python -m bench.profile --contender sqlite-meter-usage --connections 8 --seconds 5

One run as ``bench.run`` makes it (a fresh copy of the bench ledger, the same probe and wrk
load); one second into the load, ``py-spy record --pid <server> --subprocesses -r 200 -f raw``
samples every process of the server for ``--seconds``. Printed: samples per thread, and the
functions with the most samples of their own (self) and in total (inclusive), as shares of all
samples taken. ``--raw FILE`` keeps py-spy's collapsed stacks (flame graph input). py-spy must be
installed (``pip install py-spy``; it reads the server's memory, so it runs as the same user).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.contenders import Contender, MeterUsageContender, SQLiteContender, template_ledger
from bench.processes import ROOT, free_port, stop, wait_healthy
from bench.report import DIMENSIONS, say

__all__ = ["Profile", "main", "read_collapsed"]

CONTENDERS = ("sqlite-full", "sqlite-normal", "sqlite-meter-usage")


class Profile:
    """Collapsed stacks (``frame;frame;... count``) summed by thread, leaf and function."""

    def __init__(self) -> None:
        self.total = 0
        self.by_thread: collections.Counter[str] = collections.Counter()
        self.self_samples: collections.Counter[str] = collections.Counter()
        self.inclusive: collections.Counter[str] = collections.Counter()

    def add(self, stack: str, count: int) -> None:
        frames = stack.split(";")
        self.total += count
        thread = next((f for f in frames if f.startswith("thread ")), frames[0])
        self.by_thread[thread] += count
        code = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not code:
            return
        self.self_samples[code[-1]] += count
        for frame in set(code):
            self.inclusive[frame] += count

    def top(self, counter: collections.Counter[str], count: int) -> list[str]:
        return [
            f"{100 * samples / self.total:5.1f} %  {frame}"
            for frame, samples in counter.most_common(count)
        ]


def read_collapsed(text: str) -> Profile:
    profile = Profile()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            profile.add(stack, int(count))
    return profile


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--contender", choices=CONTENDERS, default="sqlite-full")
    parser.add_argument("--connections", type=int, default=64, help="wrk's -c (64)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds sampled (10)")
    parser.add_argument("--buyers", type=int, default=20000, help="the bench catalog's (20000)")
    parser.add_argument("--top", type=int, default=25, help="functions listed (25)")
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's collapsed stacks")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/marketmeter-bench"))
    return parser.parse_args(argv)


def _contender(name: str, template: Path, work: Path) -> Contender:
    if name == "sqlite-meter-usage":
        return MeterUsageContender(template, work)
    return SQLiteContender(name, name.removeprefix("sqlite-"), template, work)


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists() or shutil.which("wrk") is None:
        say("py-spy and wrk are needed (pip install py-spy; apt-get install wrk)")
        return 2
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="profile-", dir=options.cache_dir))
    contender = _contender(
        options.contender, template_ledger(options.cache_dir, options.buyers), work
    )
    raw = options.raw or work / "stacks.txt"
    port = free_port()
    server: subprocess.Popen[bytes] | None = None
    try:
        with (work / "server.log").open("wb") as log:
            server = subprocess.Popen(
                contender.prepare(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        wait_healthy(server, f"http://127.0.0.1:{port}{contender.health_path}")
        contender.probe(port, options.buyers)
        load = subprocess.Popen(
            [
                *("wrk", "-t1", f"-c{options.connections}", f"-d{options.seconds + 2}s"),
                *("-s", str(contender.load_script), f"http://127.0.0.1:{port}/"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "BENCH_BUYERS": str(options.buyers),
                "BENCH_DIMS": str(DIMENSIONS),
                "BENCH_NOW": str(int(time.time())),
            },
        )
        time.sleep(1)
        subprocess.run(
            [
                *(
                    spy,
                    "record",
                    "--pid",
                    str(server.pid),
                    "--subprocesses",
                    "--threads",
                    "--function",
                ),
                *("-r", "200", "-d", str(options.seconds), "-f", "raw", "-o", str(raw)),
            ],
            check=True,
            capture_output=True,
        )
        wrk_output, _ = load.communicate(timeout=60)
    finally:
        if server is not None:
            stop(server)
        contender.cleanup()
    profile = read_collapsed(raw.read_text())
    rate = next((line for line in wrk_output.splitlines() if line.startswith("Requests/sec")), "")
    say(f"{options.contender}, {options.connections} connections: {rate.strip()}")
    say(f"{profile.total:,} samples at 200 Hz over {options.seconds} s")
    say("by thread:")
    say("\n".join(profile.top(profile.by_thread, 10)))
    say("self:")
    say("\n".join(profile.top(profile.self_samples, options.top)))
    say("inclusive:")
    say("\n".join(profile.top(profile.inclusive, options.top)))
    if options.raw is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
