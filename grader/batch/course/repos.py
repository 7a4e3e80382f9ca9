"""Clone a student's repository safely and check out the commit to grade.

The URL is the student's: it may point at the grading machine, the instructor's network, a
local path, or smuggle an option or a transport (`ext::`, `file://`, `--upload-pack=…`). Only
`https://HOST/…` is accepted (plain http on loopback only under the test-only switch), the
host must resolve to public addresses, and git is pinned to them (`http.curloptResolve`) with
redirects off. Git runs with an empty HOME and no system or global config, no credential
helper or prompt, no hooks, no submodules, no LFS, symlinks checked out as plain files, a
blob-less partial clone (only the graded commit's files are fetched), and is killed past a
size or a time limit. The commit is the one the form names, else the last commit of the
default branch (first-parent history) committed at or before the cut-off. Commit times are
set by the student's machine: `--late-clock form` uses the form's own timestamps instead.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from grader.batch.course.addresses import (
    LOOPBACK_NAMES,
    Refused,
    Resolver,
    public_addresses,
    system_resolver,
)
from grader.batch.course.gitrun import Git, LimitExceeded, Limits
from grader.results.render import clean_name

HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
SHA = re.compile(r"[0-9a-f]{7,64}")


@dataclass(frozen=True)
class Remote:
    url: str  # as git gets it
    host: str
    port: int
    scheme: str


def check_url(text: str, allow_loopback: bool = False) -> Remote:
    """The URL git may clone, or `Refused` with the reason."""
    url = text.strip()
    if not url or url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise Refused("not a URL (empty, an option, or with spaces or control characters)")
    if "::" in url.split("/", 1)[0] or not re.match(r"^[a-z]+://", url, re.I):
        raise Refused(
            f"{clean_name(url)[:80]} is not an https:// URL (git transports, local "
            "paths and ssh are refused)"
        )
    parts = urllib.parse.urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    loopback = allow_loopback and scheme == "http" and host in LOOPBACK_NAMES
    if scheme != "https" and not loopback:
        raise Refused(f"{scheme}:// is refused: only https:// repository URLs are graded")
    if parts.username or parts.password or "@" in parts.netloc:
        raise Refused("the URL holds credentials: submit the public URL of the repository")
    if parts.query or parts.fragment or not parts.path.strip("/"):
        raise Refused("not a repository URL (it needs a path, and no ?query or #fragment)")
    if not loopback and not HOST.fullmatch(host):
        raise Refused(f"{clean_name(host)[:80]!r} is not a host name like github.com")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise Refused("the URL has an invalid port") from None
    return Remote(
        urllib.parse.urlunsplit((scheme, parts.netloc, parts.path, "", "")), host, port, scheme
    )


def git_config(remote: Remote, addresses: list[str]) -> list[str]:
    """`-c` options of every git command run on a student's repository."""
    pins = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    settings = {
        "protocol.allow": "never",
        f"protocol.{remote.scheme}.allow": "always",
        "core.hooksPath": "/dev/null",
        "core.symlinks": "false",
        "core.fsmonitor": "false",
        "credential.helper": "",
        "submodule.recurse": "false",
        "fetch.recurseSubmodules": "false",
        "filter.lfs.smudge": "",
        "filter.lfs.process": "",
        "filter.lfs.required": "false",
        "http.followRedirects": "false",
        "http.curloptResolve": f"{remote.host}:{remote.port}:{pins}",
        "http.lowSpeedLimit": "1000",
        "http.lowSpeedTime": "30",
        "transfer.fsckObjects": "true",
        "advice.detachedHead": "false",
        "init.defaultBranch": "main",
    }
    return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]


def git_env(home: Path, remote: Remote) -> dict[str, str]:
    """An environment with nothing of the instructor's: no config, credentials or proxy."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_ALLOW_PROTOCOL": remote.scheme,
        "GIT_TEMPLATE_DIR": str(home),
        "GIT_NO_REPLACE_OBJECTS": "1",
        "LC_ALL": "C",
    }


def why_failed(stderr: str) -> str:
    """What a failed clone or fetch means, in the student's terms."""
    text = stderr.lower()
    if "terminal prompts disabled" in text or "authentication" in text or "username" in text:
        return (
            "the repository is private or does not exist (the server asked for a login): "
            "make it public, or check the URL"
        )
    if "redirect" in text or re.search(r"error: 30[12378]\b", text):
        return "the server redirects (the repository moved or was renamed?): submit its current URL"
    if "not found" in text or " 404" in text:
        return "there is no repository at this URL (404)"
    last = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no message"]
    return f"git failed: {clean_name(last[0])[:200]}"


@dataclass(frozen=True)
class Checkout:
    """What intake did for one student: a folder to grade, or the reason there is none."""

    url: str
    commit: str = ""
    committed_at: datetime | None = None
    path: Path | None = None  # the folder to grade
    reason: str = ""  # set when there is no submission


def pick_commit(git: Git, tree: Path, wanted: str, cutoff: datetime) -> tuple[str, datetime]:
    """The commit to grade and its commit time; raises ValueError with the reason."""
    if wanted:
        if not SHA.fullmatch(wanted):
            raise ValueError(f"{clean_name(wanted)[:50]!r} is not a commit hash")
        code, out, _ = git.run("rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}", cwd=tree)
        if code != 0:
            git.run(
                "fetch", "--quiet", "--filter=blob:none", "--no-tags", "origin", wanted, cwd=tree
            )
            code, out, _ = git.run(
                "rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}", cwd=tree
            )
            if code != 0:
                raise ValueError(
                    f"commit {wanted} is not in the repository (a full hash is "
                    "needed for a commit outside the default branch)"
                )
        sha = out.strip()
        _, out, _ = git.run("show", "-s", "--format=%ct", sha, cwd=tree)
        when = datetime.fromtimestamp(int(out.strip()), UTC)
        if when > cutoff:
            raise ValueError(
                f"commit {sha[:12]} was committed {when:%Y-%m-%d %H:%M} UTC, "
                f"after the deadline ({cutoff:%Y-%m-%d %H:%M} UTC)"
            )
        return sha, when
    code, out, _ = git.run("log", "--first-parent", "--format=%H %ct", "HEAD", cwd=tree)
    if code != 0 or not out.strip():
        raise ValueError("the repository is empty (no commit)")
    history = [(line.split()[0], int(line.split()[1])) for line in out.splitlines() if line]
    for sha, stamp in history:
        if stamp <= cutoff.timestamp():
            return sha, datetime.fromtimestamp(stamp, UTC)
    first = datetime.fromtimestamp(history[-1][1], UTC)
    raise ValueError(
        f"no commit at or before the deadline ({cutoff:%Y-%m-%d %H:%M} UTC); "
        f"the first is of {first:%Y-%m-%d %H:%M} UTC"
    )


def subfolder(tree: Path, subdir: str) -> Path:
    """The folder the form names inside the checkout (relative, no `..`), or ValueError."""
    if not subdir.strip("/ "):
        return tree
    parts = PurePosixPath(subdir.strip().strip("/")).parts
    if "\\" in subdir or any(p in ("..", ".") or p.startswith(".git") for p in parts):
        raise ValueError(f"the folder {clean_name(subdir)[:80]!r} is not a plain relative path")
    path = tree.joinpath(*parts)
    if not path.is_dir() or any(p.is_symlink() for p in [path, *path.parents] if tree in p.parents):
        raise ValueError(f"the repository has no folder {clean_name(subdir)[:80]} at that commit")
    return path


def fetch(
    url: str,
    commit: str,
    subdir: str,
    cutoff: datetime,
    dest: Path,
    limits: Limits | None = None,
    resolver: Resolver = system_resolver,
    allow_loopback: bool = False,
) -> Checkout:
    """Clone url into dest (a new folder) and check out the commit to grade."""
    try:
        remote = check_url(url, allow_loopback)
        addresses = public_addresses(remote.host, remote.port, resolver, allow_loopback)
    except Refused as e:
        return Checkout(url, reason=f"refused: {e}")
    work = Path(tempfile.mkdtemp(prefix=f".clone-{dest.name}-", dir=dest.parent))
    try:
        tree, home = work / "tree", work / "home"
        home.mkdir()
        limits = limits or Limits()
        git = Git(
            git_config(remote, addresses),
            git_env(home, remote),
            work,
            limits,
            time.monotonic() + limits.seconds,
        )
        code, _, err = git.run(
            "clone",
            "--quiet",
            "--no-checkout",
            "--filter=blob:none",
            "--single-branch",
            "--no-tags",
            "--",
            remote.url,
            str(tree),
        )
        if code != 0:
            return Checkout(remote.url, reason=why_failed(err))
        sha, when = pick_commit(git, tree, commit, cutoff)
        code, _, err = git.run("checkout", "--quiet", "--force", "--detach", sha, cwd=tree)
        if code != 0:
            return Checkout(remote.url, sha, when, reason=why_failed(err))
        shutil.rmtree(tree / ".git")
        path = subfolder(tree, subdir)
        tree.rename(dest)
        return Checkout(remote.url, sha, when, dest / path.relative_to(tree))
    except LimitExceeded as e:
        return Checkout(url, reason=f"the repository {e}: it was not graded")
    except ValueError as e:
        return Checkout(url, reason=str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
