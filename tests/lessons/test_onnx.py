"""Step 09-onnx: the service scores pipeline.onnx exactly as the pickled pipeline's
predict_proba, on every customer of the dataset, and its image holds no training library."""

from __future__ import annotations

import pickle
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.engines import build, image_tag, running
from tests.grader_helpers import grade
from tests.support import EXAMPLE_CUSTOMER, copy_step, data_env, free_port, http, python, server

STEP = "09-onnx"
TOLERANCE = 1e-6  # ONNX Runtime computes in float32, scikit-learn in float64
NUMERICAL = ["tenure", "monthlycharges", "totalcharges"]


def customers(csv: Path) -> list[dict[str, object]]:
    """Every row of the churn data as a request body, preprocessed as the course does."""
    df = pd.read_csv(csv)
    df.columns = df.columns.str.lower().str.replace(" ", "_")
    for col in df.select_dtypes(include=["object", "string"]).columns:
        df[col] = df[col].str.lower().str.replace(" ", "_")
    df["totalcharges"] = pd.to_numeric(df["totalcharges"], errors="coerce").fillna(0)
    fields = [c for c in EXAMPLE_CUSTOMER if c not in NUMERICAL] + NUMERICAL
    df["tenure"] = df["tenure"].astype(int)
    df[["monthlycharges", "totalcharges"]] = df[["monthlycharges", "totalcharges"]].astype(float)
    return df[fields].to_dict(orient="records")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of 09-onnx after `python train.py` (pipeline.bin and pipeline.onnx)."""
    folder = copy_step(STEP, tmp_path_factory.mktemp("onnx"))
    (folder / "pipeline.onnx").unlink(missing_ok=True)
    result = subprocess.run(
        [python(), "train.py"],
        cwd=folder,
        env=data_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "they agree within 1e-6" in result.stdout
    return folder


@pytest.fixture(scope="module")
def service(trained: Path) -> Iterator[str]:
    """The step's own `uvicorn predict:app` on a free loopback port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [python(), "-m", "uvicorn", "predict:app", "--host", "127.0.0.1", "--port", str(port)]
    with server(cmd, trained, f"{base}/ping", env=data_env(), timeout=90):
        yield base


@pytest.mark.slow
def test_service_equals_predict_proba_on_every_row(
    trained: Path, service: str, churn_csv: Path
) -> None:
    records = customers(churn_csv)
    assert len(records) == 7043
    with (trained / "pipeline.bin").open("rb") as f:
        expected = pickle.load(f).predict_proba(records)[:, 1]

    got: list[float] = []
    for i in range(0, len(records), 1000):  # the service's largest batch
        status, answer = http("POST", f"{service}/predict_batch", records[i : i + 1000])
        assert status == 200, answer
        assert isinstance(answer, list)
        got += [a["churn_probability"] for a in answer]

    differences = [abs(g - e) for g, e in zip(got, expected, strict=True)]
    worst = max(differences)
    row = differences.index(worst)
    assert worst <= TOLERANCE, f"row {row}: ONNX {got[row]!r}, predict_proba {expected[row]!r}"
    # /predict scores the same way as /predict_batch
    status, one = http("POST", f"{service}/predict", records[row])
    assert status == 200 and one == {"churn_probability": got[row], "churn": got[row] >= 0.5}


@pytest.mark.slow
def test_service_example(service: str) -> None:
    status, answer = http("POST", f"{service}/predict", EXAMPLE_CUSTOMER)
    assert status == 200
    assert isinstance(answer, dict)
    assert round(answer["churn_probability"], 3) == 0.628 and answer["churn"] is True


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "pipeline.onnx not found: run `python train.py` first"),
        (b"not a model", "pipeline.onnx is not a readable ONNX model"),
    ],
    ids=["missing", "damaged"],
)
def test_bad_model_file_is_a_clear_error(
    trained: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    folder = tmp_path / STEP
    shutil.copytree(trained, folder)
    if content is None:
        (folder / "pipeline.onnx").unlink()
    else:
        (folder / "pipeline.onnx").write_bytes(content)
    # What the service's lifespan runs at start-up (importing predict.py loads nothing).
    load = "import predict; predict.load_model(predict.ONNX_FILE)"
    result = subprocess.run(
        [python(), "-c", load], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.container
def test_image_serves_without_training_libraries(trained: Path, container_engine: str) -> None:
    tag = image_tag(STEP)
    build(container_engine, trained, tag)
    probe = (
        "import importlib.util as u; print([m for m in ('sklearn', 'scipy', 'pandas', "
        "'skl2onnx') if u.find_spec(m)])"
    )
    found = subprocess.run(
        [container_engine, "run", "--rm", tag, "python", "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]", f"the image holds {found.stdout.strip()}"
    with running(container_engine, tag, 9696) as (_, base):
        status, answer = http("POST", f"{base}/predict", EXAMPLE_CUSTOMER)
    assert status == 200
    assert isinstance(answer, dict) and round(answer["churn_probability"], 3) == 0.628


@pytest.mark.slow
@pytest.mark.container
def test_grader_gives_full_marks(podman_engine: str, tmp_path: Path) -> None:
    """Stages 1–7 of the autograder, the image built and run: an ONNX model beside the pickle
    that train.py still writes, and scikit-learn in a dependency group, cost no points."""
    code, results, out = grade(
        copy_step(STEP, tmp_path), "--stage", "7", "--engine", podman_engine, "--docker"
    )
    assert code == 0, out
    lost = {t["name"]: t["output"] for t in results["tests"] if t.get("status") == "failed"}
    assert results["score"] == results["extra_data"]["max_score"], lost
