"""A scratch database migrated by the real history and seeded at a small scale, per module."""

from collections.abc import Iterator

import psycopg
import pytest

from shared.db import libpq_url
from tooling import migrate
from tooling.perf.seed import SeedResult, seed

SCALE = 0.01


@pytest.fixture(scope="module")
def perf_url(scratch_database) -> str:
    url = scratch_database()
    migrate.upgrade(url, "head")
    return url


@pytest.fixture(scope="module")
def seeded(perf_url: str) -> SeedResult:
    return seed(perf_url, SCALE)


@pytest.fixture
def conn(perf_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(perf_url), autocommit=True) as connection:
        yield connection
