"""Stage 7 (flyio): fly.toml is valid, routes to the served port and health-checks a route of
the app; with --url the live deployment answers the same HTTP contract."""

from __future__ import annotations

from typing import Any

from grader.checks import check, expect
from grader.contracts.common import answer_text, caused, check_prediction, ignores_input, server
from grader.grading.requests import BAD, EXAMPLE, FLY_HEALTH, HELDOUT, PING, HttpRun
from grader.grading.session import Grading
from grader.records import KINDS
from grader.submission import flytoml
from grader.submission.flytoml import check_path, internal_ports


def _fly(grading: Grading) -> dict[str, Any]:
    if not grading.submitted_file("fly.toml"):
        caused(
            grading, "fly", "there is no fly.toml: run `fly launch --no-deploy` and submit fly.toml"
        )
    fly = grading.fly  # read as the grader reads every submitted file (grader/submission/files.py)
    assert fly is not None
    return fly


@check("7.1", "fly.toml is valid", points=2)
def test_fly_valid(grading: Grading) -> None:
    errors = flytoml.problems(_fly(grading))
    expect(
        not errors,
        "fly.toml has settings flyctl does not accept (check with `fly config validate`):\n"
        + "\n".join(errors[:5]),
    )


@check("7.2", "internal_port is the served port", points=2)
def test_internal_port(grading: Grading) -> None:
    ports = internal_ports(_fly(grading))
    served = grading.served_port
    expect(ports, "fly.toml has no [http_service] internal_port")
    expect(
        all(p == served for p in ports),
        f"fly.toml's internal_port is {ports[0]}, but the app serves on {served}: fly.io "
        f"would send traffic to a port nobody listens on; set internal_port = {served}",
    )


@check("7.3", "the health check path is a route of the app", points=1)
def test_health_path(grading: Grading) -> None:
    path = check_path(_fly(grading))
    expect(path, 'add a health check: [[http_service.checks]] with path = "/ping"')
    run = server(grading)
    answer = run.get(FLY_HEALTH)
    if path == grading.spec.ping_path and run.get(PING).get("status") != 200:
        return  # the app lacks the route fly.toml rightly checks: charged in 3.2
    expect(
        answer.get("status") == 200,
        f"fly.toml checks GET {path}, which the app answers with {answer_text(answer)}: "
        "point the check at a route that answers 200, e.g. /ping",
    )


def _live(grading: Grading) -> HttpRun:
    run = grading.live
    if not run.started:
        caused(
            grading, "live", f"{grading.options.url} did not answer: {answer_text(run.get('ping'))}"
        )
    return run


@check("7.4", "the live deployment answers GET /ping", points=1, needs="url")
def test_live_ping(grading: Grading) -> None:
    answer = _live(grading).get(PING)
    expect(answer.get("status") == 200, f"GET /ping on the deployment: {answer_text(answer)}")


@check("7.5", "the live deployment answers POST /predict", points=2, needs="url")
def test_live_predict(grading: Grading) -> None:
    run = _live(grading)
    problem = check_prediction(grading, run.get(EXAMPLE), None, "the deployment", names=False)
    for i in grading.records.public_sample[:5]:
        problem = problem or check_prediction(
            grading,
            run.get(f"{HELDOUT}{i}"),
            None,
            f"held-out record {i} on the deployment",
            names=False,
        )
    expect(problem is None, str(problem))
    constant = ignores_input(grading, run, "the deployment")
    expect(constant is None, str(constant))


@check("7.6", "the live deployment rejects bad input with 422", points=1, needs="url")
def test_live_422(grading: Grading) -> None:
    run = _live(grading)
    for i, bad in enumerate(grading.records.bad):
        if bad.kind not in KINDS:  # NaN/Infinity: graded in 4.6
            continue
        answer = run.get(f"{BAD}{i}")
        expect(
            answer.get("status") == 422,
            f"the deployment answered a request with {bad.why} with {answer_text(answer)}, not 422",
        )
