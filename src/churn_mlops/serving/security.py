"""JWT bearer authentication with ``predict`` and ``admin`` scopes (PyJWT).

The verification key and algorithm come from the settings (``CHURN_JWT_KEY`` or a mounted
``CHURN_JWT_KEY_FILE``; ``CHURN_JWT_ALGORITHM``), or from an identity provider's JWKS document
(``CHURN_JWKS_URL``, read with PyJWT's ``PyJWKClient``): the key is chosen by the token's
``kid``, several keys may be published at once (rotation without downtime), fetched keys are
cached for ``CHURN_JWKS_CACHE_S`` and an unknown ``kid`` refetches the document at most once
per ``CHURN_JWKS_MIN_REFRESH_S``. Only that one algorithm is accepted, so
``alg: none`` and algorithm-confusion tokens fail like a bad signature. Tokens must carry
``exp`` and the configured ``aud`` (and ``iss`` when ``CHURN_JWT_ISSUER`` is set); scopes are
read from ``scope`` (space-separated, OAuth 2 style) or ``scopes``/``scp`` (a list).

Verified tokens are cached by their exact text (the signature cannot change without the text
changing); expiry and not-before are still checked on every use.
"""

from __future__ import annotations

import logging
import math
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


class JwksKeys:
    """Signing keys of a JWKS document by ``kid``, with a bounded refresh (PyJWKClient).

    Args:
        url: The issuer's JWKS URL.
        cache_s: How long fetched keys are trusted before the document is read again.
        min_refresh_s: Shortest gap between two fetches caused by unknown ``kid`` values, so
            forged tokens cannot make the app hammer the identity provider.
        timeout_s: HTTP timeout of one fetch.
    """

    def __init__(self, url: str, *, cache_s: float, min_refresh_s: float, timeout_s: float) -> None:
        self.client = jwt.PyJWKClient(
            url, cache_jwk_set=True, lifespan=int(max(cache_s, 1)), timeout=int(max(timeout_s, 1))
        )
        self.cache_s = cache_s
        self.min_refresh_s = min_refresh_s
        self._keys: dict[str, Any] = {}
        self._fetched_at = -float("inf")
        self.fetches = 0

    def _refresh(self, now: float) -> None:
        self._fetched_at = now
        self.fetches += 1
        try:
            keys = self.client.get_signing_keys(refresh=True)
        except jwt.PyJWKClientError as exc:
            logger.warning("could not read the JWKS document: %s", exc)
            return
        self._keys = {str(k.key_id): k.key for k in keys if k.key_id is not None}

    def key_for(self, token: str) -> Any:
        """The public key named by the token's ``kid``.

        Raises:
            AuthError: 401 when the token has no ``kid`` or the issuer publishes no such key.
        """
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, "token is malformed or invalid") from exc
        if not isinstance(kid, str):
            raise AuthError(401, "token has no 'kid' header to choose a JWKS key")
        now = time.monotonic()
        stale = now - self._fetched_at > self.cache_s
        if stale or (kid not in self._keys and now - self._fetched_at >= self.min_refresh_s):
            self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            raise AuthError(401, "token is signed with a key the issuer does not publish")
        return key


class TokenVerifier:
    """Checks bearer tokens against the configured key, algorithm, audience and issuer."""

    def __init__(self, settings: ServingSettings) -> None:
        self.enabled = settings.auth_enabled
        self.algorithm = settings.jwt_algorithm
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.leeway = settings.jwt_leeway_s
        self.jwks: JwksKeys | None = None
        self._key: Any = b""
        if self.enabled and settings.jwks_url is not None:
            self.jwks = JwksKeys(
                settings.jwks_url,
                cache_s=settings.jwks_cache_s,
                min_refresh_s=settings.jwks_min_refresh_s,
                timeout_s=settings.jwks_timeout_s,
            )
        elif self.enabled:
            self._key = load_verification_key(settings)
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
        key = self.jwks.key_for(token) if self.jwks is not None else self._key
        try:
            claims = jwt.decode(
                token,
                key,
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


class RateLimiter:
    """Token buckets per caller (the token's subject): ``rate`` per second, ``burst`` at once.

    In-process: each replica counts its own traffic, so the limit a caller sees across the
    fleet is ``replicas x rate`` (see ``docs/serving.md``).
    """

    def __init__(self, rate: float, burst: int, *, max_callers: int = 100_000) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        """Whether a rate is set (``CHURN_RATE_LIMIT_PER_S`` > 0)."""
        return self.rate > 0

    def retry_after(self, caller: str) -> int:
        """0 when ``caller`` may go on now (and the request is counted), else seconds to wait."""
        now = time.monotonic()
        tokens, last = self._buckets.get(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_callers and caller not in self._buckets:
                self._buckets.clear()  # bounded memory; a reset only forgives
            self._buckets[caller] = (tokens - 1.0, now)
            return 0
        self._buckets[caller] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))
