"""JWT bearer authentication with ``predict`` and ``admin`` scopes (PyJWT).

The verification key and algorithm come from the settings (``CHURN_JWT_KEY`` or a mounted
``CHURN_JWT_KEY_FILE``; ``CHURN_JWT_ALGORITHM``). Only that one algorithm is accepted, so
``alg: none`` and algorithm-confusion tokens fail like a bad signature. Tokens must carry
``exp`` and the configured ``aud`` (and ``iss`` when ``CHURN_JWT_ISSUER`` is set); scopes are
read from ``scope`` (space-separated, OAuth 2 style) or ``scopes``/``scp`` (a list).

Verified tokens are cached by their exact text (the signature cannot change without the text
changing); expiry and not-before are still checked on every use.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from churn_mlops.serving.errors import SettingsError
from churn_mlops.serving.settings import MIN_HMAC_KEY_BYTES, ServingSettings

logger = logging.getLogger(__name__)

SCOPE_PREDICT = "predict"
SCOPE_ADMIN = "admin"
CACHE_SIZE = 4096


class AuthError(Exception):
    """A request's credentials are refused; ``status`` is 401 (who are you) or 403 (not allowed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    subject: str | None
    scopes: frozenset[str]
    expires_at: float
    not_before: float | None


def load_verification_key(settings: ServingSettings) -> str | bytes:
    """The secret (HS*) or public key (others) that verifies tokens.

    Raises:
        SettingsError: the key file is unreadable, or an HMAC secret is shorter than 32 bytes.
    """
    if settings.jwt_key_file is not None:
        path = Path(settings.jwt_key_file)
        try:
            key: str | bytes = path.read_bytes().strip()
        except OSError as exc:
            raise SettingsError(f"CHURN_JWT_KEY_FILE={path} cannot be read: {exc}") from exc
    elif settings.jwt_key is not None:
        key = settings.jwt_key.get_secret_value().encode()
    else:
        raise SettingsError("no JWT verification key: set CHURN_JWT_KEY or CHURN_JWT_KEY_FILE")
    if settings.jwt_algorithm.startswith("HS") and len(key) < MIN_HMAC_KEY_BYTES:
        raise SettingsError(
            f"the JWT secret has {len(key)} bytes; {settings.jwt_algorithm} needs at least"
            f" {MIN_HMAC_KEY_BYTES}"
        )
    return key


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    value = claims.get("scope", claims.get("scopes", claims.get("scp")))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return frozenset()


class TokenVerifier:
    """Checks bearer tokens against the configured key, algorithm, audience and issuer."""

    def __init__(self, settings: ServingSettings) -> None:
        self.enabled = settings.auth_enabled
        self.algorithm = settings.jwt_algorithm
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.leeway = settings.jwt_leeway_s
        self._key = load_verification_key(settings) if self.enabled else b""
        self._required = ["exp", "aud"] + (["iss"] if self.issuer else [])
        self._cache: dict[str, Principal] = {}

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            AuthError: 401 with the reason (expired, bad signature, wrong audience, ...).
        """
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            if now > cached.expires_at + self.leeway:
                self._cache.pop(token, None)
                raise AuthError(401, "token expired")
            if cached.not_before is not None and now < cached.not_before - self.leeway:
                raise AuthError(401, "token is not valid yet")
            return cached
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self._required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(401, "token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(401, "token audience is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(401, "token issuer is not accepted") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError(401, "token is not valid yet") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(401, f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AuthError(401, "token algorithm is not accepted") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError(401, "token signature is invalid") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, "token is malformed or invalid") from exc
        principal = Principal(
            subject=str(claims["sub"]) if "sub" in claims else None,
            scopes=_scopes(claims),
            expires_at=float(claims["exp"]),
            not_before=float(claims["nbf"]) if "nbf" in claims else None,
        )
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def authorize(self, authorization: str | None, scope: str) -> Principal | None:
        """Check an ``Authorization`` header value for ``scope``.

        Returns:
            The principal, or None when auth is switched off.

        Raises:
            AuthError: 401 for a missing or invalid token, 403 for a valid token without
                ``scope``.
        """
        if not self.enabled:
            return None
        if not authorization:
            raise AuthError(401, "missing bearer token")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise AuthError(401, "authorization must be 'Bearer <token>'")
        principal = self.verify(token.strip())
        if scope not in principal.scopes:
            raise AuthError(403, f"token lacks the {scope!r} scope")
        return principal
