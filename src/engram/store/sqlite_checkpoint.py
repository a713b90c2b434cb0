"""WAL checkpoints of the SQLite store, off the writer's path.

In WAL mode a commit appends pages to the ``-wal`` file and, with ``synchronous=FULL``, syncs it: that
is what makes an acknowledged write durable. Copying those pages back into the database file (a
checkpoint) is housekeeping, but SQLite runs it inside the commit that crosses ``wal_autocheckpoint``
(1,000 pages): one single-turn ``add`` in about 25 paid for copying and syncing the others' pages too
(24-60 ms at load 12 here), which sat in the p95 of ``add``. ``BackgroundCheckpointer`` runs a
``PASSIVE`` checkpoint on its own thread and connection every ``CHECKPOINT_EVERY_COMMITS`` commits, so
the WAL is restarted before the writer's own automatic checkpoint is due; that one stays as the backstop
(e.g. for large imports). Durability is unchanged: nothing is acknowledged before its WAL pages are
synced, and a checkpoint that fails or is interrupted leaves the WAL to the next one."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

#: Commits between two background checkpoints (a single-turn add writes about 40 pages).
CHECKPOINT_EVERY_COMMITS = 16

logger = logging.getLogger(__name__)


class BackgroundCheckpointer:
    """Checkpoints the WAL of the database at ``path`` on a daemon thread, started on first need."""

    def __init__(self, path: Path, *, synchronous: str, every: int = CHECKPOINT_EVERY_COMMITS) -> None:
        self._path = path
        self._synchronous = synchronous
        self._every = every
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Checkpoints run so far (for tests and benchmarks).
        self.checkpoints = 0

    def committed(self) -> None:
        """Note one commit of the writer; every ``every`` commits, wake the checkpoint thread."""
        self._commits += 1
        if self._commits < self._every or self._stopping:
            return
        self._commits = 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"engram-checkpoint-{self._path.name}",
                                            daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(str(self._path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            logger.warning("no background WAL checkpoints for %s: %s", self._path, exc)
            return
        try:
            connection.execute(f"PRAGMA synchronous = {self._synchronous}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy or failing: the next checkpoint (or the writer's) catches up
                    logger.debug("background WAL checkpoint of %s skipped: %s", self._path, exc)
        finally:
            connection.close()
