"""Peak resident memory of the current process, read from /proc (Linux).

``getrusage().ru_maxrss`` is not per process on Linux: a child inherits its parent's high-water
mark across fork and exec, so a small child of a large harness reports the harness's peak.
``VmHWM`` in /proc/self/status belongs to the process's own address space (new at exec) and can
be reset to the current RSS by writing 5 to /proc/self/clear_refs.
"""

from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")


def status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status, e.g. VmRSS or VmHWM."""
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} is not in {STATUS}")


def peak_rss_kib() -> int:
    """This process's peak RSS since it started (or since the last ``reset_peak``)."""
    return status_kib("VmHWM")


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux 4.0+); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
