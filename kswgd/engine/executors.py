"""Where a sweep's runs execute: in this process, in N worker processes, or on a Dask cluster.

The driver (:func:`kswgd.engine.driver.run_suite`) is one code path for all three. It hands each
task to an executor through ``submit(fn, *args) -> concurrent.futures.Future``, keeps at most
``executor.slots`` tasks in flight, and writes every result itself: workers compute a
:class:`~kswgd.engine.execute.RunResult` (rows, particles, manifest) or a floor record and return
it; they never write.

Threads: every task runs with ``threads`` Numba threads and ``threads`` BLAS threads
(``--threads-per-run``, default 1, the serial run included). A parallel reduction adds its
partial sums in an order fixed by the thread count, so with the count fixed a run gives the same
bits whether it ran serially, with ``--jobs N`` or on a Dask worker. The per-run thread count is
recorded in each manifest (``threads``), with the backend (``backend``).

This module imports nothing heavy at the top, so that a spawned worker sets itself up before
Numba or a BLAS library is loaded.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from kswgd.params import ConfigError


def max_threads() -> int:
    """The most threads one run may use: Numba's thread pool size (``NUMBA_NUM_THREADS``,
    default the number of cores)."""
    return int(os.environ.get("NUMBA_NUM_THREADS") or os.cpu_count() or 1)


def check_threads(threads: int) -> int:
    """``threads`` if 1 ≤ threads ≤ :func:`max_threads`, else ConfigError (one line)."""
    top = max_threads()
    if not 1 <= int(threads) <= top:
        raise ConfigError(f"--threads-per-run must be between 1 and {top} (the cores Numba may "
                          f"use), got {threads}")
    return int(threads)


class _Executor:
    """What every executor shares: used as a context manager, it closes on exit (at once,
    without waiting, when leaving on an exception such as Ctrl-C)."""

    def close(self, wait: bool = True) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(wait=exc[0] is None)


class SerialExecutor(_Executor):
    """Runs each task in this process when it is submitted (``--jobs 1``)."""

    kind = "serial"
    slots = 1

    def __init__(self, threads: int = 1):
        import numba
        from threadpoolctl import threadpool_limits

        self.threads = check_threads(threads)
        self._numba = numba.get_num_threads()
        self._blas = threadpool_limits(self.threads)  # restored by close()

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": 1}

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as err:  # noqa: BLE001 - the driver decides (retry, then failed run)
            fut.set_exception(err)
        return fut

    def close(self, wait: bool = True) -> None:
        import numba

        numba.set_num_threads(self._numba)
        self._blas.restore_original_limits()


def _init_worker() -> None:
    """Set up a worker process: Ctrl-C is the driver's to handle (it stops the workers), and
    OpenMP threads sleep rather than spin while waiting (read when OpenMP starts)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


class ProcessExecutor(_Executor):
    """``--jobs N``: N worker processes started with the ``spawn`` method (a fork of a process
    whose Numba/OpenMP threads have started can deadlock). A worker that dies breaks the pool:
    the tasks in flight fail with BrokenProcessPool (the driver resubmits them) and the next
    submit starts a new pool."""

    kind = "jobs"

    def __init__(self, jobs: int, threads: int = 1):
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.slots, self.threads = int(jobs), check_threads(threads)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": self.slots}

    def submit(self, fn, *args) -> Future:
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(fn, *args)

    def close(self, wait: bool = True) -> None:
        """Shut the pool down; without ``wait`` the workers are killed at once (Ctrl-C)."""
        if not wait:
            terminate = getattr(self._pool, "terminate_workers", None)  # Python ≥ 3.14
            if terminate is not None:
                terminate()
            else:
                for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
                    proc.terminate()
        self._pool.shutdown(wait=wait, cancel_futures=True)


class DaskExecutor(_Executor):
    """``--scheduler ADDRESS``: the tasks go to a running dask.distributed scheduler;
    ``--scheduler local:N`` starts a LocalCluster of N single-threaded worker processes on
    the loopback interface. A worker lost mid-task: the scheduler reschedules the task up to
    its ``distributed.scheduler.allowed-failures`` (0 for ``local:N``), then the driver
    resubmits it once; a second loss makes it a failed run."""

    kind = "dask"

    def __init__(self, address: str, threads: int = 1):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("--scheduler needs Dask: pip install -e '.[dask]'") from None
        self.threads = check_threads(threads)
        self.address, self._cluster = address, None
        if address.startswith("local:"):
            n = address.split(":", 1)[1]
            if not n.isdigit() or int(n) < 1:
                raise ConfigError(f"--scheduler local:N needs a worker count N ≥ 1, got {n!r}")
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self._cluster = LocalCluster(n_workers=int(n), threads_per_worker=1,
                                             processes=True, host="127.0.0.1",
                                             dashboard_address=None,
                                             silence_logs=logging.ERROR)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout="20s")
            except OSError as err:
                raise ConfigError(f"cannot reach the Dask scheduler at {address}: {err}") from None
        self._executor = self.client.get_executor(pure=False)

    @property
    def slots(self) -> int:
        """Worker threads the cluster has now (workers may join or leave during a sweep)."""
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> dict:
        return {"kind": self.kind, "scheduler": self.address,
                "workers": len(self.client.nthreads())}

    def submit(self, fn, *args) -> Future:
        return self._executor.submit(fn, *args)

    def close(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=False)
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(jobs: int = 1, scheduler: str | None = None, threads: int = 1):
    """The executor of ``--jobs``/``--scheduler``: serial for one job, worker processes for
    more, Dask when a scheduler is given (ConfigError when both are)."""
    if scheduler and jobs != 1:
        raise ConfigError("give --jobs or --scheduler, not both")
    if scheduler:
        return DaskExecutor(scheduler, threads)
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    return SerialExecutor(threads) if jobs == 1 else ProcessExecutor(jobs, threads)
