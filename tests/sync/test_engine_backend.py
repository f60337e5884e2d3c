"""`engine.backend` in the configuration picks where the engine runs; a Dask scheduler address is checked."""

from __future__ import annotations

import pytest
from distributed import LocalCluster
from pydantic import ValidationError

from engine.backend import LOCAL
from engine.dask_backend import DaskBackend
from sync.config import EngineConfig
from sync.engine_backend import engine_backend


def test_the_default_backend_is_local() -> None:
    with engine_backend(EngineConfig()) as backend:
        assert backend is LOCAL


def test_a_malformed_scheduler_address_names_the_key() -> None:
    with pytest.raises(ValidationError, match="dask_scheduler"):
        EngineConfig(backend="dask", dask_scheduler="tcp://host with spaces:8786")


def test_dask_with_an_address_connects_to_that_scheduler() -> None:
    with LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None) as cluster:
        settings = EngineConfig(backend="dask", dask_scheduler=cluster.scheduler_address)
        with engine_backend(settings) as backend:
            assert isinstance(backend, DaskBackend)
            assert backend.client.scheduler.address == cluster.scheduler_address
            assert len(backend.client.scheduler_info()["workers"]) == 1
        assert backend.client.status == "closed"
