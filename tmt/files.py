"""Files that several processes share: one exclusive lock that dies with its holder, and a write that no reader
sees half done.

Every lock of the project is :func:`file_lock` (an ``flock``): the kernel drops it when its process dies, so a
killed holder never blocks anyone, as a lock left behind as a file would (Optuna's symlink lock of a journal).
The synthetic data folder, the result store (a lock per cell), the results archive and the searches all lock
through it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: str | Path, *, wait: bool = False, create: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` while the ``with`` block runs; yields whether this process holds
    it.

    Without ``wait`` it yields False at once when another process holds the lock; with ``wait`` it waits until
    the holder lets go. With ``create`` a missing file is created and, once held, names its holder (host and
    process id) for a person looking at it; without, a missing file yields False and an existing one is only
    probed, never written (whether the process that made it still holds it).
    """
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        if create:
            raise
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        if create:
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str, tmp: Path | None = None) -> None:
    """Write ``text`` to a temporary file in the same folder, flush it to disk, then rename it over ``path``:
    a reader (or a process killed meanwhile) sees the old file or the new one, never a part of either.

    ``tmp`` defaults to a name of this process (``.<name>.<pid>.tmp``), so that two writers never share one;
    a caller that holds a lock on ``path`` may pass a fixed name instead, which the next writer reuses.
    """
    tmp = tmp or path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # left only when the write failed (a full disk)
