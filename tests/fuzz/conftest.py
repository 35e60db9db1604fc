"""Hypothesis profiles for the property tests: ``HYPOTHESIS_PROFILE=fuzz`` runs them long."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.fuzz.profiles import FUZZ_EXAMPLES, FUZZING

settings.register_profile(
    "fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
if FUZZING:
    settings.load_profile("fuzz")
