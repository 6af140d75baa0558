"""The image's HEALTHCHECK (realtime/run/probe.py): it asks the port TWINHUB_PORT names, on
loopback when the server listens on every address, and says in one line what answered."""

from __future__ import annotations

import contextlib
import http.server
import threading

from realtime.config import Settings
from realtime.run.probe import probe, url


def test_the_address_comes_from_the_settings_with_wildcards_on_loopback():
    assert url(Settings.from_env({"TWINHUB_HOST": "0.0.0.0", "TWINHUB_PORT": "9123"}), "/healthz") == \
        "http://127.0.0.1:9123/healthz"
    assert url(Settings.from_env({"TWINHUB_HOST": "::", "TWINHUB_PORT": "8001"}), "/healthz") == "http://[::1]:8001/healthz"
    assert url(Settings.from_env({"TWINHUB_HOST": "10.1.2.3"}), "/readyz") == "http://10.1.2.3:8000/readyz"


@contextlib.contextmanager
def answering(status: int):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_200_passes_anything_else_fails_in_one_line(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy in the environment is not used
    with answering(200) as base:
        assert probe(f"{base}/healthz") is None
    with answering(503) as base:
        assert probe(f"{base}/healthz") == f"{base}/healthz: HTTP 503"
    with answering(200) as base:
        pass
    failure = probe(f"{base}/healthz")  # nobody listens there any more
    assert failure is not None and failure.startswith(f"{base}/healthz: ") and "\n" not in failure
