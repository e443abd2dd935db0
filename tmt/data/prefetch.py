"""Background batch assembly: the next batches are gathered while the current training step runs.

On a GPU the step runs asynchronously and the host is free, so gathering batch k + 1 (numpy's fancy indexing
releases the GIL) and pinning it while step k runs hides the data path; on a CPU the same thread would take
a core from the step, which is why the trainer only prefetches on CUDA unless told otherwise. The batches
and their order are the same with or without prefetching.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def prefetched(make: Callable[[int], T], count: int, ahead: int) -> Iterator[T]:
    """``make(0), make(1), ..., make(count - 1)`` in order, each made up to ``ahead`` items before it is
    needed by one background thread (``ahead`` 0: made on demand, in this thread).

    An exception raised by ``make`` reaches the consumer at the item that raised it; a consumer that stops
    early leaves at most ``ahead`` items made in vain.
    """
    if ahead < 0:
        raise ValueError(f"prefetched: ahead must be >= 0, got {ahead}")
    if ahead == 0:
        yield from (make(i) for i in range(count))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches") as pool:
        pending: deque[Future[T]] = deque(pool.submit(make, i) for i in range(min(ahead, count)))
        try:
            for i in range(count):
                item = pending.popleft().result()
                if i + ahead < count:
                    pending.append(pool.submit(make, i + ahead))
                yield item
        finally:
            for future in pending:
                future.cancel()
