"""Stage 3 (fastapi): `uvicorn predict:app` serves POST /predict with the spec's fields,
consistent with pipeline.bin, and GET /ping answers. The server runs in the sandbox; the
grader's probe talks HTTP to it from inside and reports back as JSON."""

from __future__ import annotations

from grader.checks import check, expect
from grader.contracts.common import (
    answer_text,
    check_prediction,
    heldout_slice,
    ignores_input,
    probabilities,
    seeded_slice,
    server,
    usable,
)
from grader.grading.requests import EXAMPLE, HELDOUT, PING, SEEDED
from grader.grading.session import Grading


@check("3.1", "predict.py's app starts under uvicorn", points=2)
def test_app_starts(grading: Grading) -> None:
    expect((grading.submission / "predict.py").is_file(), "there is no predict.py")
    server(grading)


@check("3.2", "GET /ping answers", points=1)
def test_ping(grading: Grading) -> None:
    answer = server(grading).get(PING)
    path = grading.spec.ping_path
    expect(
        answer.get("status") == 200,
        f"GET {path} must answer 200, got {answer_text(answer)}: add @app.get({path!r})",
    )


@check("3.3", "POST /predict answers the example with the spec's fields", points=13)
def test_predict_example(grading: Grading) -> None:
    run = server(grading)
    problem = check_prediction(grading, run.get(EXAMPLE), None, "the example", run)
    expect(problem is None, str(problem))


def reference(grading: Grading) -> list[float]:
    """What the service must agree with: pipeline.bin, else model.bin (the same model) when
    pipeline.bin is what failed (charged in stage 2)."""
    if not usable(grading, "pipeline") and usable(grading, "model"):
        return probabilities(grading, "model", "model.bin")
    return probabilities(grading, "pipeline", "pipeline.bin")


@check("3.4", "predictions match pipeline.bin", points=2)
def test_predict_consistent(grading: Grading) -> None:
    run = server(grading)
    pipeline = reference(grading)
    held = heldout_slice(grading, pipeline)
    constant = ignores_input(grading, run, "your service")
    expect(constant is None, str(constant))
    problem = check_prediction(
        grading, run.get(EXAMPLE), pipeline[0], "the example", run, names=False
    )
    for i in grading.records.public_sample:
        problem = problem or check_prediction(
            grading, run.get(f"{HELDOUT}{i}"), held[i], f"held-out record {i}", run, names=False
        )
    expect(problem is None, str(problem))


@check("3.5", "seeded records get consistent predictions", points=1, hidden=True)
def test_predict_seeded(grading: Grading) -> None:
    run = server(grading)
    seeded = seeded_slice(grading, reference(grading))
    problem = None
    for i, expected in enumerate(seeded):
        problem = problem or check_prediction(
            grading, run.get(f"{SEEDED}{i}"), expected, f"seeded record {i}", run, names=False
        )
    expect(problem is None, str(problem))
