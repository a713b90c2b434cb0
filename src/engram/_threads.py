"""A thread pool made on first use and made again in a forked child (threads do not survive a fork)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


class ForkSafePool:
    """Holds a ``ThreadPoolExecutor`` of ``max_workers`` threads named ``name``, made when ``get`` is first
    called in this process."""

    def __init__(self, max_workers: int, name: str) -> None:
        self.max_workers = max_workers
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        """This process's pool."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=self.name)
                self._pid = os.getpid()
            return self._pool
