"""retryStrategy as Argo's controller applies it (operator.go processNodeRetries): which phases a
policy retries, the backoff between attempts (capped), and maxDuration as the limit of all
attempts together."""
from __future__ import annotations

import time

from workflow_templates.engines import golang
from workflow_templates.engines.phases import ERROR, FAILED

POLICIES = {"Always": {FAILED, ERROR}, "OnFailure": {FAILED}, "OnError": {ERROR}}


def limit(retry: dict | None) -> float:
    """How many retries: none without a retryStrategy; without a `limit`, as many as it takes
    (processNodeRetries checks the count only when Limit is set: `retryStrategy: {}` retries
    until the step succeeds, as retry-container-to-completion.yaml documents)."""
    if retry is None:
        return 0
    return float("inf") if retry.get("limit") is None else int(retry["limit"])


def backoff(backoff: dict | None, attempt: int) -> float:
    if not backoff:
        return 0
    duration = golang.seconds(backoff.get("duration", "0"))
    wait = duration * float(backoff.get("factor", 1) or 1) ** (attempt - 1)
    return min(wait, golang.seconds(backoff["cap"])) if backoff.get("cap") else wait  # processNodeRetries


def time_left(backoff: dict | None, first_start: float) -> float | None:
    """operator.go: a retry's pod gets the maxDuration deadline as its execution deadline."""
    if not backoff or not backoff.get("maxDuration"):
        return None
    return max(0.001, first_start + golang.seconds(backoff["maxDuration"]) - time.monotonic())


def deadline(active_deadline, cut: float | None) -> float | None:
    limits = [float(v) for v in (active_deadline, cut) if v is not None]
    return min(limits) if limits else None


def beyond_max_duration(backoff: dict | None, first_start: float, delay: float) -> str:
    """operator.go processNodeRetries: maxDuration bounds all attempts from the first one's
    start; no retry once it has passed, nor one whose backoff would end after it."""
    if not backoff or not backoff.get("maxDuration"):
        return ""
    deadline = first_start + golang.seconds(backoff["maxDuration"])
    if time.monotonic() > deadline:
        return "Max duration limit exceeded"
    if time.monotonic() + delay > deadline:
        return "Backoff would exceed max duration limit"
    return ""
