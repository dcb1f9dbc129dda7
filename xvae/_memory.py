"""Memory checks: a request whose arrays cannot fit is refused before anything is allocated.

`vae.sample(10**12)` would otherwise spend seconds trying, then fail with NumPy's
``MemoryError`` (or the OS would kill the process). Callers estimate the bytes the arrays
of a call need and `require` compares that with the memory available now; the error
says how much is needed and what to change. Estimates count the arrays xvae itself
allocates (float32 inputs and outputs, float64 temporaries), not the framework's
workspace, so they are a lower bound: a refusal is always right, a pass is not a promise.

The available memory is read from ``/proc/meminfo`` (MemAvailable, what the kernel can
give without swapping), bounded by a cgroup v2 limit where one applies, else from
``os.sysconf`` (free physical pages). No dependency: psutil reads the same numbers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from xvae._errors import ConfigError

__all__ = ["available_bytes", "human", "require"]

_MEMINFO = Path("/proc/meminfo")
#: Requests below this always pass without reading the OS's figures (hot paths call `require`).
ALWAYS_FITS = 64 << 20
_CGROUP = Path("/sys/fs/cgroup")


def _meminfo_available() -> int | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """limit - usage of this process's cgroup v2 (containers), or None without a limit."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((_CGROUP / "memory.current").read_text()), 0)
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # not on every platform (macOS, Windows)
        return None


def available_bytes() -> int | None:
    """Bytes that can be allocated now without swapping; None where the OS does not say."""
    found = [b for b in (_meminfo_available() or _sysconf_available(), _cgroup_room()) if b is not None]
    return min(found) if found else None


def human(nbytes: float) -> str:
    """1536 -> '1.5 KiB'; sizes beyond any machine keep growing in EiB."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    if nbytes < 1024:
        return f"{int(nbytes)} bytes"
    if nbytes >= 10**300:  # beyond float64: n=10**400 samples; say the order of magnitude
        return f"10^{len(str(int(nbytes))) - 1} bytes"
    power = min(int(math.log(nbytes, 1024)), len(units) - 1)
    return f"{nbytes / 1024 ** power:.3g} {units[power]}"


def require(nbytes: int, what: str, fix: str) -> None:
    """Raise ConfigError if `nbytes` exceed the memory available now.

    Args:
        nbytes: the estimated bytes the call would allocate (a Python int: no overflow).
        what: the request, e.g. "sample(n=10**12) on a VAE with 784 outputs".
        fix: how to make it fit, e.g. "draw fewer samples per call".

    Raises:
        ConfigError: the arrays cannot fit; the message gives the size needed and available.
    """
    if nbytes < ALWAYS_FITS:
        return
    available = available_bytes()
    if available is None or nbytes <= available:
        return
    raise ConfigError(f"{what} needs about {human(nbytes)} of memory, but only {human(available)} "
                      f"is available: {fix}.")
