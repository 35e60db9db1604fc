"""Developer tasks. `nox` runs lint, typecheck and tests; bench and fuzz run on request.

Every session installs cortan from this checkout with its `test` (or `dev`) extra, so
a fresh machine needs only Python and nox.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (unit, CLI over loopback servers, REPL, pseudo-terminal)."""
    session.install("-e", ".[test,mcp]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check; import-linter holds the code to docs/architecture.md's layers."""
    session.install("ruff>=0.12", "import-linter>=2.1")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")  # the contracts in pyproject.toml, type-only imports included


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over cortan, tests and this file."""
    session.install("-e", ".[dev,mcp]")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks of docs/performance.md; writes bench-report.json (args go to the driver).

    `nox -s bench -- --quick` is a smoke run; `-- --only startup bus` picks benchmarks;
    `-- --out PATH` writes the report elsewhere.
    """
    session.install("-e", ".[test]")
    out = [] if "--out" in session.posargs else ["--out", "bench-report.json"]
    session.run("python", "-m", "tests.benchmarks.run", *session.posargs, *out)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The property tests (tests/fuzz) with many examples: the `fuzz` hypothesis profile.

    2,000 examples per property by default; `CORTAN_FUZZ_EXAMPLES=20000 nox -s fuzz`
    runs longer. The per-test timeout is off; arguments go to pytest.
    """
    session.install("-e", ".[test]")
    env = {"HYPOTHESIS_PROFILE": "fuzz"}
    session.run("pytest", "tests/fuzz", "--timeout=0", "-q", *session.posargs, env=env)
