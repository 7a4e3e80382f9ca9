"""grader/contracts/common.py: the contracts' shared helpers."""

from __future__ import annotations

from grader.contracts.common import auc, read_prediction


def test_auc_matches_definition() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1], [0.5, 0.5]) == 0.5


def test_renamed_fields_are_read_where_they_are() -> None:
    spec_names = ("card_probability", "card")
    assert read_prediction({"card_probability": 0.4, "card": False}, *spec_names)[:2] == (
        0.4,
        False,
    )
    assert read_prediction({"probability": 0.7, "card": True}, *spec_names)[:2] == (0.7, True)
    assert read_prediction({"p": 0.7, "approved": True}, *spec_names)[:2] == (0.7, True)
    # ambiguous: two numbers in [0, 1], nothing is guessed
    assert read_prediction({"a": 0.1, "b": 0.2, "card": True}, *spec_names)[0] is None
