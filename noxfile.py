"""Sessions: tests (pytest + ruff + mypy --strict), lint, typecheck, bench.

Works with the single Python nox runs under (CI has one). The package is installed, not imported from the
source tree: `adapters/` only exists as `accounting_bridge.adapters` once installed.
"""

from __future__ import annotations

import os
import tempfile

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

HERE = os.path.dirname(os.path.abspath(__file__))


def _install(session: nox.Session) -> None:
    session.install(".[dev]")


def _lint(session: nox.Session) -> None:
    session.run("ruff", "check", "accounting_bridge", "adapters", "tests", "benchmarks", "noxfile.py")


def _typecheck(session: nox.Session) -> None:
    # Checked from outside the tree so mypy sees the installed accounting_bridge.adapters, not ./adapters.
    with tempfile.TemporaryDirectory() as outside:
        session.chdir(outside)
        session.run(
            "mypy", "--strict", "--config-file", os.path.join(HERE, "pyproject.toml"), "-p", "accounting_bridge"
        )
        session.chdir(HERE)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, then ruff and mypy --strict: all must pass."""
    _install(session)
    session.run("pytest", *session.posargs)
    _lint(session)
    _typecheck(session)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    _lint(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session)
    _typecheck(session)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios against a baseline measured in the same run; results in benchmarks/results.md."""
    _install(session)
    session.run("python", "benchmarks/run.py", *session.posargs)
