"""A cohort of realistic homework submissions (tests/grader/fixtures), graded as an instructor
grades it: `grade batch` over one folder or .zip per student (two at a time, `--engine none`).

Correct work in another valid form keeps its points; each mistake costs once, at the check that
names it, and the feedback names the cause in the homework's own terms, once; the run's maximum
is the same for every student and is what the reference scores, whatever else the cohort holds
(an empty upload, the blank template); the severe mistakes keep at most 85 %; an empty upload
and another assignment's work get a verdict at the top of their feedback and a row under "to
look at"; the report's most common failures are causes, never cascades; every results.json is
Gradescope's documented format."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests import grader_variants as variants
from tests.grader_helpers import failed, lost, max_score, status, valid_gradescope
from tests.support import ROOT, data_env

pytestmark = pytest.mark.slow

FULL_MARKS = ("reference", "workshop-pipeline", "sklearn-1.8", "sklearn-1.8-unpickled")
ZIPPED = "zipped-reference"  # the reference as an LMS hands it over: a .zip holding its folder
REFUSED = "evil-zip"  # a .zip with a path out of its folder: not unpacked, said so

# variant: (checks that must fail, points it costs, words its feedback must contain)
CAUSED_BY_3_1 = {"3.2", "3.3", "3.4", "3.5", "3.50", "3.51", "7.3"}
CAUSED_BY_3_1 |= {f"4.{n}" for n in range(1, 10)} | {"4.50"}
CASCADE = {check: ["not checked because 3.1 failed"] for check in CAUSED_BY_3_1}
MISTAKES: dict[str, tuple[set[str], float, dict[str, list[str]]]] = {
    "renamed-field": ({"3.3", "4.8"}, 14, {"3.3": ["'card_probability'", "'probability'"]}),
    "leaking-columns": (
        {"1.4", "1.50"},
        14,
        {"1.4": ["`share`", "`expenditure`", "leak"], "1.50": ["suspiciously high"]},
    ),
    "all-rows": ({"1.4"}, 13, {"1.4": ["all rows", "test rows"]}),
    "hard-coded": ({"3.4", "3.5"}, 3, {"3.4": ["every one of", "does not depend on the request"]}),
    "workshop-offline": ({"1.1"}, 2, {"1.1": ["without network"]}),
    "missing-lock": (
        {"5.1", "5.2", "5.51"},
        4,
        {"5.1": ["uv init --bare --no-workspace"], "5.2": ["not checked because 5.1 failed"]},
    ),
    "missing-ping": ({"3.2"}, 1, {"3.2": ["@app.get('/ping')"]}),
    "lax-numbers": ({"4.6"}, 1, {"4.6": ["Infinity", "--- last server output ---"]}),
    "numpy-bool": (
        {"3.3", "3.4", "3.5", "3.50", "3.51", "4.8"},
        19,
        {
            "3.3": ["HTTP 500", "convert with float() and bool()", "--- last server output ---"],
            "3.4": ["not checked because 3.3 failed"],
            "3.50": ["not checked because 3.3 failed"],
        },
    ),
    "wrong-answers": (
        {"1.52", "4.50"},
        2,
        {"1.52": ["you answered 0.5"], "4.50": ["you answered 400"]},
    ),
    "wrong-bound": ({"3.5"}, 1, {"3.5": ["HTTP 422", "'age'"]}),
    "import-crash": (
        {"3.1", *CAUSED_BY_3_1},
        32,
        {"3.1": ["ModuleNotFoundError: No module named 'sklearn.pipline'"], **CASCADE},
    ),
    "endless-loop": (
        {"3.1", *CAUSED_BY_3_1},
        32,
        {"3.1": ["did not listen on port 9696"], **CASCADE},
    ),
}
# variant: (the verdict's words, the most it may score, as a share of the maximum)
VERDICTS = {
    "empty-upload": ("the upload is empty", 0.0),
    "churn-project": ("this looks like the churn service of the lessons", 0.25),
}
BLANK = "blank-template"  # the starter as handed out: at most 10 %
# The feedback of each, in lines, at most (before: 326 for the empty upload, 297 for the import
# crash, 299 for the blank template, 255 for the churn project).
FEEDBACK_LINES = {"empty-upload": 25, "import-crash": 50, "endless-loop": 50, BLANK: 90}
FEEDBACK_MOST = 100


def test_every_cohort_variant_has_an_expectation() -> None:
    expected = set(FULL_MARKS) | set(MISTAKES) | set(VERDICTS) | {BLANK}
    assert set(variants.COHORT) == expected
    assert len(variants.COHORT) + 2 >= 12, "a realistic cohort: at least 12 students"


def zip_folder(folder: Path, archive: Path, inside: str) -> None:
    """`folder` zipped as macOS's Finder zips it: under `inside/`, with __MACOSX/ beside."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, f"{inside}/{path.relative_to(folder).as_posix()}")
        z.writestr(f"__MACOSX/{inside}/._train.py", b"\0\5\26\7")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cohort (every cohort variant, the reference zipped, a zip that must be refused),
    graded by `grade batch --jobs 2 --engine none`: its output folder."""
    root = tmp_path_factory.mktemp("fairness")
    cohort = root / "cohort"
    cohort.mkdir()
    for name in variants.COHORT:
        variants.build(name, cohort)
    zip_folder(cohort / "reference", cohort / f"{ZIPPED}.zip", "credit-card-hw")
    with zipfile.ZipFile(cohort / f"{REFUSED}.zip", "w") as z:
        z.writestr("train.py", "")
        z.writestr("../escaped.py", "print('outside')")
    out = root / "out"
    options = ["--spec", "credit", "--engine", "none", "--jobs", "2", "--start-seconds", "30"]
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(cohort), *options, "--out", str(out)]
    run = subprocess.run(
        cmd, cwd=ROOT, env=data_env(), capture_output=True, text=True, timeout=3600, check=False
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert not list(root.rglob("escaped.py")), "the refused zip wrote outside its folder"
    shutil.rmtree(out / "uploads", ignore_errors=True)  # the unpacked zips: not needed now
    return out


def results_of(out: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((out / "students" / name / "results.json").read_text()))


def feedback_of(out: Path, name: str) -> str:
    return (out / "students" / name / "feedback.md").read_text()


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        return {row["folder"]: row for row in csv.DictReader(f)}


@pytest.mark.parametrize("variant", [*FULL_MARKS, ZIPPED])
def test_correct_work_keeps_full_marks(variant: str, out: Path) -> None:
    results = results_of(out, variant)
    assert not failed(results), failed(results)
    assert results["score"] == max_score(results) > 0
    assert float(gradebook(out)[variant]["total"]) == float(gradebook(out)[variant]["max"])


@pytest.mark.parametrize("variant", sorted(MISTAKES))
def test_each_mistake_costs_once_and_is_named(variant: str, out: Path) -> None:
    checks, points, words = MISTAKES[variant]
    results = results_of(out, variant)
    problems = failed(results)
    assert set(problems) == checks, problems
    assert lost(results) == points
    for check, needed in words.items():
        for word in needed:
            assert word in problems[check], (check, word, problems[check])


def test_the_runs_maximum_is_the_same_for_everyone_and_the_references(out: Path) -> None:
    """Before: one blank answer (6.50, failed when answers.toml is blank, skipped otherwise)
    made the maximum 62 for everyone while the reference scored 61."""
    book = gradebook(out)
    assert len(book) == len(variants.COHORT) + 2
    maxima = {row["max"] for row in book.values()}
    assert maxima == {book["reference"]["total"]}, maxima
    for name in book:
        if name != REFUSED:
            assert max_score(results_of(out, name)) == float(book["reference"]["max"]), name
    report = (out / "report.md").read_text()
    full = re.search(r"(\d+) with full marks", report)
    assert full and int(full[1]) == len(FULL_MARKS) + 1, report[:800]


@pytest.mark.parametrize("variant", ["leaking-columns", "renamed-field"])
def test_a_severe_mistake_keeps_at_most_85_percent(variant: str, out: Path) -> None:
    results = results_of(out, variant)
    assert results["score"] <= 0.85 * max_score(results), results["score"]


@pytest.mark.parametrize("variant", sorted(VERDICTS))
def test_an_upload_that_is_not_the_homework_says_so_first(variant: str, out: Path) -> None:
    words, most = VERDICTS[variant]
    text = feedback_of(out, variant)
    first = [line for line in text.splitlines() if line.strip()][1]  # after the title
    assert words in first.lower(), first
    results = results_of(out, variant)
    assert words in results["output"].lower() and words in results["extra_data"]["verdict"]
    assert results["score"] <= most * max_score(results)
    assert f"- {variant}: {words}" in (out / "report.md").read_text().lower()


def test_a_zip_that_climbs_out_is_refused_with_the_reason(out: Path) -> None:
    row = gradebook(out)[REFUSED]
    assert row["status"] == "upload refused" and row["total"] == "0"
    text = feedback_of(out, REFUSED)
    assert "was not unpacked: it holds a path that leads out of its folder" in text
    assert (
        f"- {REFUSED}: your upload {REFUSED}.zip was not unpacked"
        in (out / "report.md").read_text()
    )


def test_the_blank_template_scores_almost_nothing(out: Path) -> None:
    results = results_of(out, BLANK)
    assert results["score"] <= 0.10 * max_score(results)
    assert "is not answered" in failed(results)["1.50"]


def test_each_cause_is_reported_once(out: Path) -> None:
    """The import crash: its traceback once, under 3.1; every check it stops says so in one
    line. No feedback grows with the number of checks a cause stops."""
    text = feedback_of(out, "import-crash")
    assert text.count("ModuleNotFoundError") == 1, text
    assert text.count("not checked because 3.1 failed") == 1
    for name, most in FEEDBACK_LINES.items():
        lines = len(feedback_of(out, name).splitlines())
        assert lines <= most, (name, lines)
    for folder in (out / "students").iterdir():
        lines = len((folder / "feedback.md").read_text().splitlines())
        assert lines <= FEEDBACK_MOST, (folder.name, lines)


def test_the_most_common_failures_are_causes(out: Path) -> None:
    report = (out / "report.md").read_text()
    failures = report.split("## Most common failures", 1)[1]
    assert "| students |" in failures, failures
    assert "not checked because" not in failures and "not graded" not in failures


def test_every_results_json_is_gradescopes_format(out: Path) -> None:
    for folder in (out / "students").iterdir():
        results = json.loads((folder / "results.json").read_text())
        valid_gradescope(results)
        assert all(status(t) in ("passed", "failed", "skipped") for t in results["tests"])
