"""Intake from Git: URLs a student could abuse are refused before git runs; real repositories
served over HTTP by a local `git http-backend` are cloned within limits and checked out at the
commit the deadline selects (before/after the deadline, a force-push, a named commit, a huge
file, a missing, private, empty or moved repository)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.batch.course import repos
from grader.batch.course.addresses import Refused, is_public, public_addresses
from grader.batch.course.gitrun import Limits
from grader.batch.course.intake import folder_name, parse_time, read_form
from tests.grader.course.conftest import GitServer

DEADLINE = datetime(2027, 1, 15, 23, 59, 59, tzinfo=UTC)
BEFORE, AFTER = DEADLINE - timedelta(days=2), DEADLINE + timedelta(hours=3)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "/home/teacher/solutions",
        "../solutions",
        "ext::sh -c touch% /tmp/x",
        "--upload-pack=touch /tmp/x",
        "ssh://git@github.com/a/b.git",
        "git@github.com:a/b.git",
        "https://user:token@github.com/a/b.git",
        "https://github.com/",
        "http://github.com/a/b",
        "https://github.com/a/b?x=1",
        "https://localhost/a/b",
        "https://gith ub.com/a",
        "https://github.com/a\n/b",
        "fd::17",
        "HTTPS::github.com/a",
    ],
)
def test_urls_a_student_could_abuse_are_refused(url: str) -> None:
    with pytest.raises(Refused):
        repos.check_url(url)


def test_https_of_a_host_is_accepted_and_loopback_http_only_with_the_switch() -> None:
    remote = repos.check_url(" https://github.com/ana/credit-card-hw ")
    assert (remote.url, remote.host, remote.port) == (
        "https://github.com/ana/credit-card-hw",
        "github.com",
        443,
    )
    with pytest.raises(Refused):
        repos.check_url("http://127.0.0.1:8080/a.git")
    assert repos.check_url("http://127.0.0.1:8080/a.git", allow_loopback=True).port == 8080


def test_names_resolving_to_private_addresses_are_refused() -> None:
    for address in (
        "10.0.0.5",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ):
        assert not is_public(address), address
    assert is_public("140.82.121.4") and is_public("2a09:8280:1::1")
    with pytest.raises(Refused, match=r"10\.1\.2\.3"):
        public_addresses("git.example.org", 443, lambda h, p: ["140.82.121.4", "10.1.2.3"])
    assert public_addresses("x", 1, lambda h, p: ["127.0.0.1"], allow_loopback=True)


def test_git_runs_without_the_instructors_config_credentials_or_hooks(tmp_path: Path) -> None:
    remote = repos.check_url("https://github.com/a/b")
    config = repos.git_config(remote, ["140.82.121.4"])
    pairs = dict(zip(config[1::2], [None] * len(config), strict=False))
    for setting in (
        "protocol.allow=never",
        "protocol.https.allow=always",
        "credential.helper=",
        "core.hooksPath=/dev/null",
        "core.symlinks=false",
        "http.followRedirects=false",
        "http.curloptResolve=github.com:443:140.82.121.4",
        "filter.lfs.smudge=",
    ):
        assert setting in pairs, setting
    env = repos.git_env(tmp_path, remote)
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_LFS_SKIP_SMUDGE"] == "1"
    assert not any(k.endswith("_PROXY") or k == "SSH_AUTH_SOCK" for k in env)


def test_form_columns_duplicates_and_bad_rows(tmp_path: Path) -> None:
    form = tmp_path / "form.csv"
    form.write_text(
        "\ufeffTimestamp,Email Address,GitHub repository,Commit hash,Folder\n"
        "2027-01-14T10:00:00Z,ana@uni.edu,https://github.com/ana/hw,,\n"
        "2027-01-15T09:00:00Z,ana@uni.edu,https://github.com/ana/hw2,,homework\n"
        ",bo/../x,https://github.com/bo/hw,ABC123f,\n"
        "2027-01-14T10:00:00Z,,https://github.com/nobody/hw,,\n"
        "yesterday,cy,https://github.com/cy/hw,,\n",
        encoding="utf-8",
    )
    result = read_form(form)
    by = {s.folder: s for s in result.submissions}
    assert sorted(by) == ["ana@uni.edu", "bo_.._x", "cy"]
    assert by["ana@uni.edu"].url.endswith("hw2") and by["ana@uni.edu"].subdir == "homework"
    assert by["bo_.._x"].commit == "abc123f"
    assert any("more than once" in p for p in result.problems)
    assert any("line 5: no student" in p for p in result.problems)
    assert any("cy" in p and "ISO 8601" in p for p in result.problems)
    assert folder_name("..hidden") == "hidden" and folder_name("_x") == "x"
    (tmp_path / "bad.csv").write_text("name,mail\n")
    with pytest.raises(ValueError, match="no column for student and repository"):
        read_form(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="time zone"):
        parse_time("2027-01-15T23:59:59")


def fetch(
    server: GitServer,
    name: str,
    dest: Path,
    commit: str = "",
    subdir: str = "",
    limits: Limits | None = None,
) -> repos.Checkout:
    dest.mkdir(parents=True, exist_ok=True)
    return repos.fetch(
        server.url(name),
        commit,
        subdir,
        DEADLINE,
        dest / name.replace("/", "_"),
        limits or Limits(),
        allow_loopback=True,
    )


def test_the_last_commit_before_the_deadline_is_checked_out(
    git_server: GitServer, tmp_path: Path
) -> None:
    git_server.repo(
        "late",
        [
            (BEFORE, {"train.py": "v1\n", "notes/a.txt": "x"}),
            (AFTER, {"train.py": "v2 after the deadline\n"}),
        ],
    )
    got = fetch(git_server, "late", tmp_path / "out")
    assert got.reason == "" and got.path is not None
    assert (got.path / "train.py").read_text() == "v1\n"
    assert got.committed_at == BEFORE and len(got.commit) == 40
    assert not (got.path / ".git").exists(), "the graded folder holds no repository"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["late"], "no clone debris left"


def test_force_push_named_commit_and_folder(git_server: GitServer, tmp_path: Path) -> None:
    old = git_server.repo("forced", [])
    first = git_server.push("forced", [(BEFORE, {"train.py": "original\n"})])
    git_server.push(
        "forced", [(BEFORE + timedelta(hours=1), {"hw/train.py": "rewritten\n"})], force=True
    )
    assert old.is_dir()
    got = fetch(git_server, "forced", tmp_path / "a", subdir="hw")
    assert got.path is not None and (got.path / "train.py").read_text() == "rewritten\n"
    gone = fetch(git_server, "forced", tmp_path / "b", commit=first[0])
    assert "not in the repository" in gone.reason or gone.path is not None
    named = git_server.push("forced", [(AFTER, {"hw/train.py": "late\n"})])
    late = fetch(git_server, "forced", tmp_path / "c", commit=named[0])
    assert "after the deadline" in late.reason
    missing = fetch(git_server, "forced", tmp_path / "d", subdir="../../etc")
    assert "not a plain relative path" in missing.reason


def test_missing_private_empty_moved_and_no_commit_in_time(
    git_server: GitServer, tmp_path: Path
) -> None:
    git_server.repo("empty", [])
    git_server.repo("private/secret", [(BEFORE, {"train.py": "x"})])
    git_server.repo("future", [(AFTER, {"train.py": "x"})])
    reasons = {
        name: fetch(git_server, name, tmp_path / "out").reason
        for name in ("missing", "private/secret", "empty", "future", "moved/empty")
    }
    assert "404" in reasons["missing"], reasons
    assert "private" in reasons["private/secret"], reasons
    assert "empty" in reasons["empty"], reasons
    assert "no commit at or before the deadline" in reasons["future"], reasons
    assert "redirects" in reasons["moved/empty"], reasons
    assert list((tmp_path / "out").iterdir()) == [], "nothing left of failed clones"


@pytest.mark.slow
def test_a_huge_file_is_killed_at_the_size_limit(git_server: GitServer, tmp_path: Path) -> None:
    huge = os.urandom(12 * 10**6)
    git_server.repo("huge", [(BEFORE, {"train.py": "x", "data.bin": huge})])
    got = fetch(git_server, "huge", tmp_path / "out", limits=Limits(max_bytes=5 * 10**6))
    assert "larger than 5 MB" in got.reason and got.path is None
    git_server.repo("huge-later", [(BEFORE, {"train.py": "ok\n"}), (AFTER, {"data.bin": huge})])
    fine = fetch(git_server, "huge-later", tmp_path / "out", limits=Limits(max_bytes=5 * 10**6))
    assert fine.reason == "", "a huge file after the deadline is never fetched (blob-less clone)"
