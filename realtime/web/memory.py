"""Where the process's memory is, for /metrics: what Python's own allocator holds in blocks, and
what C's malloc hands out and keeps. RSS alone cannot tell a leak of Python objects from one in
a C extension (asyncpg, uvloop, hiredis) or from freed memory the allocator keeps; these three
can (docs/reliability.md, the soak)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]


@cache
def _mallinfo2():  # type: ignore[no-untyped-def]
    """glibc's mallinfo2 (2.33 and newer), or None elsewhere (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    fn.argtypes = []
    return fn


def python_blocks() -> int:
    """Blocks Python's allocator has handed out and not got back: objects alive, roughly."""
    return sys.getallocatedblocks()


def malloc_bytes() -> tuple[int, int] | None:
    """(in use, free but kept) by malloc — C extensions' allocations and Python's large objects
    in the first; fragmentation in the second. mmap'd chunks count as in use. None without glibc."""
    fn = _mallinfo2()
    if fn is None:
        return None
    info = fn()
    return info.uordblks + info.hblkhd, info.fordblks
