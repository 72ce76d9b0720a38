"""Fixtures of the end-to-end tests: one set of local endpoints per module, a fresh deployment
(queues and stream under a unique prefix) per test, and the strict layer's verdict on every
request the functions sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.blueprint import Blueprint
from local.cloud import LocalCloud
from local.deploy import Deployment
from local.strict_logs import StrictLogsProxy
from tests.e2e.helpers import fast_blueprint


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as local_cloud:
        yield local_cloud


@pytest.fixture
def strict(cloud: LocalCloud) -> Iterator[StrictLogsProxy]:
    """The strict layer, clean for this test; any request it refused fails the test."""
    cloud.proxy.reset()
    yield cloud.proxy
    violations = list(cloud.proxy.state.violations)
    cloud.proxy.reset()
    assert not violations, f"requests the real service would refuse: {violations}"


@pytest.fixture
def deploy(cloud: LocalCloud, strict: StrictLogsProxy) -> Callable[..., Deployment]:
    """Create a blueprint's queues and stream under a prefix of this test's own."""

    def create(blueprint: Blueprint | None = None) -> Deployment:
        prefix = f"t{uuid.uuid4().hex[:10]}"
        return Deployment.create(cloud.endpoints, blueprint or fast_blueprint(), prefix)

    return create


@pytest.fixture
def logs(cloud: LocalCloud) -> Any:
    return cloud.endpoints.client("logs")


@pytest.fixture
def sqs(cloud: LocalCloud) -> Any:
    return cloud.endpoints.client("sqs")


@pytest.fixture
def kinesis(cloud: LocalCloud) -> Any:
    return cloud.endpoints.client("kinesis")


@pytest.fixture
def log_group(logs: Any) -> str:
    """A fresh log group under /app/ (the functions' allow-list)."""
    name = f"/app/e2e-{uuid.uuid4().hex[:10]}"
    logs.create_log_group(logGroupName=name)
    return name
