"""Running the real `accounting-bridge` console script in a subprocess, in a scratch home of its own."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import SCRIPT, scratch_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return scratch_env(tmp_path)


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Any:
    """`cli("list", "acme", "invoices", ...)`: the command's completed process (text, stdout and stderr apart)."""
    assert SCRIPT.exists(), f"the console script {SCRIPT} is missing: pip install -e '.[test]'"

    def run(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script
            [str(SCRIPT), *args],
            capture_output=True,
            text=True,
            env={**env, **(extra_env or {})},
            cwd=tmp_path,
            timeout=timeout,
            check=False,
        )

    return run
