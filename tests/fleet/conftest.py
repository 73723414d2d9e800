"""Session fixtures of the fleet tests: `redis_url`, `postgres_url` (from .ci/run's servers, or started here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import servers


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with servers.redis_url(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with servers.postgres_url() as url:
        yield url
