"""Processes: the composition root (assemble.py, which alone builds the services), uvicorn on our
own socket (server.py), the connection guard (guard.py), several workers on one port
(workers.py), the `twinhub` command (cli.py), the demo project (demo.py), the embedded
Redis-compatible server for tests and workers (embedded_redis.py) and the Docker image's health
probe (probe.py).

May import everything below it. Nothing imports run/ but the entry point (realtime/__main__.py
and the `twinhub` script)."""
