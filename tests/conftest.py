"""Shared test settings: hypothesis profiles and the size of the torch parity runs."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

# At least 2,000 random configurations per op in CI (issue: "Exact"); raise it locally to dig deeper.
PARITY_EXAMPLES = int(os.environ.get("CONVCALC_PARITY_EXAMPLES", "2000"))

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile("default")
