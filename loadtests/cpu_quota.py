"""A CPU quota per server process (Linux cgroup v1 `cpu` controller, or cgroup v2), so that N
server processes can be given N equal slices of CPU on a machine with fewer spare cores than
that — e.g. two TwinHub processes at 40 % of a core each on a 2-core machine, leaving the rest
to the load generator, PostgreSQL and Redis. It stands for "each process has a core of its own"
scaled down: it asks whether N processes deliver N times one process's deliveries at the same
CPU each, which is what scale-out promises.

The quota is enforced by the kernel every `period_us` (default 10 ms: a throttled process waits
at most what is left of that period). Needs root and a writable cgroup hierarchy; says so
otherwise. Each group is removed by `remove()` (its process must have exited).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")


class CpuQuota:
    def __init__(self, name: str, cores: float, period_us: int = 10_000) -> None:
        if not 0 < cores <= os.cpu_count():  # type: ignore[operator]
            raise ValueError(f"a CPU quota of {cores} cores is not possible here")
        self.cores = cores
        quota = max(1000, int(cores * period_us))
        if (_V1 / "cpu.cfs_quota_us").exists():
            self.path = _V1 / name
            files = {"cpu.cfs_period_us": str(period_us), "cpu.cfs_quota_us": str(quota)}
        elif (_V2 / "cgroup.controllers").exists():
            self.path = _V2 / name
            files = {"cpu.max": f"{quota} {period_us}"}
        else:
            raise RuntimeError("no cgroup cpu controller found: --server-cpu-quota needs Linux cgroups")
        try:
            self.path.mkdir(exist_ok=True)
            for file, value in files.items():
                (self.path / file).write_text(value)
        except OSError as exc:
            raise RuntimeError(f"cannot set a CPU quota in {self.path} ({exc.strerror}): run as root, "
                               "or leave --server-cpu-quota out") from None

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        """Seconds the group's processes were held back by the quota so far."""
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, value = line.split()
                if key == "throttled_time":  # v1: ns
                    return int(value) / 1e9
                if key == "throttled_usec":  # v2
                    return int(value) / 1e6
        return 0.0

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()
