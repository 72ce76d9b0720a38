"""The local endpoints as one thing: moto in server mode for SQS, Kinesis, S3, DynamoDB and
CloudWatch Logs, and the strict CloudWatch Logs layer in front of moto's CloudWatch Logs.

The function reaches CloudWatch Logs through the strict layer (so every request it sends is
checked as the real service would check it) and SQS directly at moto; the event source mappings
reach SQS and Kinesis directly at moto; set-up and read-back use moto directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

from local.endpoints import MotoServer
from local.strict_logs import StrictLogsProxy

REGION = "us-east-1"
ACCOUNT = "123456789012"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the local services answer. ``moto_url`` serves every service; ``logs_url`` is the
    strict CloudWatch Logs layer the function talks to."""

    moto_url: str
    logs_url: str
    region: str = REGION
    account: str = ACCOUNT

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client straight to moto, with dummy credentials (never the user's own)."""
        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name=self.region,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
            config=Config(retries={"mode": "standard", "max_attempts": 3}, **config),
        )

    def function_environment(self) -> dict[str, str]:
        """The variables that point a function (botocore) at these endpoints: CloudWatch Logs
        through the strict layer, SQS, Kinesis, S3 and DynamoDB at moto; dummy credentials; the
        region."""
        return CREDENTIALS | {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.logs_url,
            "AWS_ENDPOINT_URL_SQS": self.moto_url,
            "AWS_ENDPOINT_URL_KINESIS": self.moto_url,
            "AWS_ENDPOINT_URL_S3": self.moto_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.moto_url,
        }


class LocalCloud:
    """Starts moto and the strict layer on 127.0.0.1 and stops them, as a context manager.

    ``proxy`` is the ``StrictLogsProxy``: read its ``state`` (calls, violations) and inject
    faults with ``proxy.inject``.
    """

    def __init__(self) -> None:
        self._moto = MotoServer()
        self._proxy: StrictLogsProxy | None = None

    @property
    def proxy(self) -> StrictLogsProxy:
        if self._proxy is None:
            raise RuntimeError("LocalCloud is not started")
        return self._proxy

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(self._moto.url, self.proxy.url)

    def start(self) -> LocalCloud:
        # moto's server logs every request through werkzeug; the demo's output stays readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto.start()
        self._proxy = StrictLogsProxy(self._moto.url).__enter__()
        return self

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.__exit__(None, None, None)
            self._proxy = None
        self._moto.stop()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
