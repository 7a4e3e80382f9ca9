"""grader/probes/http_probe.py: the HTTP requests, sent to a real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from grader.probes import http_probe


class Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 200 if self.path == "/predict" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        payload = json.dumps({"echo": json.loads(body)}).encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_each_request_gets_its_answer_by_id(url: str) -> None:
    requests = [
        {"id": "a", "method": "POST", "path": "/predict", "body": {"x": 1}},
        {"id": "b", "method": "POST", "path": "/nowhere", "body": {}},
    ]
    a, b = http_probe.run_requests(url, requests, total_seconds=30)
    assert a.pop("seconds") < 30
    assert a == {"id": "a", "status": 200, "json": {"echo": {"x": 1}}}
    assert (b["id"], b["status"]) == ("b", 404)


def test_nothing_is_sent_once_the_time_is_spent(url: str) -> None:
    [answer] = http_probe.run_requests(url, [{"id": "a", "method": "GET", "path": "/"}], 0)
    assert answer == {"id": "a", "error": "not sent: the time for all requests was spent"}
    free = http_probe.free_port()
    assert not http_probe.listening(free)
    assert http_probe.size_text(1_200_000) == "1.2 MB" and http_probe.size_text(800) == "800 bytes"
