"""``ForkSafePool``: one pool per process, made again in a forked child, whose inherited pool has no threads."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection

from engram._threads import ForkSafePool

POOL = ForkSafePool(2, "test-pool")


def _child(pipe: Connection) -> None:
    pipe.send((id(POOL.get()), POOL.get().submit(os.getpid).result(timeout=10), os.getpid()))


def test_a_forked_child_gets_a_pool_of_its_own() -> None:
    parent_pool = POOL.get()
    assert POOL.get() is parent_pool and parent_pool.submit(os.getpid).result() == os.getpid()
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_child, args=(sending,))
    child.start()
    pool_id, ran_in, child_pid = receiving.recv()
    child.join(timeout=10)
    assert child.exitcode == 0
    assert pool_id != id(parent_pool) and ran_in == child_pid
