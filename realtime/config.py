"""Settings, from TWINHUB_* environment variables, overridden by command-line flags.

Each setting is declared once, as a field of `Settings`: its name gives the variable
(TWINHUB_<NAME>), its annotation how the text is read (`_CASTS`), its default and comment what it
means. A value that cannot be read stops the start with a sentence naming the variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from protocol.limits import Limits


def _default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("twinhub"))


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None  # None: start the embedded PostgreSQL in data_dir/pgdata
    # With a Redis URL, processes share events, presence and limits over Redis (docs/scaling.md);
    # without one the bus is in-process: one process, which is all a class or a school needs.
    redis_url: str | None = None
    redis_sharded: bool = False  # SPUBLISH/SSUBSCRIBE on one Redis 7; always so on a cluster (asked at start)
    redis_prefix: str = "twinhub"  # two installations sharing one Redis need different prefixes
    # Every message on the Redis bus carries an HMAC-SHA256 made with this; one without a valid
    # one is dropped and counted (realtime/fanout/redis_bus.py). Every process on one Redis needs
    # the same, and a server with a Redis URL will not start without one (check()); `--workers`
    # makes one for the Redis it starts itself. Kept out of repr: settings are never logged whole.
    bus_secret: str = field(default="", repr=False)
    data_dir: Path = field(default_factory=_default_data_dir)
    # Where attached files' bytes are kept (storage/blobs.py's open_blobs): None, a folder in
    # data_dir (files/); file:///folder; or s3://bucket/prefix?endpoint=… for several processes
    # or machines (docs/deployment.md). Kept out of repr: the URL may carry a secret key.
    files_url: str | None = field(default=None, repr=False)
    allowed_origins: tuple[str, ...] = ()  # extra origins for cookie-authenticated WebSockets
    session_hours: float = 12.0
    post_rate: float = 5.0  # posts per second per member, sustained
    post_burst: int = 20
    mail_rate: float = 0.5  # mails per second per teacher, sustained
    mail_burst: int = 20
    pupil_mail_rate: float = 0.1  # pupils and visitors: one mail every 10 s, sustained
    pupil_mail_burst: int = 5
    outbox_bytes: int = 1024 * 1024  # encoded frames waiting for one socket before it is closed as slow
    max_replay: int = 5000  # events replayed on subscribe before answering `resync`
    auth_timeout: float = 10.0  # seconds to send hello
    # TCP connections one address may hold at once (0: no cap). Generous: a whole school behind
    # one NAT address must fit (realtime/run/guard.py says why 500). Proxies' addresses are not capped.
    max_connections_per_address: int = 500
    # Sockets one process holds at once, all addresses together; the next is answered 503 with
    # Retry-After (realtime/run/guard.py). 0: the open-files limit less a reserve (realtime/run/server.py).
    max_connections: int = 0
    handshake_timeout: float = 10.0  # seconds for a request's head (slowloris; 0: no limit)
    # Reverse proxies / load balancers: their connections carry many clients (not capped here) and
    # only their X-Forwarded-For is believed (uvicorn's forwarded_allow_ips; same default).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    login_backoff: float = 1.0  # seconds a username waits after its third failed login (doubling)
    db_pool_size: int = 20
    # `serve --workers`: a worker that exits is started again after a pause, this long the first
    # time, doubling (up to worker_restart_max) each time it exits again having run less than
    # worker_healthy_after seconds; one that ran that long is started again after the first pause
    # (realtime/run/workers.py, docs/scaling.md).
    worker_restart_pause: float = 0.5
    worker_restart_max: float = 10.0
    worker_healthy_after: float = 30.0
    # Seconds a statement may run (or wait on a lock) before PostgreSQL cancels it: the write is
    # answered `unavailable` and nothing of it is stored.
    statement_timeout: float = 15.0
    # Off (benchmarks only: python -m loadtests ingest): one write per transaction, one at a time.
    group_commit: bool = True
    log_level: str = "info"
    # "auto": uvloop where it is installed, else asyncio's own loop; "asyncio" forces the latter
    # (a second opinion when a figure or a leak might be the loop's: docs/reliability.md).
    event_loop: str = "auto"
    # permessage-deflate compresses every frame once per recipient: off unless asked for
    # (docs/performance.md has the measurement).
    ws_deflate: bool = False
    # GET /metrics answers loopback clients (Prometheus beside the server), and anyone else only
    # with `Authorization: Bearer <this token>` ("": nobody else). Never public: it shows load.
    metrics_token: str = ""
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read TWINHUB_<FIELD> variables (e.g. TWINHUB_DATABASE_URL), then apply `overrides`
        (flags), ignoring overrides that are None."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"TWINHUB_{f.name.upper()}")
            if raw is None or f.name == "limits":
                continue
            values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:  # a flag's text too
            values["data_dir"] = Path(str(values["data_dir"])).expanduser()
        return replace(cls(), **values)  # type: ignore[arg-type]

    def check(self) -> None:
        """Raise ValueError, with the sentence for the operator, if a server cannot run on these
        settings: a Redis URL needs a bus secret (MIN_BUS_SECRET characters or more) shared by
        every process on that Redis. Generating one here would leave each process deaf to the
        others (each would drop the others' messages as forged), so we refuse instead."""
        if self.redis_url and not self.bus_secret:
            raise ValueError(
                "TWINHUB_REDIS_URL is set but TWINHUB_BUS_SECRET is not: every message on the Redis bus is "
                "signed with it, and unsigned ones are dropped. Set TWINHUB_BUS_SECRET to the same long random "
                "string on every process that shares this Redis "
                "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if self.redis_url and len(self.bus_secret) < MIN_BUS_SECRET:
            raise ValueError(f"TWINHUB_BUS_SECRET is too short: {MIN_BUS_SECRET} characters or more, random")


MIN_BUS_SECRET = 16  # characters: shorter would be guessed from messages read off Redis


def _flag(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _items(raw: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in raw.split(",") if o.strip())


# How a variable's text becomes each annotated type (the annotations are strings: PEP 563).
_CASTS = {
    "str": str, "int": int, "float": float, "bool": _flag, "Path": lambda raw: Path(raw).expanduser(),
    "str | None": lambda raw: raw or None, "tuple[str, ...]": _items,
}


def _parse(name: str, raw: str) -> object:
    """TWINHUB_<NAME>'s text as the field's type; ValueError naming the variable if it is not one."""
    kind = _FIELD_TYPES[name]
    try:
        return _CASTS[kind](raw)
    except ValueError:
        raise ValueError(f"TWINHUB_{name.upper()} has the value {raw!r}: not a valid {kind}") from None


_FIELD_TYPES = {f.name: str(f.type) for f in fields(Settings) if f.name != "limits"}
