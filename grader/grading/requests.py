"""What the grader sends a submission's service: its records (public and seeded), the HTTP
requests built from them with their ids, and what came back (`HttpRun`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from grader.records import (
    BadRequest,
    public_bad_requests,
    seeded_bad_requests,
    valid_records,
)
from grader.sandbox import RunResult
from grader.specs import Dataset, Record, Spec

N_PUBLIC = 20  # held-out records sent to the service in public checks
N_SEEDED = 12  # seeded valid records in hidden checks, beyond the ranges' boundaries

# Request ids: fixed ones, and prefixes numbered by the record's index.
PING, EXAMPLE, OPENAPI, FLY_HEALTH = "ping", "example", "openapi", "fly-health"
HELDOUT, SEEDED, BAD, SEEDED_BAD = "heldout-", "seeded-", "bad-", "seeded-bad-"

MALFORMED: dict[str, dict[str, Any]] = {
    "malformed-json": {"raw": "{this is not json"},
    "malformed-empty": {"body": {}},
    "malformed-list": {"body": [1, 2, 3]},
    "malformed-null": {"body": None},
}


class Request(TypedDict):
    """One HTTP request of the probes (`body` is sent as JSON, `raw` as it is)."""

    id: str
    method: str
    path: str
    body: NotRequired[Any]
    raw: NotRequired[str]


class Answer(TypedDict, total=False):
    """What came back for one request (`http_probe.send`)."""

    id: str
    status: int
    json: Any
    text: str
    error: str
    bytes: int
    truncated: bool
    seconds: float


@dataclass
class Records:
    """The records the grader sends: public ones, and the seeded (hidden) ones."""

    example: Record
    heldout: list[Record]
    heldout_targets: list[int]
    public_sample: list[int]  # indices into heldout sent over HTTP
    seeded: list[Record]
    bad: list[BadRequest]
    seeded_bad: list[BadRequest]
    categories: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def all_records(self) -> list[Record]:
        """[example] + heldout + seeded: the records the model probe scores."""
        return [self.example, *self.heldout, *self.seeded]


def draw(spec: Spec, data: Dataset, seed: int) -> Records:
    """The public records (the same for everyone) and those the seed draws."""
    test = spec.split(data).test
    public = random.Random(f"public-{spec.name}")
    seeded = random.Random(f"seed-{seed}-{spec.name}")
    sample = sorted(public.sample(range(len(test.records)), N_PUBLIC))
    return Records(
        example=dict(spec.example),
        heldout=test.records,
        heldout_targets=test.targets,
        public_sample=sample,
        seeded=valid_records(spec, test, seeded, N_SEEDED),
        bad=public_bad_requests(spec),
        seeded_bad=seeded_bad_requests(spec, test, seeded),
        categories=spec.categories(data),
    )


def http_requests(spec: Spec, records: Records, health_path: str | None) -> list[Request]:
    """Every request of stages 3, 4 and 7, in order; `health_path`: fly.toml's health check."""
    predict = spec.predict_path

    def post(rid: str, body: Any) -> Request:
        return {"id": rid, "method": "POST", "path": predict, "body": body}

    def post_bad(rid: str, bad: BadRequest) -> Request:
        if bad.raw is None:
            return post(rid, bad.body)
        return {"id": rid, "method": "POST", "path": predict, "raw": bad.raw}

    reqs: list[Request] = [
        {"id": PING, "method": "GET", "path": spec.ping_path},
        post(EXAMPLE, records.example),
        {"id": OPENAPI, "method": "GET", "path": "/openapi.json"},
    ]
    reqs += [post(f"{HELDOUT}{i}", records.heldout[i]) for i in records.public_sample]
    reqs += [post(f"{SEEDED}{i}", record) for i, record in enumerate(records.seeded)]
    reqs += [post_bad(f"{BAD}{i}", bad) for i, bad in enumerate(records.bad)]
    reqs += [post_bad(f"{SEEDED_BAD}{i}", bad) for i, bad in enumerate(records.seeded_bad)]
    for rid, extra in MALFORMED.items():
        reqs.append({"id": rid, "method": "POST", "path": predict, **extra})  # type: ignore[typeddict-item]
    if health_path:
        reqs.append({"id": FLY_HEALTH, "method": "GET", "path": health_path})
    return reqs


def public_only(reqs: list[Request]) -> list[Request]:
    """The requests without the seeded ones (what leaves the sandbox: a container, a URL)."""
    return [r for r in reqs if not r["id"].startswith((SEEDED, SEEDED_BAD))]


@dataclass
class HttpRun:
    """What the HTTP probe saw: did the server start, its log tail, the answers by id."""

    started: bool
    start_seconds: float
    exit_code: int | None
    server_log: str
    responses: dict[str, dict[str, Any]]
    run: RunResult | None = None
    problem: str = ""  # why it cannot answer, when the grader can tell

    def get(self, request_id: str) -> dict[str, Any]:
        return self.responses.get(request_id, {"error": "no answer recorded"})
