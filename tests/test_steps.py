"""Every lesson step runs end to end from its own folder, on the real data, with a real server."""

from __future__ import annotations

import pickle
import re
import signal
import subprocess
from pathlib import Path

import pytest
from support import (
    EXAMPLE_CUSTOMER,
    ROOT,
    STEPS,
    copy_step,
    data_env,
    free_port,
    http,
    python,
    server,
    stop,
)

SERVICE_STEPS = [s for s in STEPS[2:] if (ROOT / s / "predict.py").exists()]
VALIDATED_STEPS = [s for s in SERVICE_STEPS if s >= "04"]


def has_own_project(folder: Path) -> bool:
    return (folder / "pyproject.toml").exists()


def command(folder: Path, *args: str) -> list[str]:
    """Steps 01–04 use the repository's environment; from 05 on, each step is its own uv project."""
    if has_own_project(folder):
        return ["uv", "run", "--locked", *args]
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
    out = {}
    for step in STEPS:
        if not (ROOT / step / "train.py").exists():
            continue
        folder = copy_step(step, base)
        out[step] = (folder, run(folder, "python", "train.py").stdout)
    return out


def served_probability(folder: Path) -> tuple[float, int]:
    """Start the step's service on a free port, run its client, and stop the server cleanly."""
    port = free_port()
    cmd = command(folder, "uvicorn", "predict:app", "--host", "127.0.0.1", "--port", str(port))
    if cmd[0] == python():
        cmd = [python(), "-m", "uvicorn", *cmd[1:]]
    with server(cmd, folder, f"http://127.0.0.1:{port}/ping", env=data_env()) as proc:
        client = run(folder, "python", "client.py", f"http://127.0.0.1:{port}/predict")
        assert "churn probability: 0.628" in client.stdout
        status, body = http("POST", f"http://127.0.0.1:{port}/predict", EXAMPLE_CUSTOMER)
        assert status == 200, body
        assert isinstance(body, dict) and set(body) == {"churn_probability", "churn"}, body
        assert body["churn"] is (body["churn_probability"] >= 0.5)
        probability = float(body["churn_probability"])
        exit_code = stop(proc)
    return probability, exit_code


def in_process_probability(folder: Path) -> float:
    """The model files the tests themselves just trained (trusted), scored in this process."""
    if (folder / "pipeline.bin").exists():
        with open(folder / "pipeline.bin", "rb") as f:
            pipeline = pickle.load(f)
        return float(pipeline.predict_proba([EXAMPLE_CUSTOMER])[0, 1])
    with open(folder / "model.bin", "rb") as f:
        dv, model = pickle.load(f)
    return float(model.predict_proba(dv.transform([EXAMPLE_CUSTOMER]))[0, 1])


@pytest.mark.slow
def test_course_figures(trained: dict[str, tuple[Path, str]]) -> None:
    """01-train reproduces the course's figures: 5-fold AUC 0.841 ± 0.01, test AUC 0.857 ± 0.005."""
    output = trained["01-train"][1]
    m = re.search(r"C=1\.0: auc = (\d\.\d+) ± (\d\.\d+)", output)
    assert m, output
    mean, std = float(m[1]), float(m[2])
    assert abs(mean - 0.841) <= 0.01 and std < 0.02, output
    test_auc = float(re.search(r"test auc = (\d\.\d+)", output)[1])  # type: ignore[index]
    assert abs(test_auc - 0.857) <= 0.005, output
    assert (trained["01-train"][0] / "model.bin").exists()


@pytest.mark.slow
def test_every_step_trains_the_same_model(trained: dict[str, tuple[Path, str]]) -> None:
    figures = {
        step: re.findall(r"(?:auc = |auc=)[\d. ±]+", out) for step, (_, out) in trained.items()
    }
    first = figures["01-train"]
    for step, found in figures.items():
        assert found == first, f"{step} prints other AUCs than 01-train: {found} vs {first}"
    for step, (folder, _) in trained.items():
        assert (folder / "model.bin").exists(), step
        if step != "01-train":
            assert (folder / "pipeline.bin").exists(), step


@pytest.mark.slow
def test_predict_script_of_steps_01_02(trained: dict[str, tuple[Path, str]]) -> None:
    for step in ("01-train", "02-pipeline"):
        folder = trained[step][0]
        out = run(folder, "python", "predict.py").stdout
        assert out.splitlines() == ["churn probability: 0.628", "churn: True"], (step, out)


@pytest.mark.slow
@pytest.mark.parametrize("step", SERVICE_STEPS)
def test_service_end_to_end(step: str, trained: dict[str, tuple[Path, str]]) -> None:
    """Train; start a real uvicorn on a free port; run the client; stop the server cleanly.
    The probability equals the in-process pipeline's and step 01's, to 1e-6."""
    folder = trained[step][0]
    served, exit_code = served_probability(folder)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: -15 is a clean stop
    # (143 = 128 + 15 when `uv run` reports it).
    log = (folder / ".server.log").read_text()
    assert exit_code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
        f"{step}: server exit {exit_code}\n{log[-2000:]}"
    )
    assert "Application shutdown complete." in log, f"{step}: no graceful shutdown\n{log[-2000:]}"
    assert served == pytest.approx(in_process_probability(folder), abs=1e-6)
    assert served == pytest.approx(in_process_probability(trained["01-train"][0]), abs=1e-6)


BAD_INPUTS: list[tuple[str, dict[str, object], str]] = [
    ("missing field", {"tenure": None}, "tenure"),
    ("unknown field", {"tenur": 1}, "tenur"),
    ("wrong type: string for a number", {"tenure": "12"}, "tenure"),
    ("wrong type: bool for a number", {"monthlycharges": True}, "monthlycharges"),
    ("wrong type: number for a category", {"gender": 1}, "gender"),
    ("unknown category", {"contract": "month_to_month"}, "contract"),
    ("raw CSV spelling", {"gender": "Female"}, "gender"),
    ("negative tenure", {"tenure": -1}, "tenure"),
    ("negative charges", {"totalcharges": -0.01}, "totalcharges"),
    ("seniorcitizen out of range", {"seniorcitizen": 2}, "seniorcitizen"),
    ("absurd number", {"totalcharges": 1e300}, "totalcharges"),
]


def bad_customer(change: dict[str, object]) -> dict[str, object]:
    customer = dict(EXAMPLE_CUSTOMER)
    for key, value in change.items():
        if value is None:
            customer.pop(key)
        else:
            customer[key] = value
    return customer


@pytest.mark.slow
@pytest.mark.parametrize("step", VALIDATED_STEPS)
def test_bad_input_gets_422_naming_the_field(
    step: str, trained: dict[str, tuple[Path, str]]
) -> None:
    folder = trained[step][0]
    port = free_port()
    cmd = command(folder, "uvicorn", "predict:app", "--host", "127.0.0.1", "--port", str(port))
    if cmd[0] == python():
        cmd = [python(), "-m", "uvicorn", *cmd[1:]]
    raw_bodies = [b"", b"not json", b"[1, 2", b'{"tenure": NaN}', b"\xff\xfe", b"null", b"[]"]
    with server(cmd, folder, f"http://127.0.0.1:{port}/ping", env=data_env()):
        url = f"http://127.0.0.1:{port}/predict"
        for name, change, field in BAD_INPUTS:
            status, body = http("POST", url, bad_customer(change))
            assert status == 422, f"{name}: {status} {body}"
            locs = [e["loc"] for e in body["detail"]]  # type: ignore[index]
            assert any(field in loc for loc in locs), f"{name}: 422 does not name {field}: {body}"
        for raw in raw_bodies:
            status, body = raw_post(url, raw)
            assert status == 422, f"{raw!r}: {status} {body}"
        nan = b'{"gender": "female", "tenure": NaN}'.replace(b"}", b', "monthlycharges": Infinity}')
        assert raw_post(url, nan)[0] == 422
        status, body = http(
            "POST", url.replace("/predict", "/predict_batch"), [EXAMPLE_CUSTOMER] * 3
        )
        assert status == 200 and len(body) == 3, body  # type: ignore[arg-type]
        status, body = http(
            "POST", url.replace("/predict", "/predict_batch"), [EXAMPLE_CUSTOMER, {"x": 1}]
        )
        assert status == 422 and any(1 in e["loc"] for e in body["detail"]), body  # type: ignore[index]


def raw_post(url: str, data: bytes) -> tuple[int, object]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.slow
def test_openapi_describes_types_and_allowed_values(
    trained: dict[str, tuple[Path, str]],
) -> None:
    folder = trained["04-pydantic"][0]
    port = free_port()
    cmd = [python(), "-m", "uvicorn", "predict:app", "--host", "127.0.0.1", "--port", str(port)]
    with server(cmd, folder, f"http://127.0.0.1:{port}/ping", env=data_env()):
        status, schema = http("GET", f"http://127.0.0.1:{port}/openapi.json")
    assert status == 200
    customer = schema["components"]["schemas"]["Customer"]  # type: ignore[index]
    assert set(customer["required"]) == set(EXAMPLE_CUSTOMER)
    assert customer["additionalProperties"] is False
    assert customer["properties"]["contract"]["enum"] == ["month-to-month", "one_year", "two_year"]
    assert customer["properties"]["tenure"]["type"] == "integer"
    response = schema["components"]["schemas"]["PredictResponse"]  # type: ignore[index]
    assert response["properties"]["churn"]["type"] == "boolean"
    assert response["properties"]["churn_probability"]["type"] == "number"
