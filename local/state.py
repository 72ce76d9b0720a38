"""Where a running ``python -m local serve`` can be found: a small JSON file in the system's
temporary directory, written when it starts and removed when it stops, so that ``send``,
``read``, ``invoke`` and ``replay`` reach the same endpoints, queues, stream, buckets and
tables."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infra.blueprint import Blueprint
from local.cloud import Endpoints
from local.deploy import Deployment, LocalBucket, LocalQueue, LocalStream, LocalTable

#: ``FORWARDER_LOCAL_STATE`` moves it (the tests do, so as not to meet a serve of yours).
STATE_PATH = Path(
    os.environ.get(
        "FORWARDER_LOCAL_STATE",
        Path(tempfile.gettempdir()) / "cloudwatch-logs-forwarder-local.json",
    )
)


@dataclass(frozen=True, slots=True)
class ServeState:
    """The endpoints and resources of a running ``serve``; ``queue`` and ``stream`` are the
    logical ids of the sources (where ``send`` sends)."""

    endpoints: Endpoints
    prefix: str
    queues: dict[str, LocalQueue]
    streams: dict[str, LocalStream]
    queue: str
    stream: str
    pid: int
    buckets: dict[str, LocalBucket] = field(default_factory=dict)
    tables: dict[str, LocalTable] = field(default_factory=dict)

    @classmethod
    def of(cls, deployment: Deployment) -> ServeState:
        blueprint = deployment.blueprint
        assert blueprint.sqs is not None
        assert blueprint.kinesis is not None
        return cls(
            deployment.endpoints,
            deployment.prefix,
            dict(deployment.queues),
            dict(deployment.streams),
            blueprint.sqs.queue,
            blueprint.kinesis.stream.logical_id,
            os.getpid(),
            dict(deployment.buckets),
            dict(deployment.tables),
        )

    def save(self, path: Path | None = None) -> None:
        (path or STATE_PATH).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path | None = None) -> ServeState | None:
        """The state of a ``serve`` that is still running, else ``None``."""
        path = path or STATE_PATH
        if not path.is_file():
            return None
        document = json.loads(path.read_text())
        if not _alive(int(document["pid"])):
            return None
        return cls(
            Endpoints(**document["endpoints"]),
            document["prefix"],
            {k: LocalQueue(**v) for k, v in document["queues"].items()},
            {k: LocalStream(**v) for k, v in document["streams"].items()},
            document["queue"],
            document["stream"],
            int(document["pid"]),
            {k: LocalBucket(**v) for k, v in document.get("buckets", {}).items()},
            {k: LocalTable(**v) for k, v in document.get("tables", {}).items()},
        )

    def deployment(self, blueprint: Blueprint) -> Deployment:
        """The running deployment, to resolve a function's environment against it."""
        return Deployment(
            self.endpoints,
            blueprint,
            self.prefix,
            self.queues,
            self.streams,
            self.buckets,
            self.tables,
        )


def clear(path: Path | None = None) -> None:
    """Remove the state file (``serve`` does when it stops)."""
    (path or STATE_PATH).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
