"""Cells in flight at once: a pool of worker processes runs independent cells (the seeds of `compare`, the
unlearning seeds of `forget-quality`, the cell groups of a local sweep) and hands their results back in order.

Every cell fixes its own CPU thread count (config `threads`) and seeds all of its randomness itself, so it
computes the same bits in any worker: results do not depend on the number of workers (tests/test_compare.py
checks compare's metrics for 1 and 2 workers). Workers are spawned (no inherited torch or CUDA state) and die
with the process that started them, however it ends (sweep/lifetime.py).

The same scheduler serves a GPU: each worker is a process with its own CUDA context on the same device, so
while one worker waits on its kernels or on CPU-side metrics another launches its own; small launch-bound
models leave a GPU mostly idle from a single process. Several workers on one GPU have not yet run on a GPU
(docs/benchmarks.md, "GPU"); each holds a CUDA context (about 0.5 GB) and its own copy of the data.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

from softtargets.errors import SoftTargetsError
from softtargets.hooks import Hooks
from softtargets.sweep.lifetime import die_with_parent


def max_workers() -> int:
    return max(8, os.cpu_count() or 1)


def check_workers(workers: int) -> int:
    """1 .. max(8, CPU cores) worker processes: more only multiplies memory (each loads torch and the data)."""
    most = max_workers()
    if not 1 <= workers <= most:
        raise SoftTargetsError(f"--workers must be in 1..{most} (this machine has {os.cpu_count()} cores), got "
                               f"{workers}")
    return workers


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes that end with this one (even by kill -9: lifetime.py is imported and armed
    before a worker imports torch)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent,
                               initargs=(os.getpid(),))


def run_cells(cell: Callable[..., Any], tasks: Sequence[tuple], workers: int = 1, hooks: Hooks | None = None,
              description: str = "cells") -> list[Any]:
    """cell(*task) for every task, `workers` at a time (in this process for 1); the results in task order.
    cell must be a module-level function (workers import it). The first failing cell's error is raised here
    once the cells already running have ended; cells not yet started are cancelled."""
    hooks = hooks or Hooks()
    check_workers(workers)
    results: list[Any] = [None] * len(tasks)
    with hooks.progress(description, len(tasks)) as advance:
        if workers == 1 or len(tasks) <= 1:
            for i, task in enumerate(tasks):
                results[i] = cell(*task)
                advance(1)
            return results
        with worker_pool(min(workers, len(tasks))) as pool:
            futures = {pool.submit(cell, *task): i for i, task in enumerate(tasks)}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    if future.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise future.exception()
                    results[futures[future]] = future.result()
                    advance(1)
    return results
