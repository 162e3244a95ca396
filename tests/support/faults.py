"""A fault-injecting HTTP proxy on 127.0.0.1, between the trainer and the tests' S3 server.

Each Rule picks requests (method, a path substring, ranged GETs only) and does one thing to them:
`status` answers an S3 error (503 SlowDown, 500 InternalError) without asking the server; `reset` drops
the connection; `latency` waits before forwarding; `hang` holds the request open until the proxy stops;
`short` answers half the body with an honest Content-Length (a response that looks whole); `cut`
promises the whole body and closes half way; `call` runs the rule's action (a kill point: SIGKILL the
trainer as its first staging upload or its first promotion copy arrives) and drops the connection.
A rule fires `times` times (None: always) or with a probability. The proxy records what it did, so a
test can check that its fault was met.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("status", "reset", "latency", "hang", "short", "cut", "call")
S3_ERROR_CODES = {503: "SlowDown", 500: "InternalError"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class Rule:
    fault: str
    method: str | None = None
    path: str = ""  # a substring of the request's path
    header: str | None = None  # a header the request must carry (x-amz-copy-source: a server-side copy)
    ranged_only: bool = False
    times: int | None = None  # how many requests it hits; None: every matching one
    probability: float = 1.0
    status: int = 503
    seconds: float = 0.0
    action: Callable[[], object] | None = None  # what `call` runs
    hits: int = 0

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {FAULTS}")

    def matches(self, method: str, path: str, headers: Message, rng: random.Random) -> bool:
        if self.method and method != self.method:
            return False
        if self.header and self.header not in headers:
            return False
        ranged = "Range" in headers
        if self.path not in path or (self.ranged_only and not ranged):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return rng.random() < self.probability


@dataclass
class Hit:
    fault: str
    method: str
    path: str


@dataclass
class FaultProxy:
    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    seed: int = 0
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)  # noqa: S311 - which requests fail, not security
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pick(self, method: str, path: str, headers: Message) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, headers, self._rng):
                    rule.hits += 1
                    self.hits.append(Hit(rule.fault, method, path))
                    return rule
        return None

    def hit_count(self, fault: str) -> int:
        with self._lock:
            return sum(1 for h in self.hits if h.fault == fault)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reset(self) -> None:
            # RST rather than FIN: what a load balancer dropping the connection looks like to the client.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _error(self, status: int) -> None:
            code = S3_ERROR_CODES.get(status, "InternalError")
            body = f"<Error><Code>{code}</Code><Message>injected by the test</Message></Error>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                return response.status, response.getheaders(), data
            finally:
                upstream.close()

        def _serve(self) -> None:
            body = self._body()
            rule = proxy.pick(self.command, self.path, self.headers)
            fault = rule.fault if rule else None
            if rule and fault == "status":
                return self._error(rule.status)
            if rule and fault == "call" and rule.action:
                rule.action()
            if fault in ("reset", "call"):
                return self._reset()
            if fault == "hang":
                proxy.stopping.wait()
                return self._reset()
            if rule and fault == "latency":
                proxy.stopping.wait(rule.seconds)
            status, headers, data = self._forward(body)
            sent = data
            # A HEAD's length is the object's, as the server said; there is no body to count.
            length = (
                int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
                if self.command == "HEAD"
                else len(data)
            )
            if fault in ("short", "cut") and self.command == "GET" and len(data) > 1:
                sent = data[: len(data) // 2]
                length = len(sent) if fault == "short" else len(data)
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in HOP_HEADERS and not (fault == "short" and key.lower() == "content-range"):
                    self.send_header(key, value)
            if fault == "short" and "Range" in self.headers:
                start = int(self.headers["Range"].split("=")[1].split("-")[0])
                total = dict((k.lower(), v) for k, v in headers).get("content-range", "/0").split("/")[-1]
                self.send_header("Content-Range", f"bytes {start}-{start + length - 1}/{total}")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(sent)
            if fault == "cut":
                self.wfile.flush()
                self._reset()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _serve  # noqa: N815 - http.server dispatches on these names

    return Handler
