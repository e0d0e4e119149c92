"""JWT verification: every bad-token class is refused with the right status and reason."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from pydantic import ValidationError

from churn_mlops.serving.app import create_app
from churn_mlops.serving.errors import SettingsError
from churn_mlops.serving.security import AuthError, TokenVerifier
from churn_mlops.serving.settings import ServingSettings

from .conftest import AUDIENCE, ISSUER, JWT_KEY


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(**claims) -> str:
    """A token with ``alg: none`` and an empty signature."""
    payload = {
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(time.time()) + 600,
        "scope": "predict admin",
        **claims,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def from_now(seconds: int) -> Callable[[], int]:
    """A time claim ``seconds`` from when the test runs (not from collection: a long suite
    would otherwise reach a "future" ``nbf`` before the test runs)."""
    return lambda: int(time.time()) + seconds


@pytest.fixture
def verifier(tmp_path: Path) -> TokenVerifier:
    return TokenVerifier(ServingSettings(model_dir=tmp_path, jwt_key=JWT_KEY))


@pytest.mark.parametrize(
    ("claims", "key", "reason"),
    [
        ({"exp": from_now(-60)}, JWT_KEY, "token expired"),
        ({}, "another-secret-key-of-enough-length-0123456", "token signature is invalid"),
        ({"aud": "someone-else"}, JWT_KEY, "token audience is not accepted"),
        ({"iss": "evil"}, JWT_KEY, "token issuer is not accepted"),
        ({"exp": None}, JWT_KEY, "lacks the 'exp' claim"),
        ({"aud": None}, JWT_KEY, "lacks the 'aud' claim"),
        ({"nbf": from_now(3600)}, JWT_KEY, "not valid yet"),
    ],
)
def test_bad_tokens_are_401_with_a_reason(
    verifier: TokenVerifier, make_token: Callable[..., str], claims, key, reason
) -> None:
    resolved = {name: value() if callable(value) else value for name, value in claims.items()}
    token = make_token(key=key, **resolved)
    with pytest.raises(AuthError, match=reason) as caught:
        verifier.authorize(f"Bearer {token}", "predict")
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer ", "must be 'Bearer <token>'"),
        ("Bearer not.a.jwt", "malformed"),
        ("Bearer " + unsigned_token(), "algorithm is not accepted"),
    ],
)
def test_missing_malformed_and_alg_none_headers(
    verifier: TokenVerifier, header: str | None, reason: str
) -> None:
    with pytest.raises(AuthError, match=reason) as caught:
        verifier.authorize(header, "predict")
    assert caught.value.status == 401


def test_scope_is_403_and_both_claim_styles_work(
    verifier: TokenVerifier, make_token: Callable[..., str]
) -> None:
    with pytest.raises(AuthError, match="lacks the 'admin' scope") as caught:
        verifier.authorize(f"Bearer {make_token(scope='predict')}", "admin")
    assert caught.value.status == 403
    assert verifier.authorize(f"Bearer {make_token(scope='admin predict')}", "admin")
    listed = make_token(scope=None, scopes=["admin"])
    assert verifier.authorize(f"bearer {listed}", "admin").scopes == frozenset({"admin"})
    with pytest.raises(AuthError) as caught:
        verifier.authorize(f"Bearer {make_token(scope=None)}", "predict")
    assert caught.value.status == 403


def test_cached_token_still_expires(verifier: TokenVerifier, make_token: Callable[..., str]):
    token = make_token(exp=int(time.time()) + 1)
    assert verifier.authorize(f"Bearer {token}", "predict") is not None  # cached now
    verifier.leeway = 0.0
    time.sleep(2.1)
    with pytest.raises(AuthError, match="expired"):
        verifier.authorize(f"Bearer {token}", "predict")


def test_rs256_public_key_from_a_mounted_file(tmp_path: Path, make_token: Callable[..., str]):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_file = tmp_path / "jwt.pub"
    key_file.write_bytes(public_pem)
    verifier = TokenVerifier(
        ServingSettings(model_dir=tmp_path, jwt_algorithm="RS256", jwt_key_file=key_file)
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    good = make_token(key=private_pem, algorithm="RS256")
    assert verifier.authorize(f"Bearer {good}", "predict") is not None
    # Algorithm confusion: an HS256 token signed with the public key as the HMAC secret.
    forged = jwt.encode(
        {"aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60, "scope": "predict"},
        "x" * 64,
        algorithm="HS256",
    )
    with pytest.raises(AuthError, match="algorithm is not accepted"):
        verifier.authorize(f"Bearer {forged}", "predict")


def test_settings_refuse_unsafe_or_inconsistent_auth(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CHURN_JWT_ALGORITHM='none'"):
        ServingSettings(model_dir=tmp_path, jwt_key=JWT_KEY, jwt_algorithm="none")
    with pytest.raises(
        ValidationError, match="none of CHURN_JWT_KEY, CHURN_JWT_KEY_FILE and CHURN_JWKS_URL"
    ):
        ServingSettings(model_dir=tmp_path)
    with pytest.raises(ValidationError, match="must be set together"):
        ServingSettings(model_dir=tmp_path, jwt_key=JWT_KEY, ssl_certfile=tmp_path / "c.pem")
    with pytest.raises(SettingsError, match="needs at least 32"):
        TokenVerifier(ServingSettings(model_dir=tmp_path, jwt_key="short"))
    with pytest.raises(SettingsError, match="cannot be read"):
        TokenVerifier(ServingSettings(model_dir=tmp_path, jwt_key_file=tmp_path / "absent"))


def test_settings_come_from_churn_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from churn_mlops.serving.settings import get_settings

    monkeypatch.setenv("CHURN_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("CHURN_JWT_KEY", JWT_KEY)
    monkeypatch.setenv("CHURN_MAX_PREDICT_ROWS", "7")
    monkeypatch.setenv("CHURN_DOCS_ENABLED", "false")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.max_predict_rows == 7 and not settings.docs_enabled
        assert settings.host == "127.0.0.1"
        assert get_settings() is settings
    finally:
        get_settings.cache_clear()


def test_admin_reload_needs_the_admin_scope(
    client: TestClient, auth: dict, make_token: Callable[..., str]
) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers=auth).status_code == 403
    forged = unsigned_token()
    response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_app_refuses_to_start_with_a_short_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        create_app(ServingSettings(model_dir=tmp_path, jwt_key="too-short"))
