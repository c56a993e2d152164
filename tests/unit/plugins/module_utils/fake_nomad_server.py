# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A scripted HTTP server on 127.0.0.1 for unit tests of the client: the tests fake Nomad at the wire,
so requests, urllib3's Retry, TLS and connection handling all run for real.

`FakeNomad(handler)` serves `handler(request) -> Reply | DROP` for every request; `request` is a
RecordedRequest (method, path, query, headers, body).  Every request is recorded in `.requests`.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DROP = object()  # close the connection without any answer


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict/list -> JSON, str -> plain text, None -> empty
    headers: dict = field(default_factory=dict)
    cut_body: bool = False  # announce the whole body, send half of it, close the connection
    content_type: str = ""  # replaces the one derived from the body (an HTML page from a proxy, say)

    def encoded(self):
        if self.body is None:
            payload, content_type = b"", "text/plain; charset=utf-8"
        elif isinstance(self.body, str):
            payload, content_type = self.body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(self.body).encode("utf-8"), "application/json"
        return payload, self.content_type or content_type


def json_reply(data, index=None, next_token=None, status=200):
    headers = {}
    if index is not None:
        headers["X-Nomad-Index"] = str(index)
    if next_token:
        headers["X-Nomad-NextToken"] = next_token
    return Reply(status=status, body=data, headers=headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def setup(self):
        super().setup()
        # Without this, Nagle + delayed ACK add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query={key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()},
            headers=dict(self.headers.items()),
            body=body,
        )
        fake = self.server.fake
        with fake.lock:
            fake.requests.append(request)
        reply = fake.handler(request)
        if reply is DROP:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload, content_type = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.cut_body:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class FakeNomad:
    """Context manager: a threaded HTTP(S) server on a free loopback port."""

    def __init__(self, handler, ssl_context=None):
        self.handler = handler
        self.requests = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        scheme = "http"
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.port = self._server.server_address[1]
        self.address = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()

    def calls(self, method=None, path=None):
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]


def free_port():
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_ssl_context(cert, require_client_cert_from=None):
    """A server-side SSLContext from a trustme LeafCert, optionally requiring client certs from a trustme CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    if require_client_cert_from is not None:
        require_client_cert_from.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
