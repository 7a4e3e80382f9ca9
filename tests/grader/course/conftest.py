"""Shared fixtures of the course-scale tests: a real Git server on loopback (`git http-backend`
behind a small threaded HTTP server that speaks CGI to it), repositories built with real commits
at chosen dates, and the test-only switch that lets the grader use plain http on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from grader.batch.course import TEST_ONLY_LOOPBACK

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "LC_ALL": "C",
    "PATH": os.environ["PATH"],
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str, when: datetime | None = None) -> str:
    env = dict(
        GIT_ENV,
        GIT_AUTHOR_NAME="Student",
        GIT_AUTHOR_EMAIL="s@example.org",
        GIT_COMMITTER_NAME="Student",
        GIT_COMMITTER_EMAIL="s@example.org",
    )
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


@dataclass
class GitServer:
    """Bare repositories under `root`, served at http://127.0.0.1:PORT/NAME.git; names under
    private/ answer 401 (as GitHub does for a private or missing repository), moved/ 301."""

    root: Path
    port: int = 0
    work: Path = field(default_factory=Path)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def repo(self, name: str, commits: list[tuple[datetime, Mapping[str, str | bytes]]]) -> Path:
        """A bare repository `name` whose main branch has one commit per (date, files)."""
        bare = self.root / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "-b", "main", str(bare)], env=GIT_ENV, check=True
        )
        for key, value in (
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("http.receivepack", "true"),
        ):
            git(bare, "config", key, value)
        if commits:
            self.push(name, commits)
        return bare

    def push(
        self,
        name: str,
        commits: list[tuple[datetime, Mapping[str, str | bytes]]],
        force: bool = False,
    ) -> list[str]:
        """Commit on a fresh clone (force: a new history) and push; the new commits' hashes."""
        tree = Path(tempfile.mkdtemp(dir=self.work)) / "tree"
        bare = self.root / f"{name}.git"
        if force or not git(bare, "rev-list", "--all"):
            tree.mkdir()
            git(tree, "init", "--quiet", "-b", "main")
        else:
            subprocess.run(
                ["git", "clone", "--quiet", str(bare), str(tree)], env=GIT_ENV, check=True
            )
        shas = []
        for when, files in commits:
            for path, content in files.items():
                target = tree / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    target.write_bytes(content)
                else:
                    target.write_text(content)
            git(tree, "add", "-A")
            git(tree, "commit", "--quiet", "--allow-empty", "-m", "work", when=when)
            shas.append(git(tree, "rev-parse", "HEAD"))
        git(tree, "push", "--quiet", *(["--force"] if force else []), str(bare), "HEAD:main")
        shutil.rmtree(tree.parent)
        return shas


class _Handler(BaseHTTPRequestHandler):
    server_version = "test-git/1"
    root: Path

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/private/"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.startswith("/moved/"):
            self.send_response(301)
            self.send_header("Location", "http://127.0.0.2" + path.removeprefix("/moved"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = dict(
            GIT_ENV,
            GIT_PROJECT_ROOT=str(self.root),
            GIT_HTTP_EXPORT_ALL="1",
            REQUEST_METHOD=self.command,
            PATH_INFO=path,
            QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            REMOTE_ADDR="127.0.0.1",
            GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
            HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""),
        )
        body = self._body() if self.command == "POST" else b""
        env["CONTENT_LENGTH"] = str(len(body))
        proc = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode(errors="replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    root, work = tmp_path / "served", tmp_path / "git-work"
    root.mkdir()
    work.mkdir()
    handler = type("Handler", (_Handler,), {"root": root})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitServer(root, httpd.server_address[1], work)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def loopback_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test-only switch: the grader may use plain http on 127.0.0.1 (the servers here)."""
    monkeypatch.setenv(TEST_ONLY_LOOPBACK, "1")
