"""Sessions: tests (pytest + ruff + mypy --strict) on every supported Python, lint, typecheck, bench.

`nox -s tests` runs the suite once per Python in `PYTHONS`. Interpreters are looked up on PATH and in pyenv's
version folders (without changing the machine's global pyenv setting). A missing interpreter is an error when the
environment variable CI is set, and a skip with a message otherwise (nox's own rule). The package is installed,
not imported from the source tree: `adapters/` only exists as `accounting_bridge.adapters` once installed.
"""

from __future__ import annotations

import glob
import os
import tempfile

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"  # no interpreter downloads: only the machine's own Pythons count

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
PYENV_ROOT = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def _pyenv_bin_dirs() -> list[str]:
    """pyenv's per-version bin folders, newest patch first, for the Pythons we test on."""
    found: list[str] = []
    for minor in PYTHONS:
        dirs = sorted(glob.glob(os.path.join(PYENV_ROOT, "versions", f"{minor}.*", "bin")), reverse=True)
        found.extend(d for d in dirs if os.path.exists(os.path.join(d, f"python{minor}")))
    return found


# Only this nox process sees the extra folders: pythonX.Y from pyenv becomes findable without `pyenv global`.
os.environ["PATH"] = os.pathsep.join([*_pyenv_bin_dirs(), os.environ.get("PATH", "")])


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


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite, then ruff and mypy --strict: all must pass, on each Python."""
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
    """Benchmarks (issue 9): every figure against its baseline in the same run, medians of interleaved rounds,
    servers in a separate process; writes benchmarks/RESULTS.md. `nox -s bench -- --quick` takes under 2 minutes."""
    _install(session)
    session.run("python", "benchmarks/run.py", *session.posargs)
