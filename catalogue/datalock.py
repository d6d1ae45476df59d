"""One process per local data folder, and a plain answer for the second one.

The embedded shard takes a lock of its own, but a second process learns of it
only as a raw WAL-lock error from deep in the engine, and the SQLite job store
takes none (the local runner requeues "running" items at start, assuming it is
alone). A `DataLock` is an `flock` on `<data folder>/LOCK`, taken before either
is opened; the file holds the holder's pid and command line, so the refusal can
name them. The kernel drops the lock when the holder exits, however it exits,
so a crash leaves nothing to clean up; the file itself is left in place.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

LOCK_NAME = "LOCK"


class DataFolderInUse(RuntimeError):
    """Another process holds the data folder."""

    def __init__(self, folder: Path, pid: str, command: str):
        self.folder, self.pid, self.command = folder, pid, command
        held_by = f"process {pid}" + (f" ({command})" if command else "")
        super().__init__(f"{folder} is in use by {held_by}")


class DataLock:
    """Held from `acquire` until `release` (or the process's end)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fd: int | None = None

    @classmethod
    def acquire(cls, folder: Path) -> DataLock:
        lock = cls(folder)
        lock.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").split(" ", 1)
            os.close(fd)
            raise DataFolderInUse(lock.folder.resolve(), holder[0].strip() or "unknown",
                                  holder[1].strip() if len(holder) > 1 else "") from None
        os.ftruncate(fd, 0)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
        os.write(fd, f"{os.getpid()} {command}\n".encode())
        lock._fd = fd
        return lock

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
