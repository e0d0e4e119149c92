"""The defects of the outside audit (issue #14), one test each, against the started app.

The ones that need a real server (load shedding, slow clients, SIGTERM, fuzzing) are in
``test_live_limits.py``.
"""

from __future__ import annotations

import json
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from churn_mlops.serving import model_store
from churn_mlops.serving.app import create_app
from churn_mlops.serving.errors import BundleError
from churn_mlops.serving.prediction_log import JsonLinesSink
from churn_mlops.serving.settings import ServingSettings

from .conftest import AUDIENCE, ISSUER

ROOT = Path(__file__).resolve().parents[2]
JSON = {"Content-Type": "application/json"}


def log_records(folder: Path, prefix: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(folder.glob(f"{prefix}-*.jsonl"))
        for line in path.read_text().splitlines()
    ]


# ------------------------------------------------------------------ 1. lost predictions


def test_customer_ids_are_int64_and_one_bad_record_loses_no_other(
    client: TestClient, auth: dict, sample_rows: list[dict], tmp_path: Path
) -> None:
    too_big = 2**64  # was a 500 and lost the log window
    refused = client.post(
        "/v1/predict", json={"rows": [dict(sample_rows[0], customer_id=too_big)]}, headers=auth
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][:4] == ["body", "rows", 0, "customer_id"]
    feedback = client.post(
        "/v1/feedback", json={"feedback": [{"customer_id": too_big, "label": 1}]}, headers=auth
    )
    assert feedback.status_code == 422
    assert (
        client.post(
            "/v1/predict", json={"rows": [dict(sample_rows[0], customer_id=2**53)]}, headers=auth
        ).status_code
        == 422
    )
    largest = 2**53 - 1  # the largest integer every JSON client carries exactly (< int64)
    ok = client.post(
        "/v1/predict", json={"rows": [dict(sample_rows[0], customer_id=largest)]}, headers=auth
    )
    assert ok.status_code == 200 and ok.json()["predictions"][0]["customer_id"] == largest

    # The sink itself: a record orjson cannot encode costs no other record its line.
    sink = JsonLinesSink(tmp_path / "log", "predictions", max_bytes=1 << 20)
    rows = [{"customer_id": i, "age": 30.0} for i in (1, 2**70, 3)]
    sink.write_predictions("t", "1", ["a", "b", "c"], rows, [0.1, 0.2, 0.3], [0, 0, 0])
    sink.write([{"customer_id": 2**70, "label": 1}, {"customer_id": 4, "label": 0}])
    sink.close()
    records = log_records(tmp_path / "log", "predictions")
    keys = sorted((r.get("request_id", r.get("customer_id")) for r in records), key=str)
    assert keys == sorted(["a", "b", "c", 2**70, 4], key=str)


# ------------------------------------------------------------------ 3. bounded log


def test_the_shipped_prediction_log_is_bounded() -> None:
    defaults = ServingSettings(model_dir=Path("."), auth_enabled=False)
    assert defaults.prediction_log_max_files > 0
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/k8s/base/serving.env").read_text().splitlines()
        if "=" in line
    )
    max_files = int(env.get("CHURN_PREDICTION_LOG_MAX_FILES", defaults.prediction_log_max_files))
    max_bytes = int(env.get("CHURN_PREDICTION_LOG_MAX_BYTES", defaults.prediction_log_max_bytes))
    assert max_files > 0
    # Two logs (predictions, feedback) fit the 2 GiB emptyDir with room to spare.
    assert 2 * max_files * max_bytes <= 1 << 30
    docs = (ROOT / "docs/serving.md").read_text()
    assert "CHURN_PREDICTION_LOG_MAX_FILES" in docs and "what it holds" in docs.lower()


def test_rotation_keeps_at_most_max_files(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path, "predictions", max_bytes=1024, max_files=3)
    for i in range(50):
        sink.write([{"i": i, "pad": "x" * 200}])
        sink.flush()
    sink.close()
    assert len(list(tmp_path.glob("predictions-*.jsonl"))) == 3


# ------------------------------------------------------------------ 4. finite bounds


def test_every_numeric_feature_has_a_finite_bound_and_explain_never_500s(
    client: TestClient, auth: dict, sample_rows: list[dict]
) -> None:
    row_schema = client.get("/openapi.json").json()["components"]["schemas"]["FeatureRow"]
    for name, prop in row_schema["properties"].items():
        numeric = [p for p in prop.get("anyOf", [prop]) if p.get("type") == "number"]
        for p in numeric:
            assert np.isfinite(p["minimum"]) and np.isfinite(p["maximum"]), name
    for route in ("/v1/explain", "/v1/predict"):
        huge = client.post(
            route, json={"rows": [dict(sample_rows[0], tenure_days=1e100)]}, headers=auth
        )
        assert huge.status_code == 422, (route, huge.text)
    bound = row_schema["properties"]["tenure_days"]["maximum"]
    at_bound = client.post(
        "/v1/explain", json={"rows": [dict(sample_rows[0], tenure_days=bound)]}, headers=auth
    )
    assert at_bound.status_code == 200, at_bound.text
    explanation = at_bound.json()["explanations"][0]
    assert np.isfinite(explanation["base_value"]) and 0.0 <= explanation["probability"] <= 1.0


# ------------------------------------------------------------------ 5. 422 amplification


def test_error_answers_are_capped_and_never_echo_invented_names(
    client: TestClient, auth: dict
) -> None:
    empty_rows = json.dumps({"rows": [{}] * 1000})
    response = client.post("/v1/predict", content=empty_rows, headers={**auth, **JSON})
    assert response.status_code == 422
    assert len(response.content) < 8 * 1024, len(response.content)
    detail = response.json()["detail"]
    assert detail[-1]["type"] == "too_many_errors" and len(detail) == 21

    keys = {f"zz_secret_key_{i}": 1 for i in range(60_000)}
    response = client.post("/v1/predict", json={"rows": [keys]}, headers=auth)
    assert response.status_code in (413, 422)
    assert len(response.content) < 8 * 1024
    assert "zz_secret_key" not in response.text


# ------------------------------------------------------------------ 6. content type


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"headers": {"Content-Type": "text/plain"}}, 415),
        ({"headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
        ({"headers": {}}, 415),  # no media type at all
        ({"headers": {"Content-Type": "application/json; charset=utf-8"}}, 200),
    ],
)
def test_only_json_bodies_are_accepted(
    client: TestClient, auth: dict, sample_rows: list[dict], kwargs: dict, expected: int
) -> None:
    body = json.dumps({"rows": sample_rows[:1]})
    response = client.post("/v1/predict", content=body, headers={**auth, **kwargs["headers"]})
    assert response.status_code == expected, response.text
    feedback = json.dumps({"feedback": [{"customer_id": 1, "label": 1}]})
    response = client.post("/v1/feedback", content=feedback, headers={**auth, **kwargs["headers"]})
    assert response.status_code == (202 if expected == 200 else expected)


# ------------------------------------------------------------------ 8. rate limit


def test_rate_limit_per_token_subject_answers_429_with_retry_after(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    make_token: Callable[..., str],
    sample_rows: list[dict],
) -> None:
    settings = make_settings(xgb_bundle, rate_limit_per_s=0.5, rate_limit_burst=2)
    alice = {"Authorization": f"Bearer {make_token(sub='alice')}"}
    bob = {"Authorization": f"Bearer {make_token(sub='bob')}"}
    with TestClient(create_app(settings)) as client:
        answers = [
            client.post("/v1/predict", json={"rows": sample_rows[:1]}, headers=alice)
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert int(answers[-1].headers["retry-after"]) >= 1
        other = client.post("/v1/predict", json={"rows": sample_rows[:1]}, headers=bob)
        assert other.status_code == 200  # one caller's limit is not another's
    # Off by default (docs/serving.md says why).
    assert ServingSettings(model_dir=xgb_bundle, auth_enabled=False).rate_limit_per_s == 0
    assert "CHURN_RATE_LIMIT_PER_S" in (ROOT / "docs/serving.md").read_text()


# ------------------------------------------------------------------ 9. untrusted artifacts


class _Payload:
    """Unpickling this object runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_only_manifest_verified_onnx_files_are_loaded(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    admin_auth: dict,
    tmp_path: Path,
) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(xgb_bundle, tampered)
    onnx_file = tampered / "model" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleError, match="model/model.onnx fails its checksum"):
        model_store.load_model(tampered, make_settings(tampered))

    # A pickle in the bundle (the old model format) is never opened: its code does not run.
    marker = tmp_path / "pwned"
    pickled = tmp_path / "pickled"
    shutil.copytree(xgb_bundle, pickled)
    (pickled / "model" / "model.onnx").unlink()
    (pickled / "model" / "model.joblib").write_bytes(pickle.dumps(_Payload(marker)))
    with TestClient(create_app(make_settings(xgb_bundle, reload_root=tmp_path))) as client:
        for folder in (tampered, pickled):
            answer = client.post(
                "/v1/admin/reload", json={"model_dir": str(folder)}, headers=admin_auth
            )
            assert answer.status_code == 202
            status = client.app.state.churn.store.wait_for_reload(60)
            assert status.state == "failed" and status.model_version == "1"
    assert not marker.exists()
    env = (ROOT / "deploy/k8s/base/serving.env").read_text()
    assert "CHURN_RELOAD_ROOT=" in env


def test_a_bundle_without_manifest_is_refused(
    xgb_bundle: Path, make_settings: Callable[..., ServingSettings], tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(xgb_bundle, bare)
    (bare / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        model_store.load_model(bare, make_settings(bare))


# ------------------------------------------------------------------ 10. schema == server


def test_openapi_and_server_agree(client: TestClient, auth: dict, sample_rows: list[dict]) -> None:
    schema = client.get("/openapi.json").json()
    for path, methods in {
        "/v1/predict": ["post"],
        "/v1/explain": ["post"],
        "/v1/feedback": ["post"],
        "/v1/model": ["get"],
        "/v1/admin/reload": ["get", "post"],
    }.items():
        for method in methods:
            documented = set(schema["paths"][path][method]["responses"])
            needed = {"401", "403", "429", "503"}
            if method == "post":
                needed |= {"400", "413", "415", "422"}
            assert needed <= documented, (path, method, needed - documented)
    feedback = schema["components"]["schemas"]["FeedbackRequest"]["properties"]["feedback"]
    assert "oneOf" in feedback["items"] and "anyOf" not in feedback["items"]
    # An integral number is an integer for JSON Schema: the server agrees.
    row = dict(sample_rows[0], customer_id=2864.0)
    answer = client.post("/v1/predict", json={"rows": [row]}, headers=auth)
    assert answer.status_code == 200 and answer.json()["predictions"][0]["customer_id"] == 2864
    labelled = client.post(
        "/v1/feedback", json={"feedback": [{"customer_id": 2864.0, "label": 0}]}, headers=auth
    )
    assert labelled.status_code == 202
    # A method a path does not serve: 405 with every method it does serve.
    options = client.options("/v1/admin/reload")
    assert options.status_code == 405
    assert {m.strip() for m in options.headers["allow"].split(",")} >= {"GET", "POST"}
    assert client.delete("/v1/predict").headers["allow"] == "POST"


# ------------------------------------------------------------------ 11. OAuth 2.0 / JWKS


class _Jwks:
    """A JWKS document served on 127.0.0.1, replaceable while the test runs."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, keys: dict[str, rsa.RSAPrivateKey]) -> None:
        self.document = {
            "keys": [
                {
                    **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
                    "kid": kid,
                    "use": "sig",
                    "alg": "RS256",
                }
                for kid, k in keys.items()
            ]
        }


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    server = _Jwks()
    yield server
    server.httpd.shutdown()


def _rs_token(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> dict[str, str]:
    payload = {
        "sub": "svc",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(time.time()) + 600,
        "scope": "predict",
        **claims,
    }
    return {"Authorization": f"Bearer {jwt.encode(payload, key, 'RS256', headers={'kid': kid})}"}


def test_jwks_keys_are_chosen_by_kid_and_rotate_without_restart(
    xgb_bundle: Path, tmp_path: Path, jwks: _Jwks, sample_rows: list[dict]
) -> None:
    old, new, rogue = (rsa.generate_private_key(65537, 2048) for _ in range(3))
    jwks.publish({"k-old": old})
    settings = ServingSettings(
        model_dir=xgb_bundle,
        jwt_algorithm="RS256",
        jwks_url=jwks.url,
        jwks_min_refresh_s=0.5,
        prediction_log_dir=tmp_path / "logs",
    )
    body = {"rows": sample_rows[:1]}
    with TestClient(create_app(settings)) as client:
        assert (
            client.post("/v1/predict", json=body, headers=_rs_token(old, "k-old")).status_code
            == 200
        )
        # A token signed by a key nobody published, under a published kid: refused.
        assert (
            client.post("/v1/predict", json=body, headers=_rs_token(rogue, "k-old")).status_code
            == 401
        )
        # Rotation: the issuer publishes both keys; tokens of either are accepted.
        jwks.publish({"k-old": old, "k-new": new})
        time.sleep(0.6)
        assert (
            client.post("/v1/predict", json=body, headers=_rs_token(new, "k-new")).status_code
            == 200
        )
        assert (
            client.post("/v1/predict", json=body, headers=_rs_token(old, "k-old")).status_code
            == 200
        )
        # Unknown kids refetch at most once per CHURN_JWKS_MIN_REFRESH_S.
        before = jwks.fetches
        for i in range(20):
            answer = client.post("/v1/predict", json=body, headers=_rs_token(rogue, f"x{i}"))
            assert answer.status_code == 401
        assert jwks.fetches - before <= 1
    docs = (ROOT / "docs/serving.md").read_text()
    assert "client_credentials" in docs and "CHURN_JWKS_URL" in docs


def test_jwks_needs_an_asymmetric_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shared-secret algorithm"):
        ServingSettings(
            model_dir=tmp_path, jwks_url="http://127.0.0.1:1/jwks", jwt_algorithm="HS256"
        )


# ------------------------------------------------------------------ 12. docs


def test_serving_docs_cover_readiness_exit_status_and_running_without_docker() -> None:
    docs = (ROOT / "docs/serving.md").read_text()
    assert "143" in docs and "SIGTERM" in docs
    assert "/health/ready" in docs and "port opens only after" in docs
    assert "outside Docker" in docs and "--require-hashes" in docs
    assert "ONNX" in docs and "onnxruntime" in docs
