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

Time limits: the driver stops a task over its limit with ``stop(future)`` where the executor
has it (:class:`ProcessExecutor` kills that task's worker); in this process and on Dask only the
run's own check between steps applies (:func:`kswgd.engine.execute.execute`).

This module imports nothing heavy at the top, so that a spawned worker sets itself up before
Numba or a BLAS library is loaded.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

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
    """Runs each task in this process when it is submitted (:func:`run_suite`'s default). It
    cannot stop a task: a run's time limit is checked between its steps only."""

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


#: How often (seconds) a worker checks that its driver is still alive.
PARENT_POLL = 0.2

#: In a worker process, the shared counter a task reports its current step into (see
#: :func:`report_step`); None in the driver.
_STEP_SLOT = None


class WorkerLost(RuntimeError):
    """A worker process ended while it held a task (a crash, the out-of-memory killer, a plug-in
    calling ``os._exit``)."""


def report_step(k: int) -> None:
    """Say which step the task in this process is at (0: before the first step). In a worker
    of a :class:`ProcessExecutor` the driver reads it when it stops the task; elsewhere a no-op."""
    if _STEP_SLOT is not None:
        _STEP_SLOT.value = k


def _die_with(parent: int) -> None:
    """End this process as soon as the driver ``parent`` is gone, SIGKILL included: Linux's
    PR_SET_PDEATHSIG (delivered when the thread that started this process ends), and on every
    system a daemon thread that sees os.getppid() change (it needs the GIL, which a long
    compiled call may hold; PR_SET_PDEATHSIG does not)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the thread alone

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="kswgd-parent-watch", daemon=True).start()


def _worker_main(conn, steps, began, parent: int) -> None:
    """A worker process: Ctrl-C is the driver's to handle (it stops the workers), OpenMP threads
    sleep rather than spin while waiting, the process ends with its driver; then it computes
    the tasks ``(fn, args)`` it receives, one at a time, and sends back ``(True, result)`` or
    ``(False, exception)``, whatever the task raised (SystemExit and KeyboardInterrupt included).
    ``began`` holds the time.monotonic() at which the current task began (0 when idle)."""
    global _STEP_SLOT
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    _die_with(parent)
    _STEP_SLOT = steps
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        fn, args = job
        steps.value, began.value = 0, time.monotonic()
        try:
            reply = (True, fn(*args))
        except BaseException as err:  # noqa: BLE001 - the task's failure is the driver's to judge
            reply = (False, err)
        began.value = 0.0
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - an unpicklable result or exception
            conn.send((False, RuntimeError(f"the task's result could not be sent back: "
                                           f"{type(err).__name__}: {err}")))


@dataclass(eq=False)
class _Worker:
    proc: multiprocessing.process.BaseProcess
    conn: object
    steps: object            # shared int: the step its task is at
    began: object            # shared float: time.monotonic() when its task began, 0 if idle
    future: Future | None = None
    dead: bool = False


class ProcessExecutor(_Executor):
    """``--jobs N`` (``N`` ≥ 1): N worker processes started with the ``spawn`` method (a fork of a
    process whose Numba/OpenMP threads have started can deadlock), each with its own pipe and
    one task at a time, so that the driver can :meth:`stop` exactly one task (a run over its
    time limit) by killing its worker. A worker that dies fails only its own task (WorkerLost;
    the driver resubmits it) and is replaced at the next submit. Workers end with the driver,
    even when it is killed with SIGKILL (:func:`_die_with`); start and use the executor from
    one thread that outlives the sweep (the main thread)."""

    kind = "jobs"

    def __init__(self, jobs: int, threads: int = 1):
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.slots, self.threads = int(jobs), check_threads(threads)
        self._ctx = multiprocessing.get_context("spawn")
        self._workers = [self._start() for _ in range(self.slots)]

    def _start(self) -> _Worker:
        here, there = self._ctx.Pipe()
        steps, began = self._ctx.RawValue("q", 0), self._ctx.RawValue("d", 0.0)
        proc = self._ctx.Process(target=_worker_main, args=(there, steps, began, os.getpid()),
                                 name="kswgd-worker", daemon=True)
        proc.start()
        there.close()  # only the worker holds its end: its death is an EOF here
        return _Worker(proc, here, steps, began)

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": self.slots}

    def submit(self, fn, *args) -> Future:
        for i, w in enumerate(self._workers):
            if w.future is None:
                if w.dead or not w.proc.is_alive():
                    self._retire(w)
                    w = self._workers[i] = self._start()
                break
        else:
            raise RuntimeError(f"all {self.slots} workers are busy")
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        w.future = fut
        w.conn.send((fn, args))
        threading.Thread(target=self._collect, args=(w, fut), daemon=True).start()
        return fut

    @staticmethod
    def _collect(w: _Worker, fut: Future) -> None:
        """Wait for one task's reply (in a thread) and settle its future; the worker is free
        before the future is, so the driver's next submit finds it idle."""
        try:
            ok, value = w.conn.recv()
        except (EOFError, OSError):
            w.dead = True
            w.proc.join(5)
            if w.future is fut:
                w.future = None
            if not fut.done():
                fut.set_exception(WorkerLost(f"worker process {w.proc.pid} ended during the "
                                             f"task (exit status {w.proc.exitcode})"))
            return
        if w.future is fut:
            w.future = None
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def elapsed(self, fut: Future) -> float:
        """Seconds since the worker began computing ``fut`` (a fresh worker first imports the
        package: that start-up is not the task's); 0 before it began or when not running here."""
        for w in self._workers:
            if w.future is fut and w.began.value:
                return max(0.0, time.monotonic() - w.began.value)
        return 0.0

    def stop(self, fut: Future) -> int | None:
        """Kill the worker computing ``fut`` (a task over its time limit; it is replaced at the
        next submit). Returns the step the task had reported (:func:`report_step`), or None
        when ``fut`` is not running here."""
        for w in self._workers:
            if w.future is fut:
                step = int(w.steps.value)
                w.dead, w.future = True, None
                self._retire(w)
                return step
        return None

    @staticmethod
    def _retire(w: _Worker) -> None:
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5)
        w.conn.close()

    def close(self, wait: bool = True) -> None:
        """End the workers: idle ones are asked to finish (``wait``), any other is killed at
        once (Ctrl-C, or a worker still busy)."""
        for w in self._workers:
            if wait and w.future is None and not w.dead:
                try:
                    w.conn.send(None)
                    w.proc.join(5)
                except OSError:
                    pass
            self._retire(w)
            w.dead = True


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
        check_backend(1, address)
        self.address, self._cluster = address, None
        if address.startswith("local:"):
            n = address.split(":", 1)[1]
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
    """The executor of ``--jobs``/``--scheduler``: ``jobs`` worker processes, one included (a
    run over its time limit can only be stopped in a process of its own), or Dask when a
    scheduler is given (ConfigError when both are)."""
    check_backend(jobs, scheduler)
    if scheduler:
        return DaskExecutor(scheduler, threads)
    return ProcessExecutor(jobs, threads)


def check_backend(jobs: int = 1, scheduler: str | None = None) -> None:
    """ConfigError (one line) for ``--jobs``/``--scheduler`` values that cannot work, checked
    before anything is created: both given, jobs < 1, ``local:N`` without a count N ≥ 1."""
    if scheduler and jobs != 1:
        raise ConfigError("give --jobs or --scheduler, not both")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if scheduler and scheduler.startswith("local:"):
        n = scheduler.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ConfigError(f"--scheduler local:N needs a worker count N ≥ 1, got {n!r}")
