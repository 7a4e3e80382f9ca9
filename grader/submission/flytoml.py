"""fly.toml as flyctl reads it: the schema that ships with the grader, relaxed where flyctl
accepts more than the schema says.

The schema (grader/schemas/fly.schema.json, from fly.io) is stricter than flyctl in places; a
file flyctl deploys must not fail here. Known differences, each measured against flyctl's
own parser (`fly config validate`):

- `auto_stop_machines`: flyctl takes a boolean too (`true` means "stop", `false` "off");
  the schema lists only the strings. `fly launch` wrote `true` for years.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

import jsonschema

# property name -> extra JSON-schema alternatives flyctl accepts for it
LAXER: dict[str, list[dict[str, Any]]] = {
    "auto_stop_machines": [{"type": "boolean"}],
}


def _relax(node: Any) -> Any:
    """The schema with every property named in LAXER widened to `anyOf` [its schema, extra]."""
    if isinstance(node, list):
        return [_relax(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _relax(v) for k, v in node.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        for name, extra in LAXER.items():
            if isinstance(props.get(name), dict):
                original = dict(props[name])
                description = original.pop("description", None)
                widened: dict[str, Any] = {"anyOf": [original, *extra]}
                if description:
                    widened["description"] = description
                props[name] = widened
    return out


@functools.cache
def schema() -> dict[str, Any]:
    text = resources.files("grader").joinpath("schemas/fly.schema.json").read_text()
    relaxed: dict[str, Any] = _relax(json.loads(text))
    return relaxed


def problems(fly: dict[str, Any]) -> list[str]:
    """What flyctl would refuse in this fly.toml, one line each ("where: what")."""
    validator = jsonschema.Draft7Validator(schema())
    errors = sorted(validator.iter_errors(fly), key=lambda e: list(map(str, e.absolute_path)))
    lines = []
    for e in errors:
        where = ".".join(map(str, e.absolute_path)) or "(top)"
        lines.append(f"{where}: {e.message}")
    return lines


def check_path(fly: dict[str, Any]) -> str | None:
    """The first HTTP health-check path in fly.toml (http_service.checks or services.*)."""
    candidates: list[Any] = []
    service = fly.get("http_service")
    if isinstance(service, dict):
        candidates += service.get("checks") or []
    for svc in fly.get("services") or []:
        if isinstance(svc, dict):
            candidates += svc.get("http_checks") or []
    checks = fly.get("checks")
    if isinstance(checks, dict):
        candidates += list(checks.values())
    for check in candidates:
        if isinstance(check, dict) and isinstance(check.get("path"), str):
            return str(check["path"])
    return None


def internal_ports(fly: dict[str, Any]) -> list[int]:
    """The ports fly.io sends traffic to ([http_service] and [[services]] internal_port)."""
    ports = []
    service = fly.get("http_service")
    if isinstance(service, dict) and "internal_port" in service:
        ports.append(service["internal_port"])
    for svc in fly.get("services") or []:
        if isinstance(svc, dict) and "internal_port" in svc:
            ports.append(svc["internal_port"])
    return [int(p) for p in ports if isinstance(p, int) or re.fullmatch(r"\d+", str(p))]
