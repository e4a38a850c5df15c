"""Runs independent jobs (one network per seed) in forked processes."""
from __future__ import annotations

import multiprocessing
import pickle
import traceback
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

J = TypeVar("J")
R = TypeVar("R")


def _child(fn: Callable[[J], R], job: J, conn) -> None:
    # Plain pickle, by value: multiprocessing's own pickler would pass torch tensors as shared-memory
    # handles, which die with this process.
    try:
        conn.send_bytes(pickle.dumps((True, fn(job))))
    except BaseException:  # the parent raises it, with the child's traceback
        conn.send_bytes(pickle.dumps((False, traceback.format_exc())))
    finally:
        conn.close()


def map_forked(fn: Callable[[J], R], jobs: Iterable[J], processes: int) -> Iterator[R]:
    """fn(job) for every job, in job order, at most `processes` at a time, each in a forked child: fork
    copies the parent, so fn may be a closure over large arrays that are never pickled (only the results
    are). With one process, or one job, everything runs here."""
    jobs = list(jobs)
    if processes <= 1 or len(jobs) <= 1:
        yield from (fn(job) for job in jobs)
        return
    ctx = multiprocessing.get_context("fork")
    pending, running = deque(jobs), deque()
    while pending or running:
        while pending and len(running) < processes:
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(fn, pending.popleft(), send), daemon=True)
            proc.start()
            send.close()  # the child holds the only writer: a child that dies unheard reads as EOF here
            running.append((proc, receive))
        proc, receive = running.popleft()
        try:
            ok, value = pickle.loads(receive.recv_bytes())
        except EOFError:
            ok, value = False, "the worker exited before sending a result"
        proc.join()
        receive.close()
        if not ok:
            for other, _ in running:
                other.terminate()
            raise RuntimeError(f"a forked job failed:\n{value}")
        yield value
