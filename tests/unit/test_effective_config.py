"""A service's effective configuration as the System page shows it: secrets by kind and by
name are withheld (only whether they are set), URLs lose their credentials and query."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragline_auth.settings import AuthSettings
from ragline_core.effective_config import NOT_SET, SET, document, redacted


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None)

    DATABASE_URL: str = "postgres://admin:hunter2@db.internal:5432/rag?sslmode=require&password=x"
    API_TOKEN: str = "tok_abcdef"
    VALID_API_KEYS: list[str] = ["sk-live-1", "sk-live-2"]
    SIGNING_SECRET: SecretStr = SecretStr("s3cr3t")
    EMPTY_SECRET: SecretStr | None = None
    KEY_CACHE_TTL: float = 2.0  # a number under a secret-like name: harmless
    MODE: Literal["a", "b"] = "b"
    WORKERS: int = Field(default=4)
    ORIGINS: list[str] = ["https://app.example.com"]
    CAPS: dict[str, float] = {"acme": 25.0}


def test_secrets_are_withheld_by_kind_and_by_name():
    shown = {s.name: (s.value, s.redacted) for s in redacted(_Settings())}
    assert shown["SIGNING_SECRET"] == (SET, True)
    assert shown["EMPTY_SECRET"] == (NOT_SET, True)
    assert shown["API_TOKEN"] == (SET, True)
    assert shown["VALID_API_KEYS"] == (SET, True)
    assert shown["DATABASE_URL"] == ("postgres://db.internal:5432/rag", False)
    assert shown["KEY_CACHE_TTL"] == ("2.0", False)
    assert shown["MODE"] == ("b", False)
    assert shown["WORKERS"] == ("4", False)
    assert shown["ORIGINS"] == ('["https://app.example.com"]', False)
    assert shown["CAPS"] == ('{"acme": 25.0}', False)
    text = repr(redacted(_Settings()))
    for secret in ("hunter2", "sslmode", "tok_abc", "sk-live", "s3cr3t"):
        assert secret not in text


def test_the_auth_services_own_secrets_never_show():
    settings = AuthSettings(
        API_KEY_PEPPER=SecretStr("pepper-" + "p" * 40),
        VALID_API_KEYS=["first-key-" + "k" * 30],
        MONGODB_URI=SecretStr("mongodb://root:rootpw@mongo:27017"),
        INTERNAL_TOKEN_KEYS=SecretStr("i" * 40),
    )
    doc = document("auth", "1.0.0", settings)
    assert doc["_id"] == "auth" and doc["version"] == "1.0.0"
    text = repr(doc)
    for secret in ("pepper-", "first-key-", "rootpw", "i" * 40):
        assert secret not in text
    names = {s["name"]: s for s in doc["settings"]}
    assert names["API_KEY_PEPPER"]["redacted"] and names["MONGODB_URI"]["value"] == SET
    assert names["JWT_TTL"] == {"name": "JWT_TTL", "value": "900", "redacted": False}
