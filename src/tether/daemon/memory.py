"""Keeping the daemon's resident memory near its size at rest under a long flood of requests.

Python's own objects do not grow under the fuzz run (tracemalloc: 54 -> 56 MB over 60,000 inputs), but
the process did (99 -> 162 MB at 60,000 inputs, 358 MB at 300,000): glibc gives each thread that
allocates its own arena (up to 8 per core), and the request threads' freed blocks stay resident in
them. Two glibc knobs, both no-ops elsewhere (macOS, musl):

- ``limit_arenas()``: at most two arenas (``mallopt(M_ARENA_MAX, 2)``), set before any thread starts;
- ``trim()``: ``malloc_trim(0)`` hands free pages of every arena back to the kernel; the monitor calls
  it at most once a minute (about 1-3 ms).
Measured with ``bench/bench_fuzz.py`` (bench/README.md has the figures).

What grew with the length of the run was elsewhere: ``GET /v1/approvals?state=all`` answered every
approval the agent's asks had left (a transient of ~380 MB per request at 60,000 rows), and each request
thread kept its own SQLite connection. Both are bounded now (the listing's ``limit``; ``store/sqlite.py``'s
pool of ``READERS`` connections). What is left grows slowly (gdb's ``malloc_info`` and
``sys._debugmallocstats`` at 10,000 / 36,000 inputs: pymalloc's arenas 56 / 61 MB with 49.7 / 50.2 MB of
them in use, glibc's heaps 35 / 37 MB; ``bench_fuzz.py --trace`` shows RSS by mapping over a run).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
import time

M_ARENA_MAX = -8  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024
TRIM_EVERY = 60.0

_libc: ctypes.CDLL | None = None
_last_trim = 0.0


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") and hasattr(libc, "gnu_get_libc_version"):
                _libc = libc
    return _libc


def limit_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas; True when glibc took it."""
    libc = _glibc()
    if libc is None:
        return False
    # a fixed threshold: blocks from 128 KiB up (request bodies, 100 KB commands) are their own mappings,
    # returned whole when freed, instead of glibc raising the threshold after the first such free
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return bool(libc.mallopt(M_ARENA_MAX, arenas) == 1)


def trim(now: float | None = None, every: float = TRIM_EVERY) -> bool:
    """Return free heap pages to the kernel, at most once per ``every`` seconds; True when it ran."""
    global _last_trim
    libc = _glibc()
    now = time.monotonic() if now is None else now
    if libc is None or now - _last_trim < every:
        return False
    _last_trim = now
    libc.malloc_trim(0)
    return True
