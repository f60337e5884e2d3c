"""The engine backend the configuration asks for: `engine.backend: local` (default) or `dask`.

With `dask`, `engine.dask_scheduler` is the address of a running scheduler (`tcp://host:8786`); empty
starts a `LocalCluster` of worker processes on this machine for the duration of one scoring run. Dask is
imported only on that path, so the default daemon does not pay for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from engine.backend import LOCAL, Backend
from sync.config import EngineConfig

log = logging.getLogger("espd.engine_backend")
# A local cluster's workers: LightGBM's data-parallel training needs one process per machine rank.
LOCAL_WORKERS = 2


@contextmanager
def engine_backend(settings: EngineConfig) -> Iterator[Backend]:
    """The backend for one scoring run; a cluster or client it opened is closed afterwards."""
    if settings.backend == "local":
        yield LOCAL
        return
    from distributed import Client, LocalCluster

    from engine.dask_backend import DaskBackend

    with ExitStack() as stack:
        if settings.dask_scheduler:
            address = settings.dask_scheduler
            log.info("event=dask_connect scheduler=%s", address)
            try:
                client = stack.enter_context(Client(address, timeout="30s"))
            except OSError as exc:
                raise RuntimeError(
                    f"engine.dask_scheduler: cannot reach the Dask scheduler at {address}: {exc}"
                ) from exc
        else:
            log.info("event=dask_local_cluster workers=%d", LOCAL_WORKERS)
            cluster = stack.enter_context(
                LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1, dashboard_address=None)
            )
            client = stack.enter_context(Client(cluster))
        yield DaskBackend(client)
