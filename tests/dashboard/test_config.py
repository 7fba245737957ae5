"""Config: defaults, checks, and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.config import GIB, MB, Config, default_cache_dir, parse_args


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config = Config()
    assert (config.host, config.port, config.debug) == ("127.0.0.1", 8050, False)
    assert config.cache_dir == tmp_path / "innsight-dashboard" == default_cache_dir()
    assert (config.cache_size_limit, config.max_upload_bytes) == (2 * GIB, 50 * MB)


def test_cache_dir_is_a_path():
    assert Config(cache_dir="~/cache").cache_dir == Path.home() / "cache"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, r"port must be an integer from 1 to 65535; got 0\."),
        ({"cache_size_limit": -1}, r"cache_size_limit must be a positive number of bytes"),
        ({"max_upload_bytes": True}, r"max_upload_bytes must be a positive number of bytes"),
        (
            {"cache_size_limit": 10, "max_upload_bytes": 20},
            r"max_upload_bytes \(20\) exceeds cache_size_limit \(10\): an upload would evict",
        ),
    ],
)
def test_bad_settings_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Config(**kwargs)


def test_command_line(tmp_path):
    config = parse_args(
        ["--host", "0.0.0.0", "--port", "9000", "--cache-dir", str(tmp_path), "--cache-size-gb",
         "0.5", "--max-upload-mb", "5", "--debug"]
    )  # fmt: skip
    assert config == Config(
        host="0.0.0.0",
        port=9000,
        cache_dir=tmp_path,
        cache_size_limit=GIB // 2,
        max_upload_bytes=5 * MB,
        debug=True,
    )
    assert parse_args([]).port == 8050
