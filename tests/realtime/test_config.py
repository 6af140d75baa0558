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
