"""What a test cannot run without. CI (CI=true) installs every such component, so there its
absence fails the test; elsewhere the test is skipped, and the reason printed."""
from __future__ import annotations

import os

import pytest


def need(what: str, reason: str) -> None:
    """Fail (in CI) or skip (elsewhere, saying why): `what` is not available, for `reason`."""
    message = f"{what} is not available: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    print(f"skipping: {message}")
    pytest.skip(message)
