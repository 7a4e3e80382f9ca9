"""grader/checks.py: the check marker API the contracts are written with."""

from __future__ import annotations

import pytest

from grader import checks


def test_a_check_is_a_marker_with_its_id_title_and_points(pytestconfig: pytest.Config) -> None:
    # registered as the contracts' plugin registers it (this suite's markers are strict)
    pytestconfig.addinivalue_line("markers", f"{checks.MARKER}: a graded check")
    mark = checks.check("3.50", "card for client C", 2, hidden=True, needs="url").mark
    assert mark.name == checks.MARKER
    assert mark.kwargs == {
        "id": "3.50",
        "title": "card for client C",
        "points": 2,
        "hidden": True,
        "needs": "url",
    }
    with pytest.raises(ValueError, match="needs must be one of"):
        checks.check("6.9", "builds", 2, needs="gpu")


def test_a_failed_expectation_says_its_message() -> None:
    checks.expect(True, "not raised")
    with pytest.raises(checks.CheckFailed, match=r"^no /ping$"):
        checks.expect(0, "no /ping")
    with pytest.raises(checks.CheckFailed, match=r"^wrong$"):
        checks.fail("wrong")


def test_check_info_orders_by_stage_then_number() -> None:
    infos = [checks.CheckInfo(i, "t", 1, False) for i in ("3.50", "1.5", "3.2", "1.50")]
    assert [i.id for i in sorted(infos, key=checks.CheckInfo.sort_key)] == [
        "1.5",
        "1.50",
        "3.2",
        "3.50",
    ]
    assert infos[0].stage == 3 and infos[0].name == "3.50 t"
