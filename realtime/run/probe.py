"""`python -m realtime.run.probe [PATH]`: ask the server on this machine for PATH (default
/healthz) and exit 0 if it answers 200, else 1 with one line saying what answered. The image's
HEALTHCHECK (Dockerfile).

The server is found as `twinhub serve` finds its address: TWINHUB_HOST and TWINHUB_PORT, read by
realtime/config.py, so a container started with another TWINHUB_PORT is probed where it listens.
A port given as a flag (`serve --port`) is not seen here: in a container, set TWINHUB_PORT.

Liveness, not readiness: /healthz answers as long as the process serves; /readyz also asks the
database. A liveness probe on /readyz would mark every replica unhealthy during a database outage,
and an orchestrator would restart them all, which mends nothing (docs/deployment.md#docker).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from ..config import Settings

TIMEOUT = 2.0  # seconds; the HEALTHCHECK's own timeout is 3 s


def url(settings: Settings, path: str) -> str:
    """Where the server of these settings answers `path` from this machine: a wildcard address
    (0.0.0.0, ::) is reached on loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{path}"


def probe(target: str) -> str | None:
    """None if `target` answers 200, else what went wrong, in one line. Proxies from the
    environment (HTTP_PROXY) are ignored: the server is on this machine."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(target, timeout=TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable; a malformed host
        reason = getattr(exc, "reason", exc)
        return f"{target}: {reason}"
    return None if status == 200 else f"{target}: HTTP {status}"


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "/healthz"
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"probe: {exc}")
        return 1
    failure = probe(url(settings, path))
    if failure:
        print(failure)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
