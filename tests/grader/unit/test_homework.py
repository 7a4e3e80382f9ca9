"""grader/homework.py: the homework's questions and the clients they ask about. (The homework
graded whole: tests/grader/test_homework.py.)"""

from __future__ import annotations

from grader.homework import CLIENT_A, CLIENT_B, CLIENT_C, QUESTIONS
from grader.records import in_ranges
from grader.specs import CREDIT


def test_each_question_has_its_own_key_and_check() -> None:
    assert len({q.key for q in QUESTIONS}) == len({q.check_id for q in QUESTIONS}) == len(QUESTIONS)
    stages = [int(q.check_id.split(".")[0]) for q in QUESTIONS]
    assert stages == sorted(stages) and set(stages) == set(range(1, 8))
    assert all(int(q.check_id.split(".")[1]) >= 50 for q in QUESTIONS), "answers: x.50 on"


def test_the_clients_are_valid_applicants() -> None:
    for client in (CLIENT_A, CLIENT_B, CLIENT_C):
        assert set(client) == set(CREDIT.features) and in_ranges(CREDIT, client)
    assert len({tuple(sorted(c.items())) for c in (CLIENT_A, CLIENT_B, CLIENT_C)}) == 3
