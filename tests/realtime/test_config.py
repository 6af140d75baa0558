from pathlib import Path

from realtime.config import Settings


def test_environment_then_flags():
    env = {"TWINHUB_PORT": "9001", "TWINHUB_DATABASE_URL": "postgresql://db/x", "TWINHUB_WS_DEFLATE": "yes",
           "TWINHUB_ALLOWED_ORIGINS": "https://a.example, https://b.example", "TWINHUB_POST_RATE": "2.5"}
    s = Settings.from_env(env, port=9002, data_dir="~/th")
    assert s.port == 9002 and s.database_url == "postgresql://db/x" and s.ws_deflate is True
    assert s.allowed_origins == ("https://a.example", "https://b.example") and s.post_rate == 2.5
    assert s.data_dir == Path("~/th").expanduser()


def test_defaults_are_safe():
    s = Settings.from_env({})
    assert s.host == "127.0.0.1" and s.database_url is None and s.ws_deflate is False
    assert s.group_commit is True
    assert Settings.from_env({"TWINHUB_GROUP_COMMIT": "0"}).group_commit is False


def test_empty_database_url_means_embedded():
    assert Settings.from_env({"TWINHUB_DATABASE_URL": ""}).database_url is None


def test_connection_guard_settings_from_the_environment():
    s = Settings.from_env({"TWINHUB_MAX_CONNECTIONS_PER_ADDRESS": "2000", "TWINHUB_HANDSHAKE_TIMEOUT": "5.5",
                           "TWINHUB_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.4"})
    assert (s.max_connections_per_address, s.handshake_timeout) == (2000, 5.5)
    assert s.trusted_proxies == ("10.0.0.0/8", "192.168.1.4")
    d = Settings.from_env({})
    assert (d.max_connections_per_address, d.handshake_timeout, d.trusted_proxies) == (500, 10.0, ("127.0.0.1",))


def test_the_guard_counts_untrusted_addresses_only():
    from realtime.run.guard import AddressGuard

    guard = AddressGuard(2, ("10.0.0.0/8",))
    assert not guard.counts("10.1.2.3") and guard.counts("203.0.113.5") and not guard.counts(None)
    assert guard.enter("203.0.113.5") and guard.enter("203.0.113.5") and not guard.enter("203.0.113.5")
    guard.leave("203.0.113.5")
    assert guard.enter("203.0.113.5")
    guard.leave("203.0.113.5")
    guard.leave("203.0.113.5")
    assert guard.open == {}
    assert not AddressGuard(0).counts("203.0.113.5")  # 0: no cap


def test_a_redis_url_needs_a_long_bus_secret():
    import pytest

    assert Settings.from_env({}).check() is None  # one process, in-process bus: nothing to sign
    with pytest.raises(ValueError, match="TWINHUB_BUS_SECRET"):
        Settings.from_env({"TWINHUB_REDIS_URL": "redis://r"}).check()
    with pytest.raises(ValueError, match="too short"):
        Settings.from_env({"TWINHUB_REDIS_URL": "redis://r", "TWINHUB_BUS_SECRET": "short"}).check()
    Settings.from_env({"TWINHUB_REDIS_URL": "redis://r", "TWINHUB_BUS_SECRET": "x" * 16}).check()
    assert "x" * 16 not in repr(Settings(bus_secret="x" * 16))  # settings are never logged whole, but still


def test_the_files_url_is_read_and_never_shown():
    assert Settings.from_env({}).files_url is None
    assert Settings.from_env({"TWINHUB_FILES_URL": ""}).files_url is None  # empty: the data folder's files/
    url = "s3://AKID:very-secret@bucket/twinhub?endpoint=https://s3.example.org"
    s = Settings.from_env({"TWINHUB_FILES_URL": url})
    assert s.files_url == url and "very-secret" not in repr(s)


SAMPLES = {"str": ("x", "x"), "int": ("7", 7), "float": ("2.5", 2.5), "bool": ("yes", True),
           "str | None": ("redis://r", "redis://r"), "tuple[str, ...]": ("a, b", ("a", "b")),
           "Path": ("/tmp/th", Path("/tmp/th"))}


def test_every_setting_is_read_from_its_variable_as_its_declared_type():
    """One declaration per setting: a field whose annotation has no reader fails here, not in
    production with its value left a string."""
    from dataclasses import fields

    for f in fields(Settings):
        if f.name == "limits":
            continue
        raw, expected = SAMPLES[str(f.type)]
        assert getattr(Settings.from_env({f"TWINHUB_{f.name.upper()}": raw}), f.name) == expected, f.name


def test_a_value_that_cannot_be_read_names_its_variable(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "realtime", "migrate"], capture_output=True, text=True, timeout=60,
                          env={"TWINHUB_DB_POOL_SIZE": "many", "PATH": "", "TWINHUB_DATA_DIR": str(tmp_path)})
    assert done.returncode != 0
    assert "TWINHUB_DB_POOL_SIZE has the value 'many': not a valid int" in done.stderr
    assert "Traceback" not in done.stderr
