"""Shared fixtures: moto in server mode and the strict CloudWatch Logs layer on 127.0.0.1.

The forwarder reaches CloudWatch Logs through the strict layer via botocore's own
``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`` and SQS directly at moto via ``AWS_ENDPOINT_URL_SQS``. Any
request the real service would refuse for its shape fails the test that sent it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from forwarder.settings import VARIABLES
from local.deploy import create_checkpoint_table
from local.endpoints import MotoServer
from local.strict_logs import StrictLogsProxy

ROOT = Path(__file__).resolve().parent.parent
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "log-forwarder-tests",
    "POWERTOOLS_METRICS_NAMESPACE": "LogForwarderTests",
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def strict_proxy(moto_server: MotoServer) -> Iterator[StrictLogsProxy]:
    with StrictLogsProxy(moto_server.url) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def aws_endpoints(moto_server: MotoServer, strict_proxy: StrictLogsProxy) -> Iterator[None]:
    """Credentials and endpoints for the whole session, restored afterwards."""
    values = AWS_ENV | {
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": strict_proxy.url,
        "AWS_ENDPOINT_URL_SQS": moto_server.url,
        "AWS_ENDPOINT_URL_KINESIS": moto_server.url,
        "AWS_ENDPOINT_URL_S3": moto_server.url,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_server.url,
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def strict(strict_proxy: StrictLogsProxy, aws_endpoints: None) -> Iterator[StrictLogsProxy]:
    """The strict layer, clean for this test; any shape violation fails the test."""
    strict_proxy.reset()
    yield strict_proxy
    # A request abandoned at a deadline is still in flight: let it finish inside this test.
    waited_until = time.monotonic() + 15
    while strict_proxy.state.in_flight and time.monotonic() < waited_until:
        time.sleep(0.05)
    violations = list(strict_proxy.state.violations)
    strict_proxy.reset()
    assert not violations, f"requests the real service would refuse: {violations}"


@pytest.fixture
def logs(moto_server: MotoServer, aws_endpoints: None) -> Any:
    """A client straight to moto, to set up and read back what landed."""
    return boto3.client("logs", endpoint_url=moto_server.url)


@pytest.fixture
def sqs(moto_server: MotoServer, aws_endpoints: None) -> Any:
    return boto3.client("sqs", endpoint_url=moto_server.url)


@pytest.fixture
def s3(moto_server: MotoServer, aws_endpoints: None) -> Any:
    return boto3.client("s3", endpoint_url=moto_server.url)


@pytest.fixture
def dynamodb(moto_server: MotoServer, aws_endpoints: None) -> Any:
    return boto3.client("dynamodb", endpoint_url=moto_server.url)


@pytest.fixture
def checkpoint_table(dynamodb: Any) -> str:
    """A fresh delivery-checkpoint table, keyed as the CDK app makes it."""
    name = f"checkpoints-{uuid.uuid4().hex[:12]}"
    create_checkpoint_table(dynamodb, name)
    return name


@pytest.fixture
def log_group(logs: Any) -> str:
    """A fresh log group under /app/ (the default allow-list of the tests)."""
    name = f"/app/test-{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=name)
    return name


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch, aws_endpoints: None) -> Callable[..., Any]:
    """Import ``forwarder.handler`` afresh under the given environment (settings are read at
    import, as on a Lambda cold start)."""

    def load(**env: str) -> Any:
        for key in VARIABLES:
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if "forwarder.handler" in sys.modules:
            module = importlib.reload(sys.modules["forwarder.handler"])
        else:
            module = importlib.import_module("forwarder.handler")
        # Powertools reuses the named logger's handler, bound to the stdout of the first load;
        # point it at this test's captured stdout.
        for log_handler in logging.getLogger(AWS_ENV["POWERTOOLS_SERVICE_NAME"]).handlers:
            if isinstance(log_handler, logging.StreamHandler):
                log_handler.stream = sys.stdout  # setStream would flush the closed one
        return module

    return load
