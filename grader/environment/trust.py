"""Which modules of an installed environment the probe process may import.

The probe (grader/probes/probe.py) holds the nonce, the seeded records and the bad requests, so
no code chosen by the submission may run in it: it starts without site processing (`python -S`:
no `.pth` file, no `sitecustomize`) and imports from the environment's site-packages only the
top-level modules this module lists. Those are the modules of the distributions loading a model
and serving it need (`ALLOWED`), provided that nothing else of the environment writes into them:
no other distribution's RECORD names a file under them, every file under them is named in the
RECORD of an allowed distribution, and each file's hash is the one that RECORD gives."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# What loading the course's pickles and serving a FastAPI app imports (and what those import).
ALLOWED = frozenset(
    {
        "annotated-doc", "annotated-types", "anyio", "certifi", "charset-normalizer", "click",
        "cloudpickle", "exceptiongroup", "fastapi", "h11", "httptools", "idna",
        "importlib-metadata", "joblib", "narwhals", "numpy", "opentelemetry-api", "pandas",
        "pydantic", "pydantic-core", "python-dateutil", "python-dotenv", "pytz", "pyyaml",
        "scikit-learn", "scipy", "six", "sniffio", "starlette", "threadpoolctl",
        "typing-extensions", "typing-inspection", "tzdata", "uvicorn", "uvloop", "watchfiles",
        "websockets", "zipp",
    }
)  # fmt: skip
RECORD_FILE = ".grader-trusted.json"  # the verdict, kept in the environment's folder


@dataclass(frozen=True)
class Trusted:
    """The site-packages folder and the top-level modules the probe may import from it; why
    an allowed distribution's modules were left out (empty: none were)."""

    site: Path
    modules: tuple[str, ...]
    problems: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {"site": str(self.site), "modules": self.modules, "problems": self.problems}
        )

    @classmethod
    def from_json(cls, text: str) -> Trusted:
        data = json.loads(text)
        return cls(Path(data["site"]), tuple(data["modules"]), tuple(data["problems"]))


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages(prefix: Path) -> Path | None:
    """The site-packages folder of the environment at `prefix`."""
    found = sorted(prefix.glob("lib/python3*/site-packages"))
    return found[0] if found else None


def own_site() -> Path:
    """The grader's own site-packages (the instructor's environment: trusted as installed)."""
    return Path(sysconfig.get_paths()["purelib"])


def _records(site: Path) -> dict[str, list[tuple[str, str]]]:
    """Each distribution's RECORD: {name: [(path, "algo=digest"), ...]}, paths inside site."""
    found: dict[str, list[tuple[str, str]]] = {}
    for info in sorted(site.glob("*.dist-info")):
        name = normalize(info.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        try:
            with (info / "RECORD").open(newline="", encoding="utf-8") as f:
                rows = [(r[0], r[1] if len(r) > 1 else "") for r in csv.reader(f) if r]
        except OSError:
            rows = []
        found[name] = [(p, h) for p, h in rows if not p.startswith(("../", "/"))]
    return found


def _top(path: str) -> str:
    return path.replace("\\", "/").split("/", 1)[0]


def _module(top: str, is_dir: bool) -> str | None:
    """The importable top-level name of a site-packages entry (None: not a module)."""
    if top.endswith((".dist-info", ".data")) or top == "__pycache__":
        return None
    if is_dir:
        return top if top.isidentifier() else None  # numpy.libs: libraries, not a module
    stem = top.split(".", 1)[0]
    suffix = top[len(stem) :]
    if suffix == ".py" or suffix.endswith((".so", ".pyd")):
        return stem if stem.isidentifier() else None
    return None


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def verify(site: Path) -> Trusted:
    """The trusted modules of a freshly installed environment (see the module docstring)."""
    records = _records(site)
    owners: dict[str, set[str]] = {}
    listed: dict[str, str] = {}  # path -> hash, for the allowed distributions' files
    for dist, rows in records.items():
        for path, digest in rows:
            owners.setdefault(_top(path), set()).add(dist)
            if dist in ALLOWED:
                listed[path] = digest
    problems: list[str] = []
    modules: list[str] = []
    for top in sorted(owners):
        mine = owners[top] & ALLOWED
        if not mine:
            continue
        others = sorted(owners[top] - ALLOWED)
        if others:
            problems.append(f"{', '.join(others)} also write into {top} of {', '.join(mine)}")
            continue
        problem = _check_files(site, top, listed)
        if problem:
            problems.append(problem)
            continue
        module = _module(top, (site / top).is_dir())
        if module is not None:
            modules.append(module)
    return Trusted(site, tuple(modules), tuple(problems))


def _check_files(site: Path, top: str, listed: dict[str, str]) -> str:
    """Why the files under `top` are not exactly what the allowed RECORDs say ("" if they are)."""
    root = site / top
    paths = [root] if not root.is_dir() else sorted(p for p in root.rglob("*") if not p.is_dir())
    for path in paths:
        if path.is_symlink():
            return f"{path.relative_to(site)} is a symlink"
        relative = path.relative_to(site).as_posix()
        digest = listed.get(relative)
        if digest is None:
            return f"{relative} is in no allowed distribution's RECORD"
        algorithm, _, value = digest.partition("=")
        if value and (
            algorithm not in hashlib.algorithms_available or _digest(path, algorithm) != value
        ):
            return f"{relative} is not the file its RECORD names"
    return ""


def of_environment(prefix: Path) -> Trusted | None:
    """The verdict kept in an installed environment (None if it has none)."""
    try:
        return Trusted.from_json((prefix / RECORD_FILE).read_text())
    except (OSError, ValueError, KeyError):
        return None


def of_grader() -> Trusted:
    """The grader's own environment: the allowed distributions' modules, as installed."""
    site = own_site()
    modules = []
    for dist, rows in _records(site).items():
        if dist in ALLOWED:
            for top in {_top(p) for p, _ in rows}:
                module = _module(top, (site / top).is_dir())
                if module is not None:
                    modules.append(module)
    return Trusted(site, tuple(sorted(set(modules))))
