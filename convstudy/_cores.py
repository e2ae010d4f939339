"""How many cores this process may use, and how many threads a compiled kernel should take."""

from __future__ import annotations

import os

__all__ = ["available_cores", "set_thread_limit", "thread_limit"]

_LIMIT: list[int | None] = [None]  # set by ``convstudy --threads`` or the runner's workers


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count), >= 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def set_thread_limit(threads: int | None) -> None:
    """Cap the threads of the compiled kernels (None: the cores available). Worker processes
    that already run cells in parallel use 1, so that they do not compete for the cores."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):  # fmt: skip
        raise ValueError(f"The thread limit must be an int >= 1 or None. Got {threads!r}.")
    _LIMIT[0] = threads


def thread_limit() -> int:
    """The current cap on kernel threads."""
    return _LIMIT[0] or available_cores()
