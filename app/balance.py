"""Connection balancing among the processes of one `moodspace serve`.

uvicorn's workers share one listening socket and whichever process wakes first accepts a connection, so keep-alive
clients spread unevenly and stay where they landed: 32 clients came to rest as 23 and 9, or 30 and 2, and the
clients of the crowded process waited twice as long (each process answers its own connections in turn). Here each
process counts its open connections in a small shared table (``ConnectionTable``, one slot per process, in a file
that `moodspace serve` makes and names in ``MOODSPACE_CONNECTION_TABLE``). A process holding more than ``SLACK``
connections past its fair share (``fair_share``) answers the request in hand with ``Connection: close``; the client
reconnects, and the next accept decides again. Nothing is refused and no request is lost: HTTP/1.1 clients reopen
a closed keep-alive connection.

``BalancedHttpProtocol`` is uvicorn's httptools protocol with that counting (``uvicorn.run(http=...)``). With one
process, or without the table, it is uvicorn's protocol unchanged.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.processes import process_exists

TABLE_ENV = "MOODSPACE_CONNECTION_TABLE"
SLOTS = 256  # most processes one table serves
STEP_ASIDE_S = 0.005  # how long a process stays away from accepting after it closed a connection past its share


def fair_share(open_connections: int, processes: int) -> int:
    """The most connections one of ``processes`` holds when they are spread as evenly as they can be."""
    return math.ceil(open_connections / max(processes, 1))


SLACK = 1  # connections a process may hold past its fair share before it closes one: without it, every client
# that connects while the others are still connecting (total small, share smaller) was sent away again


class ConnectionTable:
    """Open connections per process: a file of ``SLOTS`` (pid, count) pairs of int64, memory-mapped by every process
    of one service. A process writes only its own slot (aligned 8-byte stores: readers see whole numbers); slots
    are claimed under a file lock, and the slot of a process that died is taken over by the next one to claim."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "r+b")  # noqa: SIM115 - held for the life of the process
        self._map = mmap.mmap(self._file.fileno(), SLOTS * 16)
        self.slots = np.ndarray((SLOTS, 2), dtype=np.int64, buffer=self._map)
        self.mine = self._claim()
        self.leaving = 0  # connections of this process told to close after their current answer

    @staticmethod
    def create(path: Path) -> Path:
        """A fresh, empty table at ``path``."""
        path.write_bytes(bytes(SLOTS * 16))
        return path

    def _claim(self) -> int:
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            pids = self.slots[:, 0]
            free = [i for i in range(SLOTS) if pids[i] == 0 or not process_exists(int(pids[i]))]
            if not free:
                raise RuntimeError(f"{self.path}: all {SLOTS} process slots are taken")
            slot = free[0]
            self.slots[slot, 1] = 0
            self.slots[slot, 0] = os.getpid()
            return slot

    def add(self, change: int) -> None:
        self.slots[self.mine, 1] += change

    @property
    def own(self) -> int:
        return int(self.slots[self.mine, 1])

    def over_share(self) -> bool:
        """Whether this process holds more than ``SLACK`` connections past its fair share of all open ones, not
        counting those of its own already told to close (``leaving``)."""
        claimed = self.slots[:, 0] != 0
        total = int(self.slots[claimed, 1].sum()) - self.leaving
        return self.own - self.leaving > fair_share(total, int(claimed.sum())) + SLACK

    def close(self) -> None:
        self.slots[self.mine] = 0
        self._map.close()
        self._file.close()


_table: ConnectionTable | None = None


def table() -> ConnectionTable | None:
    """This process's handle on the service's table (opened on first use: `moodspace serve`'s app factory opens it
    before the process accepts a connection), or None when there is none."""
    global _table
    if _table is None and os.environ.get(TABLE_ENV):
        _table = ConnectionTable(Path(os.environ[TABLE_ENV]))
    return _table


class BalancedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that counts this process's connections in the shared table and closes a
    keep-alive connection after its current answer while the process holds more than its share. Connections
    already told to close count as gone: else every request queued behind the first would be sent away too, and
    the clients swung from one process to the other all at once (32-0, 4-28, 28-4, ...). Once such a connection is
    closed, the process's event loop steps aside for ``STEP_ASIDE_S``: the kernel wakes the process that waited
    last for a connection, which is the one that just closed it, and the client's new connection came back to it
    (12 connections crowded into one process spread 11-1 after ten rounds instead of 7-5)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._table = table()
        self._sent_away = False
        if self._table is not None:
            self._table.add(1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._table is not None:
            self._table.add(-1)
            self._table.leaving -= self._sent_away
            self._table = None
        super().connection_lost(exc)
        if self._sent_away:
            time.sleep(STEP_ASIDE_S)  # blocks this process's event loop (its query thread goes on) for a moment

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._table is not None and self.cycle is not None and not self._sent_away and self._table.over_share():
            self.cycle.keep_alive = False  # answered with "Connection: close", then closed
            self._sent_away = True
            self._table.leaving += 1
