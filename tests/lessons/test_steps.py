"""Every lesson step runs end to end from its own folder, on the real data.

One real uvicorn per service step (and the course's plain `requests.post` client against it);
the API checks run in-process with FastAPI's TestClient on the step's own trained model.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import (
    ALL_STEPS,
    EXAMPLE_CUSTOMER,
    ROOT,
    SERVICE_STEPS,
    VALIDATED_STEPS,
    copy_step,
    data_env,
    free_port,
    http,
    python,
    server,
    step_client,
    stop,
    two_at_a_time,
)

if TYPE_CHECKING:  # imported where used: collecting this file stays fast
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow

# The course's own client: what a student writes after the workshop, unchanged for every step.
COURSE_CLIENT = """
import sys, requests
customer = {customer!r}
response = requests.post(sys.argv[1], json=customer).json()
print(response["churn_probability"], response["churn"])
"""


def has_own_project(folder: Path) -> bool:
    return (folder / "pyproject.toml").exists()


def command(folder: Path, *args: str) -> list[str]:
    """Steps 01–04 use the repository's environment; from 05 on, each step is its own uv project."""
    if has_own_project(folder):
        return ["uv", "run", "--locked", *args]
    if args[0] == "uvicorn":
        return [python(), "-m", *args]
    return [python() if args[0] == "python" else args[0], *args[1:]]


def run(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command(folder, *args),
        cwd=folder,
        env=data_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args} failed in {folder.name}:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Each step copied to a scratch folder and trained there: {step: (folder, train output)}."""
    base = tmp_path_factory.mktemp("steps")
    folders = {step: copy_step(step, base) for step in ALL_STEPS}

    def train(step: str) -> tuple[Path, str]:
        return folders[step], run(folders[step], "python", "train.py").stdout

    return two_at_a_time(train, ALL_STEPS)


def in_process_probability(folder: Path) -> float:
    """The model files the tests themselves just trained (trusted), scored in this process."""
    if (folder / "pipeline.bin").exists():
        with open(folder / "pipeline.bin", "rb") as f:
            pipeline = pickle.load(f)
        return float(pipeline.predict_proba([EXAMPLE_CUSTOMER])[0, 1])
    with open(folder / "model.bin", "rb") as f:
        dv, model = pickle.load(f)
    return float(model.predict_proba(dv.transform([EXAMPLE_CUSTOMER]))[0, 1])


def test_course_figures(trained: dict[str, tuple[Path, str]]) -> None:
    """01-train reproduces the course's figures: 5-fold AUC 0.841 ± 0.01, test AUC 0.857 ± 0.005."""
    output = trained["01-train"][1]
    m = re.search(r"C=1\.0: auc = (\d\.\d+) ± (\d\.\d+)", output)
    assert m, output
    mean, std = float(m[1]), float(m[2])
    assert abs(mean - 0.841) <= 0.01 and std < 0.02, output
    test_auc = re.search(r"test auc = (\d\.\d+)", output)
    assert test_auc and abs(float(test_auc[1]) - 0.857) <= 0.005, output
    assert (trained["01-train"][0] / "model.bin").exists()


def test_every_step_trains_the_same_model(trained: dict[str, tuple[Path, str]]) -> None:
    figures = {
        step: re.findall(r"(?:auc = |auc=)[\d. ±]+", out) for step, (_, out) in trained.items()
    }
    first = figures["01-train"]
    for step, found in figures.items():
        assert found == first, f"{step} prints other AUCs than 01-train: {found} vs {first}"
    # One pickle per step, under one name: model.bin = (dv, model) in 01, pipeline.bin after it.
    for step, (folder, _) in trained.items():
        written = sorted(p.name for p in folder.glob("*.bin"))
        assert written == (["model.bin"] if step == "01-train" else ["pipeline.bin"]), step


def test_predict_script_of_steps_01_02(trained: dict[str, tuple[Path, str]]) -> None:
    for step in ("01-train", "02-pipeline"):
        folder = trained[step][0]
        out = run(folder, "python", "predict.py").stdout
        assert out.splitlines() == ["churn probability: 0.628", "churn: True"], (step, out)


@pytest.mark.parametrize("step", SERVICE_STEPS)
def test_service_end_to_end(step: str, trained: dict[str, tuple[Path, str]]) -> None:
    """The one real-server test of a step: train; `uvicorn predict:app` on a free port; the
    step's client.py and the course's plain requests client; a clean stop on SIGTERM. The
    probability equals the in-process pipeline's and step 01's, to 1e-6."""
    folder = trained[step][0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = command(folder, "uvicorn", "predict:app", "--host", "127.0.0.1", "--port", str(port))
    with server(cmd, folder, f"{url}/ping", env=data_env()) as proc:
        client = run(folder, "python", "client.py", f"{url}/predict")
        assert "churn probability: 0.628" in client.stdout
        course = subprocess.run(
            [python(), "-c", COURSE_CLIENT.format(customer=EXAMPLE_CUSTOMER), f"{url}/predict"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert course.returncode == 0, course.stderr[-2000:]
        assert course.stdout.split()[1] == "True", course.stdout
        status, body = http("POST", f"{url}/predict", EXAMPLE_CUSTOMER)
        assert status == 200, body
        assert isinstance(body, dict) and set(body) == {"churn_probability", "churn"}, body
        served = float(body["churn_probability"])
        assert body["churn"] is (served >= 0.5)
        assert http("GET", f"{url}/ping") == (200, {"status": "ok"})
        exit_code = stop(proc)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: -15 is a clean stop
    # (143 = 128 + 15 when `uv run` reports it).
    log = (folder / ".server.log").read_text()
    assert exit_code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
        f"{step}: server exit {exit_code}\n{log[-2000:]}"
    )
    assert "Application shutdown complete." in log, f"{step}: no graceful shutdown\n{log[-2000:]}"
    assert served == pytest.approx(in_process_probability(folder), abs=1e-6)
    assert served == pytest.approx(in_process_probability(trained["01-train"][0]), abs=1e-6)


@pytest.fixture(scope="module")
def clients(trained: dict[str, tuple[Path, str]]) -> Iterator[dict[str, TestClient]]:
    """Each service step's app, in-process, with the model its own train.py wrote; started as
    a server starts it (`with TestClient`: the app's lifespan runs, and loads the model)."""
    with contextlib.ExitStack() as stack:
        yield {step: stack.enter_context(step_client(trained[step][0])) for step in SERVICE_STEPS}


def test_step_03_scores_any_object(clients: dict[str, TestClient]) -> None:
    """Step 03 validates nothing yet (its README shows it): a bad body still gets an answer."""
    response = clients["03-fastapi"].post("/predict", json={"tenure": "abc"})
    assert response.status_code == 200 and set(response.json()) == {"churn_probability", "churn"}


def test_numpy_bool_error_quoted_by_step_03() -> None:
    """Step 03's README quotes the error that `float(...)` avoids: a NumPy bool in the answer.
    The same FastAPI fails the same way today (in-process, no model needed)."""
    import numpy as np
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.get("/answer")
    def answer() -> dict:
        return {"churn": np.float64(0.6) >= 0.5}

    with pytest.raises(Exception) as raised:
        TestClient(app).get("/answer")
    error = f"{type(raised.value).__module__}.{type(raised.value).__name__}: {raised.value}"
    readme = (ROOT / "03-fastapi" / "README.md").read_text()
    assert error in readme, error


BAD_INPUTS: list[tuple[str, dict[str, object], str]] = [
    ("missing field", {"tenure": None}, "tenure"),
    ("unknown field", {"tenur": 1}, "tenur"),
    ("wrong type: text for a number", {"tenure": "abc"}, "tenure"),
    ("wrong type: number for a category", {"gender": 1}, "gender"),
    ("unknown category", {"contract": "month_to_month"}, "contract"),
    ("raw CSV spelling", {"gender": "Female"}, "gender"),
    ("negative tenure", {"tenure": -1}, "tenure"),
    ("negative charges", {"totalcharges": -0.01}, "totalcharges"),
    ("seniorcitizen out of range", {"seniorcitizen": 2}, "seniorcitizen"),
]


def bad_customer(change: dict[str, object]) -> dict[str, object]:
    customer = dict(EXAMPLE_CUSTOMER)
    for key, value in change.items():
        if value is None:
            customer.pop(key)
        else:
            customer[key] = value
    return customer


@pytest.mark.parametrize("step", VALIDATED_STEPS)
def test_bad_input_gets_422_naming_the_field(step: str, clients: dict[str, TestClient]) -> None:
    client = clients[step]
    for name, change, field in BAD_INPUTS:
        response = client.post("/predict", json=bad_customer(change))
        assert response.status_code == 422, f"{name}: {response.status_code} {response.text}"
        locs = [e["loc"] for e in response.json()["detail"]]
        assert any(field in loc for loc in locs), f"{name}: 422 does not name {field}: {locs}"
    for raw in (b"", b"not json", b"[1, 2", b"null", b"[]"):
        response = client.post(
            "/predict", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, f"{raw!r}: {response.status_code} {response.text}"


@pytest.mark.parametrize("step", VALIDATED_STEPS)
def test_openapi_describes_types_allowed_values_and_the_example(
    step: str, clients: dict[str, TestClient]
) -> None:
    schema = clients[step].get("/openapi.json").json()
    customer = schema["components"]["schemas"]["Customer"]
    assert set(customer["required"]) == set(EXAMPLE_CUSTOMER)
    assert customer["additionalProperties"] is False
    properties = customer["properties"]
    assert properties["contract"]["enum"] == ["month-to-month", "one_year", "two_year"]
    senior = properties["seniorcitizen"]
    assert senior.get("enum") == [0, 1] or (senior["minimum"], senior["maximum"]) == (0, 1)
    assert properties["tenure"]["type"] == "integer"
    # "Try it out" in /docs offers this body: the example customer, not generated extremes.
    assert customer["examples"] == [EXAMPLE_CUSTOMER]
    response = schema["components"]["schemas"]["PredictResponse"]
    assert response["properties"]["churn"]["type"] == "boolean"
    assert response["properties"]["churn_probability"]["type"] == "number"
