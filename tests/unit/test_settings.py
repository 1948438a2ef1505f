"""Settings come from the environment; a bad value stops start-up naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ragline_core.settings import CoreSettings, make_settings
from ragline_embedder.settings import EmbedderSettings


@pytest.fixture(autouse=True)
def no_env_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGLINE_ENV_FILE", str(tmp_path / "absent.env"))


def test_defaults_match_the_documented_ones():
    s = make_settings(CoreSettings)
    assert s.API_PORT == 8000 and s.MAX_BATCH_SIZE == 100 and s.CACHE_TTL == 3600
    assert s.VALID_API_KEYS == ["dev-key-1", "dev-key-2"]
    assert s.CORS_ORIGINS == ["http://localhost:3000"]
    assert s.MONGODB_DATABASE == "rag_production" and s.REQUEST_TIMEOUT == 30


def test_lists_parse_from_their_documented_forms(monkeypatch):
    monkeypatch.setenv("VALID_API_KEYS", "a, b,,c")
    monkeypatch.setenv("CORS_ORIGINS", '["https://x.example", "https://y.example"]')
    monkeypatch.setenv("EMBEDDING_FALLBACK_MODELS", "voyage-3.5, all-MiniLM-L6-v2")
    s = make_settings(EmbedderSettings)
    assert s.VALID_API_KEYS == ["a", "b", "c"]
    assert s.CORS_ORIGINS == ["https://x.example", "https://y.example"]
    assert s.EMBEDDING_FALLBACK_MODELS == ["voyage-3.5", "all-MiniLM-L6-v2"]


def test_env_file_is_read(monkeypatch, tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("MAX_BATCH_SIZE=7\nLOG_LEVEL=DEBUG\n")
    monkeypatch.setenv("RAGLINE_ENV_FILE", str(env_file))
    s = make_settings(CoreSettings)
    assert s.MAX_BATCH_SIZE == 7 and s.LOG_LEVEL == "DEBUG"


def test_secrets_are_not_printed_by_repr(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    s = make_settings(CoreSettings)
    assert "sk-very-secret" not in repr(s)
    assert s.OPENAI_API_KEY is not None
    assert s.OPENAI_API_KEY.get_secret_value() == "sk-very-secret"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_BATCH_SIZE", "lots"),
        ("API_PORT", "70000"),
        ("LOG_LEVEL", "CHATTY"),
        ("CORS_ORIGINS", "http://no-json"),
        ("REQUEST_TIMEOUT", "-1"),
    ],
)
def test_bad_value_stops_startup_naming_the_variable(tmp_path, name, value):
    env = {
        "PATH": "/usr/bin:/bin",
        "RAGLINE_ENV_FILE": str(tmp_path / "absent.env"),
        name: value,
        "OPENAI_API_KEY": "sk-must-not-appear",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ragline_embedder"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"invalid configuration: {name}" in proc.stderr
    assert "sk-must-not-appear" not in proc.stderr + proc.stdout
