"""`--live`: every student's deployment, probed with stage 7's HTTP contract.

Each student answered their fly.io URL in answers.toml (`[flyio] url`, question 7.a). Before a
student is graded, the URL must be `https://APP.fly.dev` (the platform's domain, no port,
credentials, path or query), the name must resolve to public addresses only, and a first
`GET /ping` to one of them (certificate checked for the name) must not redirect off the domain.
Then that student's grader gets `--url` and `--pin-host` (`grader.batch.course.pinned`), which
makes the name resolve to the checked addresses only: a second DNS answer cannot send the
grader elsewhere. The probe never follows redirects. A refused or missing URL fails the
live checks with the reason. Pre-flights run `LIVE_JOBS` at a time, each within
`PREFLIGHT_SECONDS`; the contract's own requests are bounded as for `--url`, and run inside the
student's grading slot (`--jobs`).
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import re
import socket
import ssl
import sys
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from grader.batch.course.addresses import (
    LOOPBACK_NAMES,
    Refused,
    Resolver,
    public_addresses,
    system_resolver,
)
from grader.results.render import clean_name
from grader.results.report import FAILED, SKIPPED, Report
from grader.uploads import locate

PLATFORM_DOMAIN = "fly.dev"
APP = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
LIVE_JOBS = 8
PREFLIGHT_SECONDS = 10.0
ANSWERS_MAX = 64 * 1024
NOT_PROBED = "no --url given"  # how stage 7's live checks say they were skipped


@dataclass(frozen=True)
class Target:
    url: str  # https://APP.fly.dev (or the test's http://127.0.0.1:PORT)
    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """A student's live probe: where to, or why not."""

    target: Target | None = None
    refusal: str = ""


def answered_url(upload: Path) -> str:
    """The URL of 7.a in the submission's answers.toml; ValueError says what is missing."""
    path = locate(upload).root / "answers.toml"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        raise ValueError("there is no answers.toml (or it is a link)") from None
    with os.fdopen(fd, "rb") as f:
        raw = f.read(ANSWERS_MAX + 1)
    if len(raw) > ANSWERS_MAX:
        raise ValueError("answers.toml is too large to read")
    try:
        answers = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise ValueError("answers.toml is not valid TOML") from None
    section = answers.get("flyio")
    url = section.get("url") if isinstance(section, dict) else None
    if not isinstance(url, str) or not url.strip():
        raise ValueError("answers.toml has no [flyio] url (question 7.a)")
    return url.strip()


def check_url(
    url: str, resolver: Resolver = system_resolver, allow_loopback: bool = False
) -> Target:
    """The deployment to probe, or `Refused` with the reason."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = allow_loopback and parts.scheme == "http" and host in LOOPBACK_NAMES
    if not loopback:
        if parts.scheme != "https":
            raise Refused(f"{clean_name(url)[:80]} is not an https:// URL")
        if not (host.endswith("." + PLATFORM_DOMAIN) and APP.fullmatch(host[:-8])):
            raise Refused(
                f"{clean_name(host)[:80]} is not an app on {PLATFORM_DOMAIN} "
                f"(https://APP.{PLATFORM_DOMAIN})"
            )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("the URL has an invalid port") from None
    if parts.username or parts.password or parts.query or parts.fragment:
        raise Refused("the URL holds credentials, a query or a fragment")
    if parts.path.strip("/") or (not loopback and parts.port not in (None, 443)):
        raise Refused(f"give the app's address alone, https://APP.{PLATFORM_DOMAIN}")
    addresses = public_addresses(host, port, resolver, allow_loopback)
    base = f"{parts.scheme}://{host}" + (f":{port}" if parts.port else "")
    return Target(base, host, port, tuple(addresses))


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    """A connection to the checked address (TLS verified for the name, sent as SNI)."""
    address = target.addresses[0]
    if target.url.startswith("http://"):
        return http.client.HTTPConnection(address, target.port, timeout=timeout)
    context = ssl.create_default_context()

    class Pinned(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = socket.create_connection((address, self.port), self.timeout)
            self.sock = context.wrap_socket(sock, server_hostname=target.host)

    return Pinned(target.host, target.port, timeout=timeout, context=context)


def preflight(target: Target, timeout: float = PREFLIGHT_SECONDS) -> str:
    """'' or why the live checks must not run: a redirect off the app's own name."""
    conn = _connection(target, timeout)
    try:
        conn.request("GET", "/ping", headers={"Host": target.host})
        response = conn.getresponse()
        location = response.getheader("Location") or ""
        response.read(65536)
    except (OSError, http.client.HTTPException):
        return ""  # no answer: the contract's checks say so, with their own retries
    finally:
        conn.close()
    if 300 <= response.status < 400 and location:
        went = urllib.parse.urlsplit(urllib.parse.urljoin(target.url + "/", location))
        if (went.hostname or "").lower() != target.host:
            return (
                f"GET /ping redirects to {clean_name(went.hostname or location)[:80]}, off "
                f"{target.host}: the grader does not follow it"
            )
    return ""


def plan(upload: Path, resolver: Resolver = system_resolver, allow_loopback: bool = False) -> Plan:
    try:
        target = check_url(answered_url(upload), resolver, allow_loopback)
    except (ValueError, Refused) as e:
        return Plan(refusal=str(e))
    refusal = preflight(target)
    return Plan(None, refusal) if refusal else Plan(target)


def plan_all(
    uploads: Mapping[str, Path], resolver: Resolver = system_resolver, allow_loopback: bool = False
) -> dict[str, Plan]:
    """Every student's plan, LIVE_JOBS pre-flights at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=LIVE_JOBS) as pool:
        futures = {
            name: pool.submit(plan, path, resolver, allow_loopback)
            for name, path in uploads.items()
        }
        return {name: future.result() for name, future in futures.items()}


def command(plan: Plan, grader_argv: list[str]) -> list[str]:
    """The student's grader command (`python -m grader.cli …`) with --url, pinned."""
    if plan.target is None:
        return grader_argv
    target = plan.target
    args = grader_argv[grader_argv.index("grader.cli") + 1 :]
    pin = f"{target.host}={','.join(target.addresses)}"
    return [sys.executable, "-m", "grader.cli", "--pin-host", pin, *args, "--url", target.url]


def refuse(report: Report, reason: str) -> Report:
    """The live checks (skipped for want of --url) failed with the reason instead."""
    for c in report.checks:
        if c.stage == 7 and c.status == SKIPPED and NOT_PROBED in c.output:
            c.status, c.output = FAILED, f"the live deployment was not probed: {reason}"
    return report
