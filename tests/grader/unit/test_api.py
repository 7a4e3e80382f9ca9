"""grader/api.py: `grade_one`, the keyword-only Python API. (Gradings through it: the scenario
tests, e.g. tests/grader/test_homework.py.)"""

from __future__ import annotations

import inspect

import pytest

from grader import api
from grader.options import DEFAULTS
from tests.support import ROOT


def test_grade_one_takes_every_option_by_keyword_with_the_one_default() -> None:
    parameters = inspect.signature(api.grade_one).parameters
    names = {"spec": "spec_name"}
    for name, parameter in list(parameters.items())[1:]:
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameter.default == getattr(DEFAULTS, names.get(name, name)), name
    assert {names.get(n, n) for n in parameters} - {"submission"} == set(DEFAULTS.to_json()) - {
        "submission"
    }


def test_an_unprotected_seeded_grading_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRADER_NO_BWRAP", "1")
    with pytest.raises(api.Refused, match="a seeded grading needs the sandbox"):
        api.grade_one(ROOT / "solutions", spec="credit", seed=7)
