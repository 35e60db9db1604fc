"""Developer tasks. `nox` runs lint, typecheck and tests; bench, e2e and fuzz run on request.

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
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.12")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over cortan, tests and this file."""
    session.install("-e", ".[dev]")
    session.run("mypy")
