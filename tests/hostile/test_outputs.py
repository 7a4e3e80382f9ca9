"""What a hostile cohort can put in the instructor's outputs: folder names and program output
made to be a spreadsheet formula, terminal escapes, rich markup or a Markdown fence breaker; and
the seed, which nothing a student receives may show. One `grade batch` run (stage 1 only) with
an instructor's seed; then every file for the students, the gradebook and the terminal output
are read back."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, data_env, where_no_sandbox

SEED = "987654321"
FORMULA = '=HYPERLINK("attacker.example","click")+1'
ESCAPES = "\x1b[31mred\x1b[0m\x1b]0;title\x07"
MARKUP = "[reverse]markup[blink]"  # no "/" in a folder name
LOUD_TRAIN = (
    "import sys\n"
    "sys.stderr.write('\\x1b[2J\\x1b]0;pwned\\x07boom \\u202eevil [red]x[/red]\\n"
    "```\\n# not a heading\\n')\n"
    "raise SystemExit(3)\n"
)
BAD = ("\x1b", "\x07", "\u202e")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("hostile-outputs")
    cohort, out = root / "cohort", root / "out"
    for name in (FORMULA, ESCAPES, MARKUP, "loud"):
        (cohort / name).mkdir(parents=True)
        (cohort / name / "train.py").write_text(LOUD_TRAIN if name == "loud" else "1/0\n")
    env = {k: v for k, v in data_env().items() if k not in ("FORCE_COLOR", "TERM")}
    run = subprocess.run(
        [sys.executable, "-m", "grader.cli", "batch", str(cohort), "--out", str(out),
         *where_no_sandbox(["--spec", "credit", "--only", "1", "--engine", "none", "--seed",
                            SEED, "--jobs", "2"], root)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return cohort, out, run.stdout + run.stderr


def student_files(out: Path) -> list[Path]:
    return sorted(p for p in (out / "students").rglob("*") if p.name in ("feedback.md",
                  "results.json"))  # fmt: skip


@pytest.mark.slow
def test_gradebook_cells_are_not_formulas(graded: tuple[Path, Path, str]) -> None:
    _, out, _ = graded
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    cells = [cell for row in rows[1:] for cell in row[:2]]
    assert "'" + FORMULA in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert not any(bad in cell for cell in cells for bad in BAD)


@pytest.mark.slow
def test_terminal_gets_no_escapes_and_no_markup(graded: tuple[Path, Path, str]) -> None:
    _, _, terminal = graded
    assert not any(bad in terminal for bad in BAD), "escapes reached the instructor's terminal"
    assert f"{MARKUP}: 0 /" in terminal, "a name's rich markup was interpreted, not shown"
    assert "red: 0 /" in terminal


@pytest.mark.slow
def test_student_files_are_clean(graded: tuple[Path, Path, str]) -> None:
    cohort, out, _ = graded
    files = student_files(out)
    assert len(files) == 8
    for path in files:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else None
        shown = json.dumps(data, ensure_ascii=False) if data is not None else text
        assert not any(bad in shown for bad in BAD), path
        assert str(cohort) not in shown and str(ROOT) not in shown, f"{path}: a grader path"
    loud = (out / "students" / "loud" / "feedback.md").read_text()
    assert "boom" in loud, "the output of train.py should reach the feedback"
    assert "````text" in loud, "a fence longer than the ``` the output holds"


@pytest.mark.slow
def test_the_seed_is_in_nothing_students_see(graded: tuple[Path, Path, str]) -> None:
    _, out, terminal = graded
    assert SEED not in terminal
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json", ".csv"):
            assert SEED not in path.read_text(encoding="utf-8-sig"), path


@pytest.mark.slow
def test_summary_in_the_terminal_is_clean(graded: tuple[Path, Path, str]) -> None:
    cohort, _, _ = graded
    run = subprocess.run(
        [sys.executable, "-m", "grader.cli", str(cohort / "loud"),
         *where_no_sandbox(["--spec", "credit", "--only", "1", "--engine", "none", "--seed",
                            SEED], cohort.parent)],
        cwd=ROOT, env=data_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "boom" in run.stdout and "FAIL" in run.stdout, run.stdout + run.stderr
    assert not any(bad in run.stdout for bad in BAD)
    assert SEED not in run.stdout
