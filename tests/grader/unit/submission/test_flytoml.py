"""grader/submission/flytoml.py: fly.toml as flyctl reads it."""

from __future__ import annotations

import pytest

from grader.submission import flytoml

FLY = """\
app = "x"
[http_service]
  internal_port = 9696
  auto_stop_machines = {value}
  auto_start_machines = true
"""


@pytest.mark.parametrize("value", ["true", "false", '"stop"', '"off"', '"suspend"'])
def test_fly_toml_accepts_what_flyctl_accepts(value: str) -> None:
    import tomllib

    assert flytoml.problems(tomllib.loads(FLY.format(value=value))) == []


def test_fly_toml_still_refuses_what_flyctl_refuses() -> None:
    import tomllib

    problems = flytoml.problems(tomllib.loads(FLY.format(value='"sometimes"')))
    assert problems and "auto_stop_machines" in problems[0]
    problems = flytoml.problems(tomllib.loads('[http_service]\ninternal_port = "x"\n'))
    assert problems and "internal_port" in problems[0]
