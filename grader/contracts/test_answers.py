"""The homework's answers file: every question of homework/README.md, checked against what the
grader measures on the student's own work (or computes from the data).

The student writes `answers.toml` next to train.py (template: homework/answers.toml). Each
answer is one check of its stage (ids N.50 and up, after the stage's contract checks), so a
wrong answer costs only its own points. Only the credit-card spec has answers.
"""

from __future__ import annotations

import csv
import math
import re
from typing import Any

import numpy as np

from grader.checks import check, expect, fail
from grader.contracts.common import (
    caused,
    check_prediction,
    pinned_version,
    read_prediction,
    server,
)
from grader.contracts.common import probabilities as probe_probabilities
from grader.diagnose import fit_logistic
from grader.grading.requests import BAD, HELDOUT
from grader.grading.session import Grading
from grader.homework import CLIENT_B, CLIENT_C, QUESTIONS
from grader.specs import Dataset, Record, split
from grader.submission.files import FileProblem

ANSWERS_FILE = "answers.toml"

SPECS = ("credit",)  # the homework's answers: graded for the credit-card spec only

# Tolerances: answers are asked with 3 decimals.
PROBABILITY_TOL = 0.0015
AUC_TOL = 0.002
SUSPICIOUS_AUC = 0.95  # no honest model of the nine features comes near it (about 0.85)
LEAKY_AUC_TOL = 0.01  # any reasonable solver or C gives 0.99x with the leaking columns
IMAGE_SIZE_TOL = 0.30  # `docker images` shows different sizes on different engines and stores
SKLEARN_WHEEL = re.compile(r"scikit_learn-[^/]*-cp313-cp313-manylinux[^/]*x86_64[^/]*\.whl$")

BY_KEY = {(q.section, q.key): q for q in QUESTIONS}


# -- reading the answers ------------------------------------------------------------------------
def answers_of(grading: Grading) -> dict[str, Any]:
    """The answers file, parsed; its absence or a syntax error is said in full once (at the
    first answer of the run), then "not checked because N.M failed"."""
    try:
        answers = grading.submitted_toml(ANSWERS_FILE)
    except FileProblem as e:
        caused(grading, "answers", f"{e}: strings need quotes, numbers do not")
    if answers is None:
        caused(
            grading,
            "answers",
            f"{ANSWERS_FILE} not found: copy homework/{ANSWERS_FILE} next to train.py, "
            "then fill it in",
        )
    return answers


def answer(grading: Grading, section: str, key: str) -> Any:
    question = BY_KEY[(section, key)]
    table = answers_of(grading).get(section)
    value = table.get(key) if isinstance(table, dict) else None
    where = f"[{section}] {key} in {ANSWERS_FILE}"
    if value is None or value == "":
        fail(f"{where} is not answered ({question.text})")
    return value


def number(grading: Grading, section: str, key: str) -> float:
    value = answer(grading, section, key)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            fail(f"[{section}] {key} should be a number, not {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        fail(f"[{section}] {key} should be a number, not {value!r}")
    return float(value)


def close(given: float, expected: float, tol: float, what: str) -> None:
    expect(
        abs(given - expected) <= tol,
        f"you answered {given:g}; the grader measures {expected:.4f} for {what} "
        f"(accepted: ±{tol:g})",
    )


# -- what the grader measures -----------------------------------------------------------------
def roc_auc(scores: list[float], targets: list[int]) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half), numpy only."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(targets) == 1
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n0 = int(t.sum()), int((~t).sum())
    return float((ranks[t].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def leaky_auc(grading: Grading) -> float:
    """Test AUC of the homework's model trained with the two leaking columns kept."""
    spec = grading.spec
    with spec.dataset_path().open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    numerical = [*spec.numerical, *spec.leaky]
    one_hot = [(name, value) for name in spec.categorical for value in ("no", "yes")]

    def row(r: dict[str, str]) -> list[float]:
        return [float(r[n]) for n in numerical] + [float(r[n] == v) for n, v in one_hot]

    data = spec.preprocess(rows)
    index = Dataset([{"i": i} for i in range(len(rows))], data.targets)
    parts = split(index, spec.test_size, spec.random_state)
    train = [int(r["i"]) for r in parts.train.records]
    test = [int(r["i"]) for r in parts.test.records]
    X = np.array([row(r) for r in rows])
    y = np.array(data.targets, dtype=float)
    w = fit_logistic(X[train], y[train])
    scores = 1 / (1 + np.exp(-(np.hstack([X[test], np.ones((len(test), 1))]) @ w)))
    return roc_auc(list(scores), [int(v) for v in y[test]])


def probabilities(grading: Grading, which: str) -> list[float]:
    """What model.bin or pipeline.bin gives [example, *held-out, *seeded] (stage 1-2 probe;
    a missing or broken file is charged where the stage first needs it)."""
    return probe_probabilities(grading, which, f"{which}.bin")


def heldout_index(grading: Grading, client: Record) -> int:
    for i, record in enumerate(grading.records.heldout):
        if record == client:
            return i
    raise AssertionError("the client is not in the held-out set: the grader's data changed?")


# -- the checks -------------------------------------------------------------------------------
@check("1.50", "answer 1.a: test AUC of model.bin", points=1)
def test_auc(grading: Grading) -> None:
    given = number(grading, "train", "auc")
    n = len(grading.records.heldout)
    scores = probabilities(grading, "model")[1 : 1 + n]
    measured = roc_auc(scores, grading.records.heldout_targets)
    if abs(given - measured) > AUC_TOL and 1 >= given >= SUSPICIOUS_AUC > measured:
        fail(
            f"you answered {given:g}; the grader measures {measured:.4f} for your model.bin. "
            f"An AUC near 1.0 is suspiciously high for this data: a model that sees `share` "
            "and `expenditure` (what the client spent with the card) knows the answer. Drop "
            "them, and report the AUC on the test part of the model you saved"
        )
    close(given, measured, AUC_TOL, "your model.bin")


@check("1.51", "answer 1.b: test AUC with the leaking columns", points=1)
def test_leaky_auc(grading: Grading) -> None:
    given = number(grading, "train", "leaky_auc")
    close(given, leaky_auc(grading), LEAKY_AUC_TOL, "the model trained with share and expenditure")


@check("1.52", "answer 1.c: probability of client A", points=1)
def test_probability_a(grading: Grading) -> None:
    given = number(grading, "train", "probability_a")
    close(given, probabilities(grading, "model")[0], PROBABILITY_TOL, "client A with model.bin")


@check("2.50", "answer 2.a: probability of client B", points=1)
def test_probability_b(grading: Grading) -> None:
    given = number(grading, "pipeline", "probability_b")
    expected = probabilities(grading, "pipeline")[1 + heldout_index(grading, CLIENT_B)]
    close(given, expected, PROBABILITY_TOL, "client B with pipeline.bin")


def service_answer_c(grading: Grading) -> dict[str, Any]:
    """The service's JSON answer for client C (it is among the held-out rows the probe sends)."""
    i = heldout_index(grading, CLIENT_C)
    run = server(grading)
    response = run.get(f"{HELDOUT}{i}")
    if response.get("status") != 200:
        fail(str(check_prediction(grading, response, None, "client C", run, names=False)))
    body = response.get("json")
    if not isinstance(body, dict):
        fail(f"the service did not answer client C with JSON: {response}")
    return body


@check("3.50", "answer 3.a: card_probability for client C", points=1)
def test_card_probability_c(grading: Grading) -> None:
    given = number(grading, "fastapi", "card_probability_c")
    body = service_answer_c(grading)
    value, _, _ = read_prediction(
        body, grading.spec.response_probability, grading.spec.response_label
    )
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(f"the service's answer for client C has no numeric card_probability: {body}")
    close(given, float(value), PROBABILITY_TOL, "your service's card_probability for client C")


@check("3.51", "answer 3.b: card for client C", points=1)
def test_card_c(grading: Grading) -> None:
    given = answer(grading, "fastapi", "card_c")
    if not isinstance(given, bool):
        fail(f"[fastapi] card_c should be true or false (no quotes), not {given!r}")
    body = service_answer_c(grading)
    _, served, _ = read_prediction(
        body, grading.spec.response_probability, grading.spec.response_label
    )
    expect(given == served, f"you answered {given}; your service answers {served} for client C")


@check("4.50", "answer 4.a: status code for an unknown owner", points=1)
def test_status_bad_owner(grading: Grading) -> None:
    given = number(grading, "pydantic", "status_bad_owner")
    unknown_owner = [
        i
        for i, bad in enumerate(grading.records.bad)
        if bad.kind == "unknown_category" and bad.field == "owner"
    ]
    expect(unknown_owner, "the grader sends no request with an unknown owner (spec changed?)")
    response = server(grading).get(f"{BAD}{unknown_owner[0]}")
    status = response.get("status")
    if status is None:
        fail(f"your service gave no answer to a client with an unknown owner: {response}")
    expect(given == status, f"you answered {given:g}; your service answers {status}")
    expect(status == 422, f"your service answers {status}: a Pydantic model answers 422 here")


@check("5.50", "answer 5.a: scikit-learn version in uv.lock", points=1)
def test_sklearn_version(grading: Grading) -> None:
    given = str(answer(grading, "uv", "sklearn_version")).strip()
    locked = pinned_version(grading, "scikit-learn")
    has_lock = grading.submitted_file("uv.lock") is not None
    if locked is None and not has_lock:
        caused(grading, "lock", "there is no uv.lock to read scikit-learn's version from")
    expect(locked is not None, "your uv.lock locks no scikit-learn (see stage 5's checks)")
    where = "your uv.lock locks" if has_lock else "your pyproject.toml pins (no uv.lock)"
    expect(given == locked, f"you answered {given!r}; {where} scikit-learn {locked}")


@check("5.51", "answer 5.b: sha256 of the scikit-learn wheel", points=1)
def test_sklearn_wheel_sha256(grading: Grading) -> None:
    given = str(answer(grading, "uv", "sklearn_wheel_sha256")).strip().lower()
    if grading.submitted_file("uv.lock") is None:
        caused(grading, "lock", "there is no uv.lock to read the wheel's hash from")
    given = given.removeprefix("sha256:")
    hashes = []
    for package in (grading.lock or {}).get("package", []):
        if package.get("name") == "scikit-learn":
            for wheel in package.get("wheels", []):
                if SKLEARN_WHEEL.search(str(wheel.get("url", ""))):
                    hashes.append(str(wheel.get("hash", "")).removeprefix("sha256:").lower())
    expect(hashes, "your uv.lock has no scikit-learn wheel for CPython 3.13 on Linux x86_64")
    expect(
        given in hashes,
        f"you answered {given!r}; the cp313 manylinux x86_64 wheel in your uv.lock has "
        f"sha256 {hashes[0]}",
    )


@check("6.50", "answer 6.a: image size", points=1, needs="engine")
def test_image_size(grading: Grading) -> None:
    given = number(grading, "docker", "image_size_mb")
    expect(given > 0, f"[docker] image_size_mb should be positive, not {given:g}")
    build = grading.image
    if build is None or build.returncode != 0:
        caused(grading, "image", "your image did not build, so its size is unknown")
    size = grading.image_size()
    if size is None:
        fail(f"`{grading.engine} image inspect` could not tell the size of your image")
    measured = size / 1e6  # docker counts MB as 1,000,000 bytes
    expect(
        abs(given - measured) <= IMAGE_SIZE_TOL * measured,
        f"you answered {given:g} MB; the grader's build of your Dockerfile is {measured:.0f} MB "
        f"(accepted: ±{IMAGE_SIZE_TOL:.0%})",
    )


@check("7.50", "answer 7.a: URL of the deployment", points=1)
def test_url(grading: Grading) -> None:
    given = str(answer(grading, "flyio", "url")).strip().rstrip("/")
    if grading.submitted_file("fly.toml") is None:
        caused(grading, "fly", "there is no fly.toml, so there is no URL to compare")
    fly = grading.fly
    app = fly.get("app") if fly else None
    expect(isinstance(app, str) and app, "fly.toml names no app, so there is no URL to compare")
    expected = f"https://{app}.fly.dev"
    expect(given == expected, f"you answered {given!r}; fly.toml's app {app!r} is at {expected}")
    if grading.options.url:
        live = grading.options.url.rstrip("/")
        expect(given == live, f"you answered {given!r}; the grader was given --url {live}")
