"""--live: only https to an app on fly.dev, never a name that resolves to a private or loopback
address (tested with the test-only switch and a resolver passed in: there is no DNS server
here to answer for fly.dev), never a redirect off the app's name; the probe is pinned to the
checked addresses; refused and missing URLs fail the live checks with the reason; end to end,
every student's answered URL is probed with stage 7's checks."""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from grader.batch.course import TEST_ONLY_LOOPBACK, live, pinned
from grader.batch.course.addresses import Refused
from grader.results.report import FAILED, SKIPPED, CheckResult, Report
from tests.support import ROOT, data_env, free_port, server, uvicorn_cmd

PUBLIC = lambda host, port: ["66.241.124.10"]  # noqa: E731 - fly.io's kind of address


@pytest.mark.parametrize(
    "url",
    [
        "http://app.fly.dev",
        "https://app.fly.dev.evil.com",
        "https://evil.com/?x=app.fly.dev",
        "https://fly.dev",
        "https://a.b.fly.dev",
        "https://user:pw@app.fly.dev",
        "https://app.fly.dev:8443",
        "https://app.fly.dev/predict",
        "https://-app.fly.dev",
        "http://127.0.0.1:9696",
        "https://10.0.0.1",
        "file:///etc/passwd",
    ],
)
def test_urls_off_the_platform_are_refused(url: str) -> None:
    with pytest.raises(Refused):
        live.check_url(url, PUBLIC)


def test_an_app_resolving_to_a_private_address_is_refused() -> None:
    target = live.check_url("https://credit-card.fly.dev/", PUBLIC)
    assert (target.url, target.port, target.addresses) == (
        "https://credit-card.fly.dev",
        443,
        ("66.241.124.10",),
    )
    for inside in (["10.1.2.3"], ["127.0.0.1"], ["66.241.124.10", "169.254.169.254"], ["fdaa::3"]):
        with pytest.raises(Refused, match="private, loopback or reserved"):
            live.check_url("https://credit-card.fly.dev", lambda h, p, a=inside: a)
    with pytest.raises(Refused):  # loopback only with the test-only switch
        live.check_url("http://127.0.0.1:9", lambda h, p: ["127.0.0.1"])
    assert live.check_url("http://127.0.0.1:9", lambda h, p: ["127.0.0.1"], allow_loopback=True)


def test_the_pin_answers_the_checked_addresses_only() -> None:
    original = socket.getaddrinfo
    try:
        pinned.pin("app.fly.dev", ["127.0.0.1"])
        assert {i[4][0] for i in socket.getaddrinfo("APP.fly.dev.", 443)} == {"127.0.0.1"}
        assert socket.getaddrinfo("localhost", 80), "other names resolve as before"
    finally:
        socket.getaddrinfo = original


@pytest.fixture
def redirecting() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_redirect_off_the_app_is_refused(redirecting: str) -> None:
    target = live.check_url(redirecting, lambda h, p: ["127.0.0.1"], allow_loopback=True)
    assert "redirects to 169.254.169.254" in live.preflight(target)


def test_answers_and_refusals(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "train.py").write_text("")
    (tmp_path / "a" / "answers.toml").write_text('[flyio]\nurl = "https://evil.example"\n')
    plan = live.plan(tmp_path / "a", PUBLIC)
    assert plan.target is None and "not an app on fly.dev" in plan.refusal
    (tmp_path / "a" / "answers.toml").write_text('[flyio]\nurl = ""\n')
    assert "no [flyio] url" in live.plan(tmp_path / "a", PUBLIC).refusal
    (tmp_path / "a" / "answers.toml").unlink()
    (tmp_path / "a" / "answers.toml").symlink_to("/etc/hostname")
    assert "no answers.toml" in live.plan(tmp_path / "a", PUBLIC).refusal
    checks = [
        CheckResult("7.4", "live /ping", 7, 1, SKIPPED, "no --url given: not probed"),
        CheckResult("7.1", "fly.toml", 7, 2, SKIPPED, "no fly.toml"),
    ]
    report = live.refuse(Report("x", "credit", 7, 0, "t", checks), "it is elsewhere")
    assert report.checks[0].status == FAILED and "it is elsewhere" in report.checks[0].output
    assert report.checks[1].status == SKIPPED


@pytest.mark.slow
def test_batch_live_probes_every_answered_url(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    ignore = shutil.ignore_patterns("*.bin", ".venv", "__pycache__")
    for name in ("deployed", "elsewhere"):
        shutil.copytree(ROOT / "solutions", cohort / name, ignore=ignore)
    service = shutil.copytree(ROOT / "solutions", tmp_path / "service", ignore=ignore)
    subprocess.run(
        [sys.executable, "train.py"],
        cwd=service,
        env=data_env(),
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = free_port()
    answers = (ROOT / "solutions" / "answers.toml").read_text()
    official = "https://credit-card-approval-solution.fly.dev"
    (cohort / "deployed" / "answers.toml").write_text(
        answers.replace(official, f"http://127.0.0.1:{port}")
    )
    (cohort / "elsewhere" / "answers.toml").write_text(
        answers.replace(official, "https://grades.university.example")
    )
    out = tmp_path / "out"
    env = {**data_env(), TEST_ONLY_LOOPBACK: "1", "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    with server(uvicorn_cmd(port), service, f"http://127.0.0.1:{port}/ping", env=env):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "grader.cli",
                "batch",
                str(cohort),
                "--out",
                str(out),
                "--live",
                "--only",
                "7",
                "--engine",
                "none",
                "--jobs",
                "2",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    reports = {
        p.parent.name: Report.from_json(__import__("json").loads(p.read_text()))
        for p in out.glob("students/*/report.json")
    }
    live_checks = ("7.4", "7.5", "7.6")
    deployed = {c.id: c for c in reports["deployed"].checks}
    assert all(deployed[c].status == "passed" for c in live_checks), deployed
    elsewhere = {c.id: c for c in reports["elsewhere"].checks}
    assert all(elsewhere[c].status == FAILED for c in live_checks)
    assert "not an app on fly.dev" in elsewhere["7.4"].output
    report = (out / "report.md").read_text()
    assert "## Live deployments" in report and "| elsewhere |" in report
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        assert len(list(csv.DictReader(f))) == 2
