"""moto in server mode on 127.0.0.1, started and stopped by the project's own code."""

from __future__ import annotations

from types import TracebackType

from moto.server import ThreadedMotoServer


class MotoServer:
    """A moto server (all services on one port) on a free loopback port.

    Use as a context manager; ``url`` is what ``AWS_ENDPOINT_URL_*`` variables point at.
    """

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
