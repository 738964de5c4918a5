"""CPU seconds each process of a stack spends during a measured window (psutil), to profile a benchmark
before changing anything: which of Temporal, the worker, the API, PostgreSQL or the benchmark's own
client is busy for each order."""

from __future__ import annotations

import os

import psutil

# PostgreSQL does its work in backends, children of the postmaster; the others work in their own process.
WITH_CHILDREN = {"postgres"}


def _seconds(name: str, pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)] if name in WITH_CHILDREN else [proc]
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:  # a backend that ended between listing and reading
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


class CpuMeter:
    """`start()`, run the workload, `stop()`: CPU seconds per process name in between. A PostgreSQL backend
    that ends inside the window takes its time with it (pooled connections live through the run)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = {**pids, "bench": os.getpid()}
        self._before: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: _seconds(name, pid) for name, pid in self._pids.items()}

    def stop(self) -> dict[str, float]:
        return {name: _seconds(name, pid) - self._before[name] for name, pid in self._pids.items()}


def cpu_lines(cpu: dict[str, float], orders: int) -> list[str]:
    """One line per process, busiest first: seconds in the window and milliseconds of CPU per order."""
    total = sum(cpu.values())
    lines = [f"cpu:      {total:.1f}s over the run, {total / orders * 1000:.1f} ms per order"]
    for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        lines.append(f"          {name:<10} {seconds:7.1f}s  {seconds / orders * 1000:7.1f} ms/order")
    return lines
