"""On a terminal `push` draws a live progress bar with the counts (elsewhere it writes plain lines: see
test_sandbox_push)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from .helpers import SCRIPT, scratch_env


def test_on_a_terminal_push_draws_a_bar_with_the_counts(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text('[books]\nbackend = "memory"\n')
    (tmp_path / "customers.jsonl").write_text(
        "".join(json.dumps({"number": f"K-{n}", "name": f"Kunde {n}"}) + "\n" for n in range(20))
    )
    argv = [str(SCRIPT), "push", "books", "customers", str(tmp_path / "customers.jsonl"),
            "--profiles", str(tmp_path / "profiles.toml")]

    terminal, child_side = pty.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        argv, stdout=child_side, stderr=child_side, env={**scratch_env(tmp_path), "TERM": "xterm", "COLUMNS": "100"}
    )
    os.close(child_side)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # EIO: the child's side of the terminal is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    status = process.wait(timeout=60)

    text = shown.decode(errors="replace")
    assert status == 0, text
    assert "━" in text and "20/20" in text and "created 20" in text  # the bar, its count and the outcome counts
    assert "push customers: " not in text  # no plain lines on a terminal
