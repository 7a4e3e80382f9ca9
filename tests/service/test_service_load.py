"""Load on the hardened service (step 08): 50 concurrent keep-alive clients, no request may fail.

CI sends 3,000 requests; FULL=1 sends the 10,000 of docs/reliability.md. Each client is one
keep-alive connection sending one request after another (tests/service_tools.py run_load).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service_tools import FINAL_STEP, FULL, percentile, run_load, service, trained_step

CLIENTS = 50
REQUESTS = 10_000 if FULL else 3_000


@pytest.mark.slow
def test_50_clients_no_errors(tmp_path: Path) -> None:
    folder = trained_step(FINAL_STEP, tmp_path)
    with service(folder) as base:
        run_load(base, CLIENTS, 200)  # warm-up: first requests import and compile lazily
        result = run_load(base, CLIENTS, REQUESTS, max_seconds=600)
    print(f"load, {CLIENTS} clients: {result.summary()}")
    assert result.requests == REQUESTS, result.summary()
    assert result.errors == {} and set(result.statuses) == {200}, result.summary()
    # Not a performance target (one worker on a shared 2-core machine), a guard against stalls.
    assert percentile(result.latencies, 99) < 5.0, result.summary()
