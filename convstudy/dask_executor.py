"""Running a study's tasks on a Dask cluster (``convstudy run ... --scheduler / --dask-local``).

:class:`DaskExecutor` has the interface of :class:`convstudy.runner.SerialExecutor`:
``map_unordered(fn, items)`` yields ``(index, fn(items[index]))`` as results complete, in
completion order. The runner writes each result to its cache as it arrives and puts the study's
frame together in grid order afterwards, so nothing depends on which worker ran what, or when.

- ``DaskExecutor(scheduler="tcp://HOST:PORT")`` sends tasks to an existing
  ``dask.distributed`` cluster; the client connects at once, so a wrong address fails before any
  work starts, and closing the executor disconnects without touching the cluster.
- ``DaskExecutor(n_workers=N)`` starts a ``LocalCluster`` of N single-threaded worker processes
  listening on the loopback interface only (127.0.0.1, no dashboard), the first time there is
  work, and shuts it down on :meth:`DaskExecutor.close` (or leaving a ``with`` block, or when
  the executor is garbage-collected or the interpreter exits).

Functions are shipped with cloudpickle: library functions by reference (workers must have
convstudy installed, at the same version: the cache key holds the client's version); the
functions of a user's study file by value (:mod:`convstudy.registry` registers the file's module
with ``cloudpickle.register_pickle_by_value``), so workers need not see the file.

Dask is an optional dependency: ``pip install 'convstudy[dask]'``.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Sequence

from ._validation import check_scalar

__all__ = ["DaskExecutor", "DASK_MISSING"]

DASK_MISSING = (
    "The Dask executor needs dask.distributed, which is not installed: "
    "install convstudy[dask] (pip install 'convstudy[dask]')."
)


def _distributed():
    """The ``distributed`` module, or an ImportError saying how to install it (one line)."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(DASK_MISSING) from exc
    return distributed


def _shutdown(client, cluster) -> None:
    """Close a client and then the cluster it owns (either may be None); never raises."""
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass


class DaskExecutor:
    """Runs tasks on a dask.distributed cluster: an existing one or a LocalCluster it starts.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    n_workers : int, optional
        Start a LocalCluster of ``n_workers`` single-threaded processes on 127.0.0.1 instead.
        Exactly one of ``scheduler`` and ``n_workers`` may be given; with neither, a
        LocalCluster with one worker per CPU core is started.
    timeout : float
        Seconds to wait when connecting to ``scheduler`` (default 5).
    worker_timeout : float
        Seconds to wait for at least one worker when the cluster has none (default 60).
    """

    name = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        n_workers: int | None = None,
        *,
        timeout: float = 5.0,
        worker_timeout: float = 60.0,
    ):
        owner = "DaskExecutor"
        if scheduler is not None and n_workers is not None:
            raise ValueError(
                f"The 'scheduler' and 'n_workers' parameters of {owner} exclude each other "
                f"(connect to a cluster, or start a local one). Got scheduler={scheduler!r} "
                f"and n_workers={n_workers!r}."
            )
        if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
            raise TypeError(
                f"The 'scheduler' parameter of {owner} must be an address such as "
                f"'tcp://HOST:PORT'. Got {scheduler!r} instead."
            )
        if n_workers is not None:
            n_workers = check_scalar(n_workers, "n_workers", owner, kind=int, low=1, closed="left")
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.timeout = check_scalar(timeout, "timeout", owner, low=0.0)
        self.worker_timeout = check_scalar(worker_timeout, "worker_timeout", owner, low=0.0)
        self._client = None
        self._cluster = None
        self._finalizer = None
        _distributed()  # fail now, in one line, when dask is missing
        if scheduler is not None:
            self._connect()

    # ---- lifecycle ---------------------------------------------------------------------------
    def _connect(self):
        """The client, connecting to the scheduler or starting the LocalCluster on first use."""
        if self._client is not None:
            return self._client
        distributed = _distributed()
        cluster = None
        if self.scheduler is not None:
            try:
                client = distributed.Client(
                    self.scheduler, timeout=self.timeout, set_as_default=False
                )
            except (OSError, ValueError, TypeError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConnectionError(
                    f"Could not reach the Dask scheduler at {self.scheduler!r} within "
                    f"{self.timeout:g} s ({reason}). Is it running, and is the address "
                    f"'tcp://HOST:PORT'?"
                ) from None
        else:
            cluster = distributed.LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # loopback; the dashboard itself stays off
                scheduler_kwargs={"dashboard": False},
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster, set_as_default=False)
        self._client, self._cluster = client, cluster
        self._finalizer = weakref.finalize(self, _shutdown, client, cluster)
        return client

    def close(self) -> None:
        """Disconnect; shut down the LocalCluster if this executor started one."""
        if self._finalizer is not None:
            self._finalizer()
        self._client = self._cluster = self._finalizer = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def address(self) -> str | None:
        """The scheduler's address once connected (the LocalCluster's, when one was started)."""
        return None if self._client is None else self._client.scheduler.address

    def __repr__(self) -> str:
        where = self.scheduler or f"LocalCluster(n_workers={self.n_workers})"
        return f"DaskExecutor({where})"

    # ---- work --------------------------------------------------------------------------------
    def _wait_for_workers(self, client) -> None:
        if client.scheduler_info().get("workers"):
            return
        try:
            client.wait_for_workers(1, timeout=self.worker_timeout)
        except (TimeoutError, OSError):
            raise ConnectionError(
                f"The Dask scheduler at {client.scheduler.address!r} has no workers "
                f"(waited {self.worker_timeout:g} s)."
            ) from None

    def map_unordered(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        """Yield ``(i, fn(items[i]))`` for every item, in the order results complete.

        A task that raises re-raises here (with the worker's exception); the tasks not yet
        finished are then cancelled, as they are when the caller stops iterating early
        (e.g. on KeyboardInterrupt).
        """
        items = list(items)
        if not items:
            return
        distributed = _distributed()
        client = self._connect()
        self._wait_for_workers(client)
        futures = client.map(fn, items, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future, result in distributed.as_completed(
                futures, loop=client.loop, with_results=True
            ):
                yield index[future.key], result
        finally:
            try:
                client.cancel(futures)
            except Exception:  # noqa: BLE001 - the client may already be closing
                pass
