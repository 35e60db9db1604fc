"""How many examples a property test runs: a few in the normal suite, many under ``nox -s fuzz``.

The ``fuzz`` profile (registered in ``tests/fuzz/conftest.py``) is loaded when
``HYPOTHESIS_PROFILE=fuzz``; a test decorated with :func:`examples` then runs the
profile's count instead of its own small one.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
FUZZ_EXAMPLES = int(os.environ.get("CORTAN_FUZZ_EXAMPLES", "2000"))


def examples(bounded: int) -> settings:
    """``bounded`` examples in the normal suite; the fuzz profile's count when fuzzing."""
    checks = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
    if FUZZING:
        return settings(deadline=None, suppress_health_check=checks)
    return settings(max_examples=bounded, deadline=None, suppress_health_check=checks)
