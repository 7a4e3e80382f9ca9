"""Step 08's hardening, one test per attack its README names, each also run against step 07 to
show the failure it fixes. In-process, with FastAPI's TestClient and the step's trained model;
the 413 under load with a real server and real clients (requests, urllib)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.grader_helpers import grade
from tests.service_tools import service, trained_step
from tests.support import EXAMPLE_CUSTOMER, HARDENED_STEP, copy_step, step_client

if TYPE_CHECKING:  # imported where used: collecting this file stays fast
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Step 08 trained, and step 07 beside it with the same model (their train.py is the same)."""
    base = tmp_path_factory.mktemp("hardening")
    hardened = trained_step(HARDENED_STEP, base)
    before = copy_step("07-flyio", base)
    shutil.copy2(hardened / "pipeline.bin", before / "pipeline.bin")
    return {"07": before, "08": hardened}


@pytest.fixture(scope="module")
def clients(folders: dict[str, Path]) -> Iterator[dict[str, TestClient]]:
    """Both apps in-process, started as a server starts them (08's lifespan loads the model)."""
    with contextlib.ExitStack() as stack:
        yield {k: stack.enter_context(step_client(f)) for k, f in folders.items()}


@pytest.fixture(scope="module")
def hardened(clients: dict[str, TestClient]) -> TestClient:
    return clients["08"]


def with_number(field: str, literal: str) -> bytes:
    """The example customer as JSON with one number replaced by a raw literal (NaN, Infinity)."""
    body = json.dumps(dict(EXAMPLE_CUSTOMER, **{field: 12345.5}))
    return body.replace("12345.5", literal).encode()


def test_example_customer_at_0_628(hardened: TestClient) -> None:
    response = hardened.post("/predict", json=EXAMPLE_CUSTOMER)
    assert response.status_code == 200
    assert round(response.json()["churn_probability"], 3) == 0.628
    assert response.json()["churn"] is True


BIG = json.dumps([{"tenure": 1}] * 140_000).encode()  # the 2 MB body of the README
REFUSED = {"detail": "Content Too Large: the limit is 1000000 bytes"}


def test_body_over_1_mb_is_refused_with_413(clients: dict[str, TestClient]) -> None:
    assert len(BIG) > 2_000_000
    assert clients["07"].post("/predict", content=BIG, headers=JSON).status_code == 422
    for path in ("/predict", "/predict_batch"):
        response = clients["08"].post(path, content=BIG, headers=JSON)
        assert (response.status_code, response.json()) == (413, REFUSED)
        assert response.headers["connection"] == "close"
    just_in = json.dumps([EXAMPLE_CUSTOMER] * 1000).encode()  # the largest batch: ~0.5 MB
    assert len(just_in) < 1_000_000
    assert clients["08"].post("/predict_batch", content=just_in, headers=JSON).status_code == 200


def test_body_without_length_gets_411(clients: dict[str, TestClient]) -> None:
    """A chunked body announces no size: step 07 reads it, step 08 refuses it unread."""

    def chunks() -> Iterator[bytes]:
        yield json.dumps(EXAMPLE_CUSTOMER).encode()

    assert clients["07"].post("/predict", content=chunks(), headers=JSON).status_code == 200
    response = clients["08"].post("/predict", content=chunks(), headers=JSON)
    assert response.status_code == 411, response.text
    assert clients["08"].post("/predict", json=EXAMPLE_CUSTOMER).status_code == 200


# The count of 2 MB posts per client: CI sends 50, the README's figure comes from 200
# (LOAD_413_TRIES=200).
TRIES = int(os.environ.get("LOAD_413_TRIES", "50"))


def _post_requests(url: str) -> tuple[int, str]:
    import requests

    try:
        response = requests.post(url, data=BIG, headers=JSON, timeout=30)
    except requests.RequestException as e:
        return 0, type(e).__name__
    return response.status_code, response.text


def _post_urllib(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=BIG, method="POST", headers=JSON)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, f"{type(e).__name__}: {getattr(e, 'reason', e)}"


@contextlib.contextmanager
def busy_cpus() -> Iterator[None]:
    """One busy loop per CPU, for as long as the block runs (then killed)."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


@pytest.mark.parametrize("client", [_post_requests, _post_urllib], ids=["requests", "urllib"])
def test_413_reaches_every_client_under_load(client: Any, folders: dict[str, Path]) -> None:
    """A real server (`uvicorn predict:app`), 2 MB posts one after another while busy loops
    load every CPU: each client reads the 413 and its message, never a broken connection."""
    with service(folders["08"]) as base, busy_cpus():
        answers = Counter(client(f"{base}/predict") for _ in range(TRIES))
    print(f"{client.__name__}: {dict(answers)} of {TRIES} tries under load")
    assert answers == {(413, json.dumps(REFUSED, separators=(",", ":"))): TRIES}, answers


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_get_422(literal: str, clients: dict[str, TestClient]) -> None:
    body = with_number("monthlycharges", literal)
    assert clients["07"].post("/predict", content=body, headers=JSON).status_code == 500
    response = clients["08"].post("/predict", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "monthlycharges"]]
    batch = b"[" + body + b"]"
    assert clients["08"].post("/predict_batch", content=batch, headers=JSON).status_code == 422


def test_non_utf8_body_gets_400(hardened: TestClient) -> None:
    response = hardened.post("/predict", content=b'{"gender": "\xff"}', headers=JSON)
    assert response.status_code == 400


def test_openapi_documents_400(clients: dict[str, TestClient]) -> None:
    def documented(client: TestClient) -> set[str]:
        return set(client.get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"])

    assert "400" not in documented(clients["07"])
    assert {"200", "400", "422"} <= documented(clients["08"])


STRICT = [
    ("tenure", "1"),
    ("tenure", 1.5),
    ("tenure", 1201),
    ("seniorcitizen", True),
    ("monthlycharges", "29.85"),
    ("monthlycharges", 10_001),
    ("totalcharges", 1e9),
]


@pytest.mark.parametrize(("field", "value"), STRICT, ids=[f"{f}={v!r}" for f, v in STRICT])
def test_strict_input(field: str, value: object, clients: dict[str, TestClient]) -> None:
    customer = dict(EXAMPLE_CUSTOMER, **{field: value})
    if (field, value) != ("tenure", 1.5):  # 1.5 is no integer in any mode
        assert clients["07"].post("/predict", json=customer).status_code == 200
    response = clients["08"].post("/predict", json=customer)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


def test_predict_batch(hardened: TestClient) -> None:
    other = dict(EXAMPLE_CUSTOMER, contract="two_year", tenure=60, totalcharges=1790.0)
    singles = [hardened.post("/predict", json=c).json() for c in (EXAMPLE_CUSTOMER, other)]
    batch = hardened.post("/predict_batch", json=[EXAMPLE_CUSTOMER, other]).json()
    # The same model; one matrix product instead of two may differ in the last bit.
    assert [a["churn"] for a in batch] == [s["churn"] for s in singles]
    assert [a["churn_probability"] for a in batch] == pytest.approx(
        [s["churn_probability"] for s in singles], abs=1e-12
    )
    assert hardened.post("/predict_batch", json=[]).json() == []
    assert len(hardened.post("/predict_batch", json=[EXAMPLE_CUSTOMER] * 1000).json()) == 1000
    too_many = hardened.post("/predict_batch", json=[EXAMPLE_CUSTOMER] * 1001)
    assert too_many.status_code == 422
    assert [e["loc"] for e in too_many.json()["detail"]] == [["body"]]
    one_bad = hardened.post("/predict_batch", json=[EXAMPLE_CUSTOMER, {"x": 1}])
    assert one_bad.status_code == 422
    assert all(e["loc"][:2] == ["body", 1] for e in one_bad.json()["detail"])


@pytest.mark.container
def test_grader_gives_full_marks(podman_engine: str, tmp_path: Path) -> None:
    """Step 08 keeps the service contract: stages 1–7 of the autograder, the image built and run."""
    code, results, out = grade(
        copy_step(HARDENED_STEP, tmp_path), "--stage", "7", "--engine", podman_engine, "--docker"
    )
    assert code == 0, out
    lost = {t["name"]: t["output"] for t in results["tests"] if t.get("status") == "failed"}
    assert results["score"] == results["extra_data"]["max_score"], lost
