"""A fault-injecting HTTP proxy in front of a test registry on 127.0.0.1.

Input: an upstream ``127.0.0.1:PORT`` and a :class:`FaultPlan`. Output: a
listening proxy whose responses are sometimes broken on purpose: 500/503/429
(with ``Retry-After``), connections reset before or after the upstream saw the
request, bodies truncated (with or without a Content-Length), a flipped byte
and slow answers.

Deterministic and bounded: whether the n-th request for a (method, path) is
faulted, and how, depends only on (seed, method, path, n), never on thread
timing; and no (method, path) is faulted more than ``max_consecutive`` times
in a row, so a client that retries enough always gets through. Upload session
ids in paths are folded into one key so the bound holds across sessions.
Only loopback upstreams are accepted.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALL_FAULTS = (
    "500",
    "503",
    "429",
    "reset",
    "reset_after",
    "truncate",
    "truncate_nolength",
    "corrupt",
    "slow",
)
_BODY_FAULTS = frozenset({"truncate", "truncate_nolength", "corrupt"})
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
     "proxy-connection", "content-length"}
)  # fmt: skip
_UPLOAD_ID = re.compile(r"/blobs/uploads/[^/?]+")


@dataclass(frozen=True)
class FaultPlan:
    seed: int = 0
    rate: float = 0.3
    faults: tuple[str, ...] = ALL_FAULTS
    max_consecutive: int = 2
    slow_seconds: float = 0.3
    methods: frozenset[str] = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH"})


@dataclass
class FaultLog:
    faults: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # "METHOD path-key"
    events: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, fault


class FaultProxy:
    def __init__(self, upstream: str, plan: FaultPlan) -> None:
        host = upstream.rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the fault proxy only forwards to loopback, not {upstream}")
        self.upstream = upstream
        self.plan = plan
        self.log = FaultLog()
        self._lock = threading.Lock()
        self._visits: Counter[tuple[str, str]] = Counter()
        self._streak: Counter[tuple[str, str]] = Counter()
        self.enabled = True
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def decide(self, method: str, path: str) -> str | None:
        """The fault for this request, or None to forward it untouched."""
        key = (method, _UPLOAD_ID.sub("/blobs/uploads/<id>", path.split("?", 1)[0]))
        with self._lock:
            self._visits[key] += 1
            n = self._visits[key]
            self.log.requests[f"{key[0]} {key[1]}"] += 1
            if not self.enabled or method not in self.plan.methods:
                return None
            if self._streak[key] >= self.plan.max_consecutive:
                self._streak[key] = 0
                return None
            rng = random.Random(f"{self.plan.seed}:{key[0]}:{key[1]}:{n}")
            if rng.random() >= self.plan.rate:
                self._streak[key] = 0
                return None
            fault = rng.choice(self.plan.faults)
            self._streak[key] += 1
            return fault

    def record(self, method: str, path: str, fault: str) -> None:
        with self._lock:
            self.log.faults[fault] += 1
            self.log.events.append((method, path, fault))


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on injected faults are expected, not news


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        # SO_LINGER 0: close with RST, the way a crashing peer or middlebox drops it.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _status(self, code: int, retry_after: str | None = None) -> None:
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.owner.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("PUT", "PATCH", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _handle(self) -> None:
        body = self._read_body()
        fault = self.owner.decide(self.command, self.path)
        if fault is not None and fault in _BODY_FAULTS and self.command != "GET":
            fault = None  # only GET responses have bodies worth breaking
        if fault is not None:
            self.owner.record(self.command, self.path, fault)
        if fault in ("500", "503", "429"):
            self._status(int(fault), retry_after="0" if fault != "500" else None)
            return
        if fault == "reset":
            self._reset()
            return
        if fault == "slow":
            time.sleep(self.owner.plan.slow_seconds)
        status, reason, headers, data = self._forward(body)
        if fault == "reset_after":
            self._reset()
            return
        send = data
        if fault in ("truncate", "truncate_nolength"):
            send = data[: len(data) // 2]
        elif fault == "corrupt" and data:
            mid = len(data) // 2
            send = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if fault == "truncate_nolength":
            self.send_header("Connection", "close")
            self.close_connection = True
        elif self.command == "HEAD":
            length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
            self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(send)
        if fault == "truncate":
            self.wfile.flush()
            self._reset()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


@contextmanager
def run_fault_proxy(upstream: str, plan: FaultPlan) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, plan).start()
    try:
        yield proxy
    finally:
        proxy.stop()
