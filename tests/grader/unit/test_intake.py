"""A cohort's uploads (grader/intake.py): a folder or a .zip per student, and zips unpacked
safely: caps on files, bytes and depth, nothing written outside the student's folder, no link
ever made, zips inside zips unpacked once more; what cannot be graded stops with the reason.
No student code runs here."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import intake
from tests.support import ROOT


def make_zip(
    path: Path, entries: dict[str, bytes | str], links: dict[str, str] | None = None
) -> Path:
    """A zip with `entries` (name: content; a name ending in / is a folder) and symlink
    entries (name: target), as `zip -y` stores them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in entries.items():
            z.writestr(name, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return path


def test_a_zip_is_unpacked_into_a_folder_of_its_own(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "alice.zip",
        {
            "credit-card-hw/train.py": "print('hi')\n",
            "credit-card-hw/.venv/lib/big.bin": b"x" * 100,
            "__MACOSX/credit-card-hw/._train.py": b"\0\5\26\7",
            "credit-card-hw/data/": "",
        },
    )
    dest = tmp_path / "out" / "alice"
    dest.parent.mkdir()
    assert intake.unpack(archive, dest) == []
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    assert files == ["credit-card-hw", "credit-card-hw/data", "credit-card-hw/train.py"]
    assert (dest / "credit-card-hw" / "train.py").read_text() == "print('hi')\n"


@pytest.mark.parametrize(
    "name", ["../evil.py", "hw/../../evil.py", "/tmp/evil.py", "C:\\evil.py", "..\\evil.py"]
)
def test_no_path_leads_out_of_the_folder(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "a.zip", {"train.py": "", name: "pwned"})
    dest = tmp_path / "box" / "a"
    dest.parent.mkdir()
    with pytest.raises(intake.Refused, match=r"absolute path|leads out"):
        intake.unpack(archive, dest)
    assert not dest.exists(), "a refused zip leaves nothing behind"
    assert not list(tmp_path.rglob("evil.py")) and not Path("/tmp/evil.py").exists()


def test_links_are_never_made(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "a.zip",
        {"hw/train.py": ""},
        links={"hw/secret": "/etc/passwd", "hw/up": "../../"},
    )
    dest = tmp_path / "a"
    notes = intake.unpack(archive, dest)
    assert not [p for p in dest.rglob("*") if p.is_symlink()]
    assert not (dest / "hw" / "secret").exists() and not (dest / "hw" / "up").exists()
    assert notes and "hw/secret" in notes[0] and "links are never unpacked" in notes[0]


def test_a_zip_bomb_stops_at_the_cap_whatever_its_headers_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "MAX_BYTES", 1024**2)
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (8 * 1024**2)})
    assert archive.stat().st_size < 100_000  # 8 MB of zeros compress to a few kB
    with pytest.raises(intake.Refused, match="zip bomb"):
        intake.unpack(archive, tmp_path / "bomb")
    assert not (tmp_path / "bomb").exists()
    # The headers claim 10 bytes: what is written is counted, and the lie is refused too.
    data = bytearray(archive.read_bytes())
    info = zipfile.ZipFile(archive).getinfo("zeros.bin")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # uncompressed size
    data[info.header_offset + 22 : info.header_offset + 26] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    dest = tmp_path / "bomb"
    with pytest.raises(intake.Refused):
        intake.unpack(archive, dest)
    assert not dest.exists()


def test_caps_on_files_and_depth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "MAX_FILES", 10)
    many = make_zip(tmp_path / "many.zip", {f"f{i}.txt": "" for i in range(11)})
    with pytest.raises(intake.Refused, match="11 entries"):
        intake.unpack(many, tmp_path / "many")
    deep = make_zip(tmp_path / "deep.zip", {"/".join(["d"] * 40) + "/x.py": ""})
    with pytest.raises(intake.Refused, match="deep"):
        intake.unpack(deep, tmp_path / "deep")


def test_a_name_given_twice_or_encrypted_entries_are_refused(tmp_path: Path) -> None:
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as z, pytest.warns(UserWarning, match="Duplicate"):
        z.writestr("train.py", "a")
        z.writestr("train.py", "b")
    with pytest.raises(intake.Refused, match="twice"):
        intake.unpack(twice, tmp_path / "twice")
    locked = make_zip(tmp_path / "locked.zip", {"train.py": "secret"})
    data = bytearray(locked.read_bytes())  # zipfile writes no encryption: set its flag
    data[6] |= 0x1  # the local header's general purpose flags
    data[data.rfind(b"PK\x01\x02") + 8] |= 0x1  # the central directory's
    locked.write_bytes(bytes(data))
    with pytest.raises(intake.Refused, match="encrypted"):
        intake.unpack(locked, tmp_path / "locked")
    (tmp_path / "not.zip").write_text("not a zip")
    with pytest.raises(intake.Refused, match="not a readable zip"):
        intake.unpack(tmp_path / "not.zip", tmp_path / "not")


def test_a_zip_inside_the_zip_is_unpacked_once_more(tmp_path: Path) -> None:
    inner = make_zip(tmp_path / "inner.zip", {"credit-card-hw/train.py": "ok\n"})
    outer = make_zip(
        tmp_path / "outer.zip", {"hw.zip": inner.read_bytes(), "__MACOSX/._hw.zip": b"\0"}
    )
    dest = tmp_path / "student"
    notes = intake.unpack(outer, dest)
    assert (dest / "credit-card-hw" / "train.py").read_text() == "ok\n"
    assert not (dest / "hw.zip").exists() and any("hw.zip" in n for n in notes)
    deeper = make_zip(tmp_path / "deeper.zip", {"outer.zip": outer.read_bytes()})
    with pytest.raises(intake.Refused, match="zips inside zips"):
        intake.unpack(deeper, tmp_path / "deeper")
    # a zip beside other files is the student's file, not a wrapper: left as it is
    beside = make_zip(tmp_path / "beside.zip", {"train.py": "", "data.zip": inner.read_bytes()})
    intake.unpack(beside, tmp_path / "beside")
    assert (tmp_path / "beside" / "data.zip").is_file()


def test_a_cohort_of_folders_and_zips(tmp_path: Path) -> None:
    """What an LMS download holds: folders, zips, a Moodle folder holding one zip, a student
    whose name starts with `_`; archive debris and hidden folders are nobody."""
    cohort = tmp_path / "cohort"
    for name in ("bob", "_carol", "__MACOSX", ".git"):
        (cohort / name).mkdir(parents=True)
        (cohort / name / "train.py").write_text("")
    make_zip(cohort / "alice.zip", {"train.py": ""})
    (cohort / "dan_12345_assignsubmission_file_").mkdir()
    make_zip(cohort / "dan_12345_assignsubmission_file_" / "hw.zip", {"train.py": ""})
    (cohort / "grades.csv").write_text("")
    found = intake.cohort(cohort)
    assert [(s.name, s.archive) for s in found.students] == [
        ("_carol", False),
        ("alice", True),
        ("bob", False),
        ("dan_12345_assignsubmission_file_", True),
    ]
    assert found.ignored == ["grades.csv"]
    unpacked = tmp_path / "out" / "uploads"
    path, _ = intake.prepare(found.students[1], unpacked)
    assert path == unpacked / "alice" and (path / "train.py").is_file()
    path, _ = intake.prepare(found.students[1], unpacked)  # again (a resumed run): afresh
    assert sorted(p.name for p in path.iterdir()) == ["train.py"]


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"alice.zip": True, "alice/": True}, "two uploads for 'alice'"),
        ({"bob.tar.gz": True, "carol/": True}, "only .zip files are unpacked"),
        ({"notes.txt": True}, "holds no student upload"),
        ({}, "holds no student upload"),
    ],
)
def test_what_cannot_be_graded_stops_the_run(
    tmp_path: Path, files: dict[str, bool], problem: str
) -> None:
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for name in files:
        if name.endswith("/"):
            (cohort / name).mkdir()
        elif name.endswith(".zip"):
            make_zip(cohort / name, {"train.py": ""})
        else:
            (cohort / name).write_text("")
    with pytest.raises(intake.IntakeProblem, match=problem):
        intake.cohort(cohort)


def test_grade_batch_stops_with_the_reason(tmp_path: Path) -> None:
    """A folder of .rar files: the run stops at once with the reason (no "0 students graded",
    no empty gradebook, no exit 0)."""
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "alice.rar").write_bytes(b"Rar!")
    argv = [sys.executable, "-m", "grader.cli", "batch", str(cohort)]
    argv += ["--out", str(tmp_path / "out"), "--engine", "none", "--no-sandbox"]
    run = subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "alice.rar: only .zip files are unpacked" in run.stderr
    assert not (tmp_path / "out" / "gradebook.csv").exists()


def test_grade_takes_a_zip_or_says_why_not(tmp_path: Path) -> None:
    """`grade upload.zip` unpacks first; a zip it refuses, or a file that is no zip, is a usage
    error with the reason (nothing graded)."""
    evil = make_zip(tmp_path / "evil.zip", {"../x.py": ""})
    (tmp_path / "notes.txt").write_text("")
    for path, said in (
        (evil, "was not unpacked: it holds a path that leads out"),
        (tmp_path / "notes.txt", "is not a folder or a .zip"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "grader.cli", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 2 and said in run.stderr, run.stderr
    assert not os.path.exists(tmp_path.parent / "x.py")


def test_grade_grades_the_folder_inside_a_zip(tmp_path: Path) -> None:
    """`grade upload.zip`: unpacked, the folder with train.py found in it, and said."""
    import json

    from tests.grader_helpers import valid_gradescope
    from tests.support import data_env

    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((ROOT / "solutions").iterdir()):
            if path.is_file() and path.suffix != ".bin":
                z.write(path, f"credit-card-hw/{path.name}")
        z.writestr("__MACOSX/credit-card-hw/._train.py", b"\0")
    out = tmp_path / "results.json"
    argv = [sys.executable, "-m", "grader.cli", str(archive), "--spec", "credit", "--only", "6"]
    argv += ["--engine", "none", "--json", str(out)]
    run = subprocess.run(
        argv,
        cwd=ROOT,
        env=data_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(out.read_text())
    valid_gradescope(results)
    assert results["extra_data"]["submission"] == "credit-card-hw"
    assert results["score"] == results["extra_data"]["max_score"] == 8
    assert str(tmp_path) not in out.read_text()
