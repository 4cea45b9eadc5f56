"""An exclusive, advisory lock on the embedded index folder, with the holder's PID in the message."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from index.store import IndexLocked


class FolderLock:
    """Held for the life of the process that owns the embedded index; released by the kernel on exit or kill."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / ".vigie.lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise IndexLocked(
                f"index {folder} is in use by another Vigie process (pid {holder}); "
                "stop it, or send the work to the running engine"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
