"""A loopback HTTP proxy that adds network latency, for the sync benchmarks.

Loopback has no latency, so ``--jobs`` ratios measured on it are CPU ratios.
Real transfers wait a round trip per request; this proxy sleeps ``delay``
seconds before forwarding each request and again before returning its
response (30 ms each way by default), and otherwise passes bytes through
unchanged. fake-gcs-server is started with the proxy as its external URL, so
the upload sessions and media links it hands out also go through the proxy.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
}


def handler(upstream_port: int, delay: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            time.sleep(delay)
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                time.sleep(delay)
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

    return Handler


@contextlib.contextmanager
def latency_proxy(port: int, upstream_port: int, delay: float = 0.030) -> Iterator[str]:
    """Serve the proxy on ``127.0.0.1:port`` until the block ends; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(upstream_port, delay))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
