"""Late days: grace, a penalty per started day, the cap, the late window, extensions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.batch.course.late import cutoff, lateness, parse_policy, read_extensions

DEADLINE = datetime(2027, 1, 15, 23, 59, 59, tzinfo=UTC)


def test_policy_text() -> None:
    policy = parse_policy("grace=15m,per-day=10,cap=35")
    assert (policy.grace, policy.per_day, policy.cap, policy.max_days) == (
        timedelta(minutes=15),
        10.0,
        35.0,
        None,
    )
    assert policy.window == timedelta(minutes=15, days=4), "the window closes at the cap"
    assert parse_policy("per-day=5%,max-days=2").window == timedelta(days=2)
    for bad in (
        "",
        "per-day=ten",
        "grace=1h",
        "per-day=10,cap=150",
        "per-day=10,per-day=5",
        "per-day=10,bonus=1",
        "grace=soon,per-day=1",
    ):
        with pytest.raises(ValueError):
            parse_policy(bad)


def test_penalty_per_started_day_after_the_grace_up_to_the_cap() -> None:
    policy = parse_policy("grace=1h,per-day=10,cap=35")
    cases = [
        (timedelta(0), 0, 0.0),
        (timedelta(minutes=59), 0, 0.0),
        (timedelta(hours=1, seconds=1), 1, 10.0),
        (timedelta(days=1, hours=1), 1, 10.0),
        (timedelta(days=1, hours=2), 2, 20.0),
        (timedelta(days=9), 9, 35.0),
    ]
    for after, days, percent in cases:
        late = lateness(DEADLINE + after, DEADLINE, policy, timedelta(0))
        assert (late.days_late, late.penalty_percent) == (days, percent), after
    assert (
        lateness(DEADLINE + timedelta(days=2), DEADLINE, policy, timedelta(days=3)).days_late == 0
    )
    assert lateness(DEADLINE, DEADLINE, policy, timedelta(0)).penalty(50) == 0
    assert (
        lateness(DEADLINE + timedelta(days=2), DEADLINE, policy, timedelta(0)).penalty(61) == 12.2
    )


def test_the_cutoff_moves_with_the_extension_and_the_window() -> None:
    policy = parse_policy("per-day=25,max-days=3")
    assert cutoff(DEADLINE, None, timedelta(0)) == DEADLINE
    assert cutoff(DEADLINE, policy, timedelta(days=1)) == DEADLINE + timedelta(days=4)


def test_extensions_file(tmp_path: Path) -> None:
    path = tmp_path / "ext.csv"
    path.write_text("student,days,deadline\nana@uni.edu,2,\nben,,2027-01-20T12:00:00Z\n")
    ext = read_extensions(path, DEADLINE)
    assert ext["ana@uni.edu"] == timedelta(days=2)
    assert ext["ben"] == datetime(2027, 1, 20, 12, tzinfo=UTC) - DEADLINE
    for bad in (
        "student,days\nana,-1\n",
        "student,days\nana,x\n",
        "who,days\nana,1\n",
        "student,days\nana,1\nana,2\n",
    ):
        path.write_text(bad)
        with pytest.raises(ValueError):
            read_extensions(path, DEADLINE)
