"""A cohort of realistic homework submissions (tests/grader/fixtures): correct work in another
valid form keeps its points, each mistake costs once, at the check that names it, and the
feedback names the cause in the homework's own terms."""

from __future__ import annotations

from typing import Any

import grader_variants as variants
import pytest
from grader_helpers import failed, grade, lost
from support import selected, two_at_a_time

pytestmark = pytest.mark.slow

FULL_MARKS = ("reference", "workshop-pipeline", "sklearn-1.8", "sklearn-1.8-unpickled")

# variant: (checks that must fail, most points it may cost, words its feedback must contain)
MISTAKES: dict[str, tuple[set[str], float, dict[str, list[str]]]] = {
    "renamed-field": ({"3.3", "4.8"}, 3, {"3.3": ["'card_probability'", "'probability'"]}),
    "leaking-columns": (
        {"1.4", "1.50"},
        4,
        {"1.4": ["`share`", "`expenditure`", "leak"], "1.50": ["suspiciously high"]},
    ),
    "all-rows": ({"1.4"}, 3, {"1.4": ["all rows", "test rows"]}),
    "hard-coded": ({"3.4", "3.5"}, 3, {"3.4": ["every one of", "does not depend on the request"]}),
    "workshop-offline": ({"1.1"}, 2, {"1.1": ["without network"]}),
    "missing-lock": ({"5.1", "5.2", "5.51"}, 4, {"5.2": ["not checked because 5.1 failed"]}),
    "missing-ping": ({"3.2"}, 1, {"3.2": ["@app.get('/ping')"]}),
    "lax-numbers": ({"4.6"}, 1, {"4.6": ["Infinity", "--- last server output ---"]}),
    "numpy-bool": (
        {"3.3", "3.4", "3.5", "3.50", "3.51", "4.8"},
        8,
        {"3.3": ["HTTP 500", "--- last server output ---"]},
    ),
}


def test_every_cohort_variant_has_an_expectation() -> None:
    assert set(variants.COHORT) == set(FULL_MARKS) | set(MISTAKES)


@pytest.fixture(scope="module")
def graded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """results.json of each selected variant, graded two at a time (as `grade batch --jobs 2`
    grades a cohort)."""
    variants_run = selected(request, "variant")
    folders = {v: tmp_path_factory.mktemp(v) for v in variants_run}

    def one(variant: str) -> dict[str, Any]:
        folder = variants.build(variant, folders[variant])
        return grade(folder, "--spec", "credit", "--engine", "none")[1]

    return two_at_a_time(one, variants_run)


@pytest.mark.parametrize("variant", FULL_MARKS)
def test_correct_work_keeps_full_marks(variant: str, graded: dict[str, dict[str, Any]]) -> None:
    results = graded[variant]
    assert not failed(results), failed(results)
    assert results["score"] == results["max_score"] > 0


@pytest.mark.parametrize("variant", sorted(MISTAKES))
def test_each_mistake_costs_once_and_is_named(
    variant: str, graded: dict[str, dict[str, Any]]
) -> None:
    checks, most, words = MISTAKES[variant]
    results = graded[variant]
    problems = failed(results)
    assert set(problems) == checks, problems
    assert lost(results) <= most
    for check, needed in words.items():
        for word in needed:
            assert word in problems[check], (check, word, problems[check])
