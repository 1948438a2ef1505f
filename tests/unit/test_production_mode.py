"""ENVIRONMENT=production: the auth service refuses to start with a development default
(the dev keys, the default pepper, an unencrypted signing key), naming each variable; and
the store URLs production uses (credentials, TLS) are accepted as they are."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

import pytest
from pydantic import SecretStr, ValidationError

from ragline_auth.settings import AuthSettings
from ragline_core.settings import CoreSettings
from ragline_core.stores import mongo_client, redis_client

DEV_DEFAULTS = ("API_KEY_PEPPER", "VALID_API_KEYS", "SEED_DEV_KEYS", "AUTH_KEY_ENCRYPTION_KEY")


def _secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _production(**env: object) -> AuthSettings:
    values: dict[str, object] = {
        "ENVIRONMENT": "production",
        "API_KEY_PEPPER": secrets.token_urlsafe(32),
        "SEED_DEV_KEYS": False,
        "AUTH_KEY_ENCRYPTION_KEY": _secret(),
        **env,
    }
    return AuthSettings(_env_file=None, **values)  # type: ignore[arg-type]


def test_development_mode_keeps_its_defaults():
    settings = AuthSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ENVIRONMENT == "development" and settings.SEED_DEV_KEYS


def test_production_with_every_default_names_each_variable():
    with pytest.raises(ValidationError) as caught:
        AuthSettings(_env_file=None, ENVIRONMENT="production")  # type: ignore[call-arg]
    message = str(caught.value)
    assert all(name in message for name in DEV_DEFAULTS), message


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"API_KEY_PEPPER": "ragline-development-pepper-change-me"}, "API_KEY_PEPPER"),
        ({"API_KEY_PEPPER": "short"}, "API_KEY_PEPPER"),
        ({"SEED_DEV_KEYS": True}, "VALID_API_KEYS"),  # the default dev-key-1, dev-key-2
        ({"SEED_DEV_KEYS": True, "VALID_API_KEYS": ["tiny"]}, "VALID_API_KEYS"),
        ({"AUTH_KEY_ENCRYPTION_KEY": None}, "AUTH_KEY_ENCRYPTION_KEY"),
    ],
)
def test_production_refuses_one_development_default(env, named):
    with pytest.raises(ValidationError, match=named):
        _production(**env)


def test_production_accepts_real_secrets_and_strong_bootstrap_keys():
    strong = secrets.token_urlsafe(32)
    settings = _production(SEED_DEV_KEYS=True, VALID_API_KEYS=[strong])
    assert strong in settings.VALID_API_KEYS


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"16 bytes only!!!").decode()])
def test_a_malformed_encryption_key_is_refused_in_any_mode(bad):
    with pytest.raises(ValidationError, match="AUTH_KEY_ENCRYPTION_KEY"):
        AuthSettings(_env_file=None, AUTH_KEY_ENCRYPTION_KEY=bad)  # type: ignore[call-arg]


def test_the_auth_service_exits_naming_the_variables(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in DEV_DEFAULTS}
    env.update(ENVIRONMENT="production", RAGLINE_ENV_FILE=str(tmp_path / "absent.env"))
    done = subprocess.run(
        [sys.executable, "-m", "ragline_auth"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert all(name in done.stderr for name in DEV_DEFAULTS), done.stderr
    assert "Traceback" not in done.stderr


# -- store URLs with credentials (production manifests take them from Secrets) ----------
def test_redis_url_with_password_and_tls_is_used_as_given():
    settings = CoreSettings(
        _env_file=None,  # type: ignore[call-arg]
        REDIS_URL=SecretStr("rediss://ragline:p%40ss@redis.example:6380/2"),
    )
    client = redis_client(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("ragline", "p@ss")
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.example", 6380, 2)
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert "p@ss" not in repr(settings) and "p%40ss" not in repr(settings)


async def test_mongodb_uri_with_credentials_and_tls_is_used_as_given():
    uri = "mongodb://ragline:p%40ss@db.example:27017/?authSource=admin&tls=true"
    settings = CoreSettings(_env_file=None, MONGODB_URI=SecretStr(uri))  # type: ignore[call-arg]
    client = mongo_client(settings, appname="test")
    try:
        credentials = client.options.pool_options._credentials
        assert (credentials.username, credentials.password) == ("ragline", "p@ss")
        assert credentials.source == "admin"
        assert client.options.pool_options._ssl_context is not None
    finally:
        await client.close()
    assert "p@ss" not in repr(settings) and "p%40ss" not in repr(settings)
