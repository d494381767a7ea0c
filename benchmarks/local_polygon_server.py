"""A loopback HTTP/1.1 server that answers precomputed Polygon bodies after a fixed latency.

Run as ``python -m benchmarks.local_polygon_server LATENCY_SECONDS`` with a pickled
``{path: body}`` mapping on stdin; it prints the port it listens on (127.0.0.1, a free port)
and serves until terminated. :mod:`benchmarks.bench_ingestion` starts it in a subprocess so the
server never competes with the client for the client's GIL.

Only the standard library is imported, so the process starts quickly. Every request costs a
dictionary lookup, one non-blocking sleep and one write: the bodies are built beforehand, so what
a client measures against this server is its own throughput, not response generation. Two
control paths let the benchmark check that claim instead of assuming it:

* ``GET /_stats`` reports, since the last reset, the requests answered, the connections that
  carried them (fewer connections than requests means keep-alive works), the peak number of
  requests in flight at once (what concurrency the client really achieved), the time each
  request took beyond the injected latency, and the server's CPU seconds.
* ``GET /_reset`` zeroes those figures.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
from dataclasses import dataclass

_CONTROL_PREFIX = b"/_"
_NOT_FOUND = b'{"status":"NOT_FOUND","request_id":"bench","message":"Data not found."}'


@dataclass
class _Stats:
    requests: int = 0
    connections: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    extra_seconds: float = 0.0  # time spent per request beyond the injected latency, summed
    max_extra_seconds: float = 0.0
    cpu_at_reset: float = 0.0

    def reset(self) -> None:
        # in_flight is live state (requests being answered right now), so it is kept.
        self.requests = self.connections = 0
        self.peak_in_flight = self.in_flight
        self.extra_seconds = self.max_extra_seconds = 0.0
        self.cpu_at_reset = time.process_time()

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "connections": self.connections,
                "peak_in_flight": self.peak_in_flight,
                "extra_ms_mean": 1000 * self.extra_seconds / max(self.requests, 1),
                "extra_ms_max": 1000 * self.max_extra_seconds,
                "cpu_seconds": time.process_time() - self.cpu_at_reset,
            }
        ).encode()


def _response(status: bytes, body: bytes, *, close: bool) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Content-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"\r\n"
    )
    return head + body


class _Server:
    def __init__(self, bodies: dict[str, bytes], latency: float) -> None:
        self._bodies = {path.encode(): body for path, body in bodies.items()}
        self._latency = latency
        self.stats = _Stats()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counted = False
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                received = time.perf_counter()
                request_line, _, headers = head.partition(b"\r\n")
                target = request_line.split(b" ")[1]
                path = target.split(b"?", 1)[0]
                close = b"connection: close" in headers.lower()
                if path.startswith(_CONTROL_PREFIX):
                    if path == b"/_reset":
                        self.stats.reset()
                    writer.write(_response(b"200 OK", self.stats.as_json(), close=close))
                    await writer.drain()
                else:
                    if not counted:
                        # Connections are counted at their first data request, so the benchmark's
                        # own /_stats calls do not look like keep-alive failures.
                        self.stats.connections += 1
                        counted = True
                    await self._answer(writer, path, received, close=close)
                if close:
                    return
        finally:
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, path: bytes, received: float, *, close: bool
    ) -> None:
        stats = self.stats
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            # The body is looked up before sleeping, so the sleep is the only wait a request sees.
            body = self._bodies.get(path)
            await asyncio.sleep(self._latency)
            if body is None:
                writer.write(_response(b"404 Not Found", _NOT_FOUND, close=close))
            else:
                writer.write(_response(b"200 OK", body, close=close))
            await writer.drain()
        finally:
            stats.in_flight -= 1
        extra = time.perf_counter() - received - self._latency
        stats.requests += 1
        stats.extra_seconds += extra
        stats.max_extra_seconds = max(stats.max_extra_seconds, extra)


async def _serve(bodies: dict[str, bytes], latency: float) -> None:
    server = _Server(bodies, latency)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=1024)
    port = listener.sockets[0].getsockname()[1]
    server.stats.reset()
    print(port, flush=True)
    async with listener:
        await listener.serve_forever()


def main() -> None:
    latency = float(sys.argv[1])
    bodies = pickle.load(sys.stdin.buffer)
    asyncio.run(_serve(bodies, latency))


if __name__ == "__main__":
    main()
