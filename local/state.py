"""Where a running ``python -m local serve`` can be found: a small JSON file in the system's
temporary directory, written when it starts and removed when it stops, so that ``send``,
``read`` and ``invoke`` reach the same endpoints, queues and stream."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.blueprint import Blueprint
from local.cloud import Endpoints
from local.deploy import Deployment, LocalQueue, LocalStream

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
        )

    def deployment(self, blueprint: Blueprint) -> Deployment:
        """The running deployment, to resolve a function's environment against it."""
        return Deployment(self.endpoints, blueprint, self.prefix, self.queues, self.streams)


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
