"""Settings of the serving app, read from ``CHURN_*`` environment variables (pydantic-settings).

Every variable is listed with its meaning in ``docs/serving.md``. Values are validated once, at
start-up; an inconsistent combination (auth on but no key, a TLS key without a certificate, an
unsupported JWT algorithm) stops the app with a message naming the variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_JWT_ALGORITHMS = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
"""Signature algorithms a deployment may choose; ``none`` is never one of them."""

MIN_HMAC_KEY_BYTES = 32
"""Shortest shared secret accepted for HS* algorithms (RFC 7518 asks for the hash size)."""


class ServingSettings(BaseSettings):
    """Configuration of one serving process; see ``docs/serving.md`` for each variable."""

    model_config = SettingsConfigDict(
        env_prefix="CHURN_", extra="forbid", case_sensitive=False, protected_namespaces=()
    )

    # --- model bundle -------------------------------------------------------------------
    model_dir: Path = Field(description="bundle folder holding model/, model_metadata.json, …")
    reload_root: Path | None = Field(
        default=None, description="if set, admin reloads may only load bundles under this folder"
    )

    # --- network and TLS ------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = False
    docs_enabled: bool = True

    # --- authentication -------------------------------------------------------------------
    auth_enabled: bool = True
    jwt_algorithm: str = "HS256"
    jwt_key: SecretStr | None = None
    jwt_key_file: Path | None = None
    jwt_audience: str = "churn-serving"
    jwt_issuer: str | None = "churn-mlops"
    jwt_leeway_s: float = Field(default=10.0, ge=0.0, le=300.0)
    jwks_url: str | None = Field(
        default=None, description="issuer's JWKS document; keys are chosen by the token's kid"
    )
    jwks_cache_s: float = Field(default=300.0, ge=1.0, description="how long fetched keys live")
    jwks_min_refresh_s: float = Field(
        default=30.0, ge=0.0, description="shortest gap between two fetches (unknown kids)"
    )
    jwks_timeout_s: float = Field(default=5.0, gt=0.0, le=60.0)
    rate_limit_per_s: float = Field(
        default=0.0, ge=0.0, description="requests per second per token subject; 0 = off"
    )
    rate_limit_burst: int = Field(default=50, ge=1)

    # --- request limits and validation ----------------------------------------------------
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_predict_rows: int = Field(default=1000, ge=1)
    max_explain_rows: int = Field(default=20, ge=1)
    explain_top_k: int = Field(default=5, ge=1)
    unknown_category: Literal["reject", "ignore"] = "reject"
    max_abs_feature_value: float = Field(
        default=1e12, gt=0.0, description="bound of numeric features the metadata leaves open"
    )
    max_errors_reported: int = Field(default=20, ge=1, le=1000)

    # --- load shedding and timeouts -------------------------------------------------------
    # Micro-batched requests are in flight together (they wait for one shared model call), so
    # this bounds the depth of a batch as much as the work; memory is bounded by the rows.
    max_requests_in_flight: int = Field(default=64, ge=1)
    max_rows_in_flight: int = Field(default=8000, ge=1)
    retry_after_s: int = Field(default=1, ge=1)
    request_timeout_s: float = Field(
        default=10.0, gt=0.0, description="limit for receiving a request's headers and body"
    )

    # --- model runtime --------------------------------------------------------------------
    batch_max_rows: int = Field(
        default=256,
        ge=1,
        description="most rows (or customer ids) of concurrent requests in one model call "
        "(or one online-store read)",
    )
    onnx_intra_op_threads: int = Field(
        default=1, ge=0, description="onnxruntime threads per model call; 0: one per core"
    )
    onnx_inter_op_threads: int = Field(
        default=1, ge=0, description="onnxruntime threads across graph nodes; 0: its default"
    )

    # --- prediction log -------------------------------------------------------------------
    prediction_log_enabled: bool = True
    prediction_log_dir: Path = Path("prediction_logs")
    prediction_log_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    prediction_log_max_files: int = Field(default=8, ge=0)

    # --- feature store (POST /v1/customers/*) -----------------------------------------------
    feature_repo: Path | None = Field(
        default=None, description="Feast feature repository folder; unset: no scoring by id"
    )
    feature_store_yaml: str = Field(
        default="feature_store.yaml",
        description="configuration in feature_repo (feature_store.redis.yaml: Redis)",
    )
    feature_lookup_threads: int = Field(
        default=2,
        ge=1,
        description="worker threads for online reads of a store without async reads (SQLite);"
        " Redis is read asynchronously on the event loop",
    )
    feature_max_age_s: float = Field(
        default=45 * 86400.0, gt=0, description="online rows older than this are flagged stale"
    )

    # --- drift ----------------------------------------------------------------------------
    drift_window: int = Field(default=5000, ge=10)
    drift_min_samples: int = Field(default=200, ge=1)

    @field_validator("jwt_algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        if value not in SUPPORTED_JWT_ALGORITHMS:
            raise ValueError(
                f"CHURN_JWT_ALGORITHM={value!r} is not supported; expected one of"
                f" {', '.join(SUPPORTED_JWT_ALGORITHMS)}"
            )
        return value

    @field_validator("jwt_issuer")
    @classmethod
    def _empty_issuer_is_none(cls, value: str | None) -> str | None:
        return value or None  # CHURN_JWT_ISSUER="" switches the issuer check off

    @model_validator(mode="after")
    def _consistent(self) -> ServingSettings:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("CHURN_SSL_CERTFILE and CHURN_SSL_KEYFILE must be set together")
        sources = [
            self.jwt_key is not None,
            self.jwt_key_file is not None,
            self.jwks_url is not None,
        ]
        if self.auth_enabled and not any(sources):
            raise ValueError(
                "auth is on (CHURN_AUTH_ENABLED) but none of CHURN_JWT_KEY, CHURN_JWT_KEY_FILE"
                " and CHURN_JWKS_URL is set"
            )
        if sum(sources) > 1:
            raise ValueError("set only one of CHURN_JWT_KEY, CHURN_JWT_KEY_FILE and CHURN_JWKS_URL")
        if self.jwks_url is not None and self.jwt_algorithm.startswith("HS"):
            raise ValueError(
                f"CHURN_JWKS_URL publishes public keys; CHURN_JWT_ALGORITHM={self.jwt_algorithm}"
                " is a shared-secret algorithm (use RS256, PS256, ES256 or EdDSA)"
            )
        return self

    @property
    def tls_enabled(self) -> bool:
        """Whether uvicorn serves HTTPS."""
        return self.ssl_certfile is not None


@lru_cache(maxsize=1)
def get_settings() -> ServingSettings:
    """The process-wide settings, read from the environment once."""
    return ServingSettings()  # type: ignore[call-arg]  # model_dir comes from the environment
