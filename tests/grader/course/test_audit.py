"""Audit: the seed's fingerprint is keyed (a public-key hash of a small seed is brute-forced in
seconds), the key lives with the instructor (environment or a private file), never with the
outputs; differences between students' stamps are reported."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from grader.batch.course import audit


def test_fingerprint_is_keyed_and_stable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv(audit.KEY_ENV, raising=False)
    key = audit.audit_key()
    path = tmp_path / "deploy-course" / "audit-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) == 64
    assert audit.audit_key() == key, "the same key on every run"
    a, b = audit.seed_fingerprint(12345, key), audit.seed_fingerprint(12345, key)
    assert a == b and a != audit.seed_fingerprint(12346, key)
    assert audit.seed_fingerprint(12345, b"another key of 32 characters....") != a
    # without the key, no small seed reproduces the fingerprint
    assert a not in {audit.seed_fingerprint(s, b"") for s in range(20000)}
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        audit.audit_key()


def test_the_environment_key_wins_and_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(audit.KEY_ENV, "short")
    with pytest.raises(ValueError, match="too short"):
        audit.audit_key()
    monkeypatch.setenv(audit.KEY_ENV, "x" * 40)
    assert audit.audit_key() == b"x" * 40


def test_record_and_differences(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(audit.KEY_ENV, "k" * 40)
    record = audit.record(987654321, "none", loopback=False)
    assert record.engine_version == "none" and "987654321" not in str(record.to_json())
    assert record.grader_commit and record.audit_key_id == audit.key_id(b"k" * 40)
    assert audit.record(0, "none", False).seed_fingerprint == "public seed 0"
    same = {"seed_fingerprint": "a", "grader_commit": "c", "spec": "credit", "engine_version": "e"}
    assert audit.differences({"x": same, "y": dict(same, run_id="2")}) == []
    mixed = audit.differences({"x": same, "y": dict(same, seed_fingerprint="b")})
    assert len(mixed) == 1 and "different seeds" in mixed[0]
