"""grader/records.py: valid records and bad requests, public and seeded."""

from __future__ import annotations

import random
from pathlib import Path

from grader.records import in_ranges, public_bad_requests, seeded_bad_requests, valid_records
from grader.specs import CHURN, CREDIT, Dataset


def test_seeded_probes_depend_on_seed_only() -> None:
    data = Dataset([dict(CHURN.example, tenure=t) for t in range(50)], [t % 2 for t in range(50)])
    a = valid_records(CHURN, data, random.Random("seed-1"), 6)
    b = valid_records(CHURN, data, random.Random("seed-1"), 6)
    c = valid_records(CHURN, data, random.Random("seed-2"), 6)
    assert a == b != c
    bad = seeded_bad_requests(CHURN, data, random.Random("seed-1"), 10)
    assert [x.body for x in bad] == [
        x.body for x in seeded_bad_requests(CHURN, data, random.Random("seed-1"), 10)
    ]


def test_hidden_records_stay_inside_the_stated_ranges(credit_csv: Path) -> None:
    data = CREDIT.load(credit_csv)
    test = CREDIT.split(data).test
    for seed in range(30):
        rng = random.Random(f"seed-{seed}-credit")
        assert all(in_ranges(CREDIT, r) for r in valid_records(CREDIT, test, rng, 12))
        # a bad request breaks one field only: the rest is a valid applicant
        for bad in seeded_bad_requests(CREDIT, test, rng, 12):
            rest = {k: v for k, v in bad.body.items() if k != bad.field and k in CREDIT.features}
            assert all(
                CREDIT.ranges[k][0] <= v <= CREDIT.ranges[k][1]
                for k, v in rest.items()
                if k in CREDIT.ranges
            )
    assert in_ranges(CREDIT, CREDIT.example)


def test_nan_and_infinity_are_probed_as_lax_json(credit_csv: Path) -> None:
    bad = public_bad_requests(CREDIT)
    non_finite = {b.kind: b.body[b.field] for b in bad if b.kind in ("nan", "infinity")}
    assert non_finite == {"nan": "NaN", "infinity": "Infinity"}
