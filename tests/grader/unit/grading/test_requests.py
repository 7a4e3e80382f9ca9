"""grader/grading/requests.py: the records and HTTP requests of a run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from grader.grading.requests import Records, draw, http_requests
from grader.records import in_ranges, public_bad_requests
from grader.specs import CREDIT

SEEDS = [0, 1, 2, 3, 777, 12345, *range(100, 114)]  # 20 seeds, those of the issue among them


def test_every_seed_sends_each_ranges_extremes_and_every_category(credit_csv: Path) -> None:
    """Whatever the seed, the hidden valid records hold each number at the lowest and at the
    highest value the README states, and every value of every categorical field."""
    data = CREDIT.load(credit_csv)
    for seed in SEEDS:
        records = draw(CREDIT, data, seed).seeded
        for name, (low, high) in CREDIT.ranges.items():
            values = {r[name] for r in records}
            assert {low, high} <= values, (seed, name, sorted(values)[:3], sorted(values)[-3:])
        for name in CREDIT.categorical:
            assert {r[name] for r in records} == {"yes", "no"}, (seed, name)
        assert all(in_ranges(CREDIT, r) for r in records)
    assert draw(CREDIT, data, 1).seeded != draw(CREDIT, data, 2).seeded, "the rest varies"


def test_one_wrong_bound_fails_the_hidden_check_under_every_seed(credit_csv: Path) -> None:
    """A service that rejects applicants over 80 (valid ages go to 84) gets at least one valid
    hidden record it rejects under each of 20 seeds, so 3.5 fails under all of them (before:
    under seeds 0, 2 and 12345, not under 1, 3 and 777); a service with the stated bounds
    rejects none."""
    data = CREDIT.load(credit_csv)
    for seed in SEEDS:
        records = draw(CREDIT, data, seed).seeded
        assert any(r["age"] > 80 for r in records), seed
        assert all(r["age"] <= 84 for r in records), seed


def test_every_seed_sends_every_kind_of_bad_input_on_every_field(credit_csv: Path) -> None:
    data = CREDIT.load(credit_csv)
    expected = {("unknown_field", "*")}
    expected |= {(k, f) for k in ("missing_field", "wrong_type") for f in CREDIT.features}
    expected |= {("unknown_category", f) for f in CREDIT.categorical}
    expected |= {("negative_number", f) for f in CREDIT.numerical}
    for seed in SEEDS:
        bad = draw(CREDIT, data, seed).seeded_bad
        kinds = {(b.kind, "*" if b.kind == "unknown_field" else b.field) for b in bad}
        assert kinds == expected, seed


def test_bare_nan_infinity_and_1e400_are_sent_as_json_tokens() -> None:
    """What json.dumps(float("nan")) sends: not a string, a bare token Python reads as a float
    (and 1e400, which it reads as Infinity); sent as raw bodies."""
    raw = {b.kind: b.raw for b in public_bad_requests(CREDIT) if b.raw is not None}
    assert set(raw) == {"nan_token", "infinity_token", "huge_number"}
    for kind, text in raw.items():
        assert text is not None
        body = json.loads(text)  # Python's reader takes them
        value = body["income"]
        assert isinstance(value, float) and not math.isfinite(value), kind
        assert {k: v for k, v in body.items() if k != "income"} == {
            k: v for k, v in CREDIT.example.items() if k != "income"
        }
    assert '"income": NaN' in raw["nan_token"] and '"income": 1e400' in raw["huge_number"]
    requests = http_requests(CREDIT, draw_public(), None)
    sent = [r for r in requests if "raw" in r and r["id"].startswith("bad-")]
    assert len(sent) == 3 and all("body" not in r for r in sent)


def draw_public() -> Records:
    """Records without the dataset: the public bad requests only (what http_requests needs)."""
    return Records(CREDIT.example, [], [], [], [], public_bad_requests(CREDIT), [])


@pytest.mark.slow  # trains the variant and runs its service
def test_one_wrong_bound_gets_the_same_answers_under_20_seeds(
    tmp_path: Path, credit_csv: Path
) -> None:
    """The real service of the `wrong-bound` variant (age at most 80) and the reference, sent
    the hidden valid records of 20 seeds over HTTP: the variant answers 422 to some of them
    under every seed (so hidden check 3.5 fails alike), the reference to none."""
    from grader.grading.requests import SEEDED
    from grader.probes import http_probe
    from tests import grader_variants as variants
    from tests.support import data_env, free_port, server

    data = CREDIT.load(credit_csv)
    rejected: dict[str, list[int]] = {}
    for name in ("wrong-bound", "reference"):
        folder = variants.build(name, tmp_path)
        subprocess.run(
            [sys.executable, "train.py"],
            cwd=folder,
            env=data_env(),
            check=True,
            capture_output=True,
            timeout=600,
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "uvicorn", "predict:app", "--port", str(port)]
        with server(cmd, folder, f"{url}/ping"):
            for seed in SEEDS:
                records = draw(CREDIT, data, seed).seeded
                requests = [
                    {"id": f"{SEEDED}{i}", "method": "POST", "path": "/predict", "body": r}
                    for i, r in enumerate(records)
                ]
                answers = http_probe.run_requests(url, requests)
                rejected.setdefault(name, []).append(sum(a.get("status") != 200 for a in answers))
    print(f"\nhidden valid records rejected per seed ({len(SEEDS)} seeds): {rejected}")
    assert all(n > 0 for n in rejected["wrong-bound"]), rejected
    assert rejected["reference"] == [0] * len(SEEDS), rejected
