"""Fixtures: bqemulator started and stopped once per session, a fresh fault relay per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bigquery.bq_harness import Emulator, FaultProxy, running_emulator


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """bqemulator on a free loopback port, loaded with the embedded sample for one month."""
    with running_emulator(
        tmp_path_factory.mktemp("bqemu-home"), tmp_path_factory.mktemp("bq-raw")
    ) as emulator:
        yield emulator


@pytest.fixture
def bq_proxy(bq_emulator: Emulator) -> Iterator[FaultProxy]:
    proxy = FaultProxy(bq_emulator.url)
    try:
        yield proxy
    finally:
        proxy.close()
