"""Measure what one call cost: wall time, and memory as the peak of traced Python allocations and RSS growth."""

from __future__ import annotations

import gc
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Cost:
    elapsed: float = 0.0
    #: peak of Python allocations made during the call (tracemalloc), in bytes
    peak_allocated: int = 0
    #: growth of the process' peak resident set during the call, in bytes (0 when an earlier peak was higher)
    rss_growth: int = 0


def _max_rss() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024  # Linux reports KiB


@contextmanager
def measure() -> Iterator[Cost]:
    """Fill a `Cost` for the block (also when it raises)."""
    cost = Cost()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    rss_before = _max_rss()
    started = time.perf_counter()
    try:
        yield cost
    finally:
        cost.elapsed = time.perf_counter() - started
        cost.peak_allocated = max(tracemalloc.get_traced_memory()[1] - baseline, 0)
        cost.rss_growth = _max_rss() - rss_before
        if not was_tracing:
            tracemalloc.stop()
