"""What graded a cohort: the grader's commit, the spec, the engine and its version, and a keyed
fingerprint of the seed (never the seed).

Seeds are small integers: an unkeyed hash, or one whose key sits next to it, gives the seed
back in seconds (hash every integer up to 10^9). The fingerprint is HMAC-SHA256 under the
*audit key*, which lives with the instructor, not with the outputs: `GRADER_AUDIT_KEY` when set
(a CI secret, so that every shard of a matrix uses the same one, like the seed), else a key
file created on first use in the instructor's config folder
(`~/.config/deploy-course/audit-key`, mode 0600, owner and mode checked on every use). The
output folder (gradebook, report, batch.json, which TAs and CI artifacts see) holds only the
fingerprint and the key's id, so two runs compare (same seed and key: same fingerprint)
without anyone who reads them learning the seed. Student code never sees either: it runs in
the sandbox, which shows it nothing of the grader's home.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grader.results.render import GRADER_ROOT

KEY_ENV = "GRADER_AUDIT_KEY"


def key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "deploy-course" / "audit-key"


def audit_key() -> bytes:
    """The instructor's audit key (see the module's docstring); created if there is none."""
    value = os.environ.get(KEY_ENV, "")
    if value:
        if len(value) < 16:
            raise ValueError(f"{KEY_ENV} is too short: use 32 random characters or more")
        return value.encode()
    path = key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ValueError(f"{path} must be a file of yours that only you can read (chmod 600)")
    return path.read_text().strip().encode()


def seed_fingerprint(seed: int, key: bytes) -> str:
    """HMAC-SHA256(key, seed), 16 hex digits: equal for equal seeds under one key."""
    return hmac.new(key, f"grade-seed:{seed}".encode(), hashlib.sha256).hexdigest()[:16]


def key_id(key: bytes) -> str:
    """Which key made a fingerprint (a different key is not a different seed)."""
    return hashlib.sha256(b"grade-audit-key-id:" + key).hexdigest()[:8]


def grader_commit(root: Path = GRADER_ROOT) -> str:
    """The grader's commit (`+changes` when its files differ from it), or why it is unknown."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "LC_ALL": "C",
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=20,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "grader")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit[:12] + (" +changes" if dirty else "")


def engine_version(wanted: str) -> str:
    """The container engine stage 6 uses here, with its version (as the grader detects it)."""
    if wanted == "none":
        return "none"
    from grader import containers  # the grader's own detection, not a second opinion

    engine, why = containers.detect(wanted)
    return f"{engine.name} {engine.version}" if engine else f"none ({why})"


@dataclass(frozen=True)
class Audit:
    grader_commit: str
    engine_version: str
    seed_fingerprint: str  # "public seed 0" for the public seed
    audit_key_id: str
    test_only_loopback: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def record(seed: int, engine: str, loopback: bool, merged: bool = False) -> Audit:
    """This run's audit (a merge grades nobody: its students' stamps say who graded them)."""
    key = audit_key()
    if merged:
        return Audit(
            grader_commit(), "(merge)", "(merge: see the students' stamps)", key_id(key), loopback
        )
    fingerprint = "public seed 0" if seed == 0 else seed_fingerprint(seed, key)
    return Audit(grader_commit(), engine_version(engine), fingerprint, key_id(key), loopback)


def differences(stamps: dict[str, dict[str, Any]]) -> list[str]:
    """Lines for the report when students were graded under different seeds, graders, specs or
    engines (a resumed, merged or partly regraded cohort)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for student, stamp in sorted(stamps.items()):
        key = tuple(
            str(stamp.get(k, "?"))
            for k in ("seed_fingerprint", "grader_commit", "spec", "engine_version", "run_id")
        )
        groups.setdefault(key, []).append(student)
    lines = []
    for field, index in (("seed", 0), ("grader commit", 1), ("spec", 2), ("engine", 3)):
        values = {key[index] for key in groups}
        if len(values) > 1:
            lines.append(
                f"**Students were graded with different {field}s** "
                f"({', '.join(sorted(values))}): their grades are not comparable."
            )
    return lines
