"""Processes of the bench: the servers' CPU time (whole process trees, from ``/proc``), peak
RSS and proportional set size, the machine, a free port, starting checks (health, a billed
probe record), stopping, and preparation commands run in the repository."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.ports import free_port

__all__ = [
    "ROOT",
    "PssSampler",
    "free_port",
    "machine_description",
    "peak_rss_mib",
    "probe",
    "probe_meter_usage",
    "process_tree_cpu_seconds",
    "run_command",
    "stat_cpu_ticks",
    "stop",
    "tree_peak_rss_mib",
    "tree_pids",
    "tree_pss_mib",
    "wait_healthy",
]

ROOT = Path(__file__).resolve().parent.parent  # the repository
# bench/batch_load.lua's header: moto routes by the credential scope; marketmeter (open auth)
# ignores the signature.
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/aws-marketplace/aws4_request, "
    "SignedHeaders=host;x-amz-target, Signature=0"
)


def stat_cpu_ticks(stat: str) -> tuple[int, int]:
    """(parent pid, CPU ticks) of a ``/proc/<pid>/stat`` line: utime + stime of the process
    and cutime + cstime of the children it reaped."""
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return int(fields[1]), sum(int(field) for field in fields[11:15])


def process_tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and every live descendant (plus the children they
    reaped): the server's threads, worker processes, PostgreSQL's backends."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent, used = stat_cpu_ticks(Path(f"/proc/{entry}/stat").read_text())
        except (OSError, ValueError):
            continue  # gone meanwhile
        ticks[int(entry)] = used
        children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / os.sysconf("SC_CLK_TCK")


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent, _ = stat_cpu_ticks(Path(f"/proc/{entry}/stat").read_text())
            except (OSError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, ()))
    return pids


def tree_peak_rss_mib(root: int) -> float:
    """The peak resident sets (``VmHWM``) of ``root`` and every live descendant, added up,
    MiB: every process of a server (``serve --workers``). Pages a forked worker still shares
    with its parent count in both."""
    total = 0.0
    for pid in tree_pids(root):
        try:
            total += peak_rss_mib(pid)
        except (OSError, ValueError):
            continue  # gone meanwhile, or a kernel thread
    return total


def tree_pss_mib(root: int) -> float:
    """The proportional set sizes (``Pss`` of ``smaps_rollup``) of ``root`` and every live
    descendant, added up, MiB: what the processes hold together, a page shared by n of them
    counting 1/n in each."""
    total = 0.0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
                    break
        except (OSError, ValueError):
            continue
    return total


class PssSampler:
    """The peak of ``tree_pss_mib(root)``, sampled every ``interval`` seconds in a thread
    while the ``with`` block runs (the kernel keeps no peak of the PSS)."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self._root = root
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_mib = 0.0

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, tree_pss_mib(self._root))

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mib = max(self.peak_mib, tree_pss_mib(self._root))


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM for process {pid}")


def machine_description() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cpus = len(os.sched_getaffinity(0))
    return (
        f"{cpus} CPUs (nproc), {model}; Linux {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def wait_healthy(process: subprocess.Popen[bytes], url: str, timeout: float = 120.0) -> None:
    """Until ``url`` answers 200; ``RuntimeError`` if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} at start")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the server did not answer {url} within {timeout:.0f} s")


def probe(port: int, customer: str, signed: bool = False) -> None:
    """Bill one record of a key the load never uses; ``RuntimeError`` unless it is Success
    (a 2xx from wrk then means the bench's records are billed, not refused). ``signed``: with
    a valid SigV4 signature of the bench seller's key (a strict-auth server)."""
    body = {
        "ProductCode": "bench-saas",
        "UsageRecords": [
            {
                "Timestamp": int(time.time()) - 60,
                "CustomerIdentifier": customer,
                "Dimension": "d0",
                "Quantity": 1,
            }
        ],
    }
    data = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSMPMeteringService.BatchMeterUsage",
        "Authorization": AUTHORIZATION,
    }
    if signed:
        from bench.signed_requests import bench_signer, sign

        headers["X-Amz-Date"], headers["Authorization"] = sign(port, data, bench_signer())
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"probe: HTTP {error.code}: {error.read().decode()[:500]}") from None
    results = json.loads(text).get("Results", [])
    if len(results) != 1 or results[0].get("Status") != "Success":
        raise RuntimeError(f"probe: the record was not billed: {text[:500]}")


def probe_meter_usage(port: int) -> None:
    """Bill one MeterUsage record of the bench's AMI buyer for an instance the load never
    names; ``RuntimeError`` unless it answers a MeteringRecordId."""
    body = {
        "ProductCode": "bench-ami",
        "Timestamp": int(time.time()) - 60,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 1,
    }
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSMPMeteringService.MeterUsage",
        "X-Amz-Security-Token": "i-bench-probe",
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIABENCHBUYER000001/20261123/us-east-1/"
            "aws-marketplace/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
        ),
    }
    data = json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"probe: HTTP {error.code}: {error.read().decode()[:500]}") from None
    if not json.loads(text).get("MeteringRecordId"):
        raise RuntimeError(f"probe: the record was not billed: {text[:500]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_command(argv: list[str]) -> str:
    """Run a preparation step in the repository; its output, or ``RuntimeError`` with it."""
    completed = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[1:])} exited with {completed.returncode}:\n"
            f"{completed.stdout}{completed.stderr}"
        )
    return completed.stdout
