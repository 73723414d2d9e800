"""Every code block of README.md and adapters/*/README.md is executed (issue 15 item 10).

One test per block, id ``README.md:23`` (the file and the line of its opening fence). Each block runs in a fresh
interpreter (`run_block.py`) in a scratch directory; the rules are in README.md, section "Examples in this README".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("run_block.py")
LANGUAGES = {"python", "toml", "console", "sh", "json", "jsonl"}
MARKER = re.compile(r"^<!--\s*(sandbox|file):\s*(.+?)\s*-->$")
FENCE = re.compile(r"^\s*```(.*)$")  # also indented (inside a list item)
BLOCK_TIMEOUT = 90.0


@attrs.frozen
class Block:
    readme: Path
    line: int  # of the opening fence, 1-based
    language: str
    source: str
    sandboxes: tuple[str, ...] = ()
    file: str | None = None

    @property
    def label(self) -> str:
        return f"{self.readme.relative_to(REPO)}:{self.line}"


def readmes() -> list[Path]:
    return [REPO / "README.md", *sorted(REPO.glob("adapters/*/README.md"))]


def markers(lines: list[str], fence: int) -> dict[str, str]:
    """The `<!-- key: value -->` comments right above the fence at index `fence`."""
    found: dict[str, str] = {}
    index = fence - 1
    while index >= 0 and (match := MARKER.match(lines[index].strip())):
        found[match.group(1)] = match.group(2)
        index -= 1
    return found


def parse_blocks(readme: Path) -> list[Block]:
    lines = readme.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise AssertionError(f"{readme}:{index + 1}: code fence never closed")
        found = markers(lines, index)
        sandboxes = tuple(s.strip() for s in found.get("sandbox", "").split(",") if s.strip())
        blocks.append(
            Block(
                readme=readme,
                line=index + 1,
                language=opening.group(1).strip(),
                source=textwrap.dedent("\n".join(lines[index + 1 : end])) + "\n",
                sandboxes=sandboxes,
                file=found.get("file"),
            )
        )
        index = end + 1
    return blocks


ALL_BLOCKS = [block for readme in readmes() for block in parse_blocks(readme)]


def test_every_readme_has_blocks() -> None:
    assert {b.readme for b in ALL_BLOCKS} == set(readmes()) and len(readmes()) == 4


class BlockRunner:
    """`run_block.py --serve`: imports once, then runs each block in a fresh forked process (fresh interpreter
    per block where there is no fork)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        if hasattr(os, "fork"):
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, str(RUNNER), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert self.process.stdout is not None and json.loads(self.process.stdout.readline()) == {"ready": True}

    def run(self, argv: list[str], cwd: Path) -> tuple[int, str, str]:
        if self.process is None:
            done = subprocess.run(  # noqa: S603
                [sys.executable, str(RUNNER), *argv], cwd=cwd, capture_output=True, text=True,
                timeout=BLOCK_TIMEOUT, check=False,
            )  # fmt: skip
            return done.returncode, done.stdout, done.stderr
        assert self.process.stdin is not None and self.process.stdout is not None
        out, err = cwd / "block.stdout", cwd / "block.stderr"
        request = {"argv": argv, "cwd": str(cwd), "out": str(out), "err": str(err), "timeout": BLOCK_TIMEOUT}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        status = json.loads(self.process.stdout.readline())["status"]
        return status, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")

    def close(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def runner() -> Iterator[BlockRunner]:
    served = BlockRunner()
    yield served
    served.close()


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.label for b in ALL_BLOCKS])
def test_readme_block_runs(block: Block, tmp_path: Path, runner: BlockRunner) -> None:
    assert block.language in LANGUAGES, (
        f"{block.label}: a code block needs one of the languages {sorted(LANGUAGES)} "
        f"(got {block.language or 'none'!r}); every block is executed"
    )
    assert block.language not in {"json", "jsonl"} or block.file, f"{block.label}: a data block needs a file: marker"
    for earlier in parse_blocks(block.readme):  # files the README's earlier blocks declare
        if earlier.line < block.line and earlier.file:
            provide(earlier, tmp_path)
    status, out, err = run_in(block, tmp_path, runner)
    assert status == 0, f"{block.label} failed (status {status}):\n{err[-4000:]}\n{out[-1000:]}"


def run_in(block: Block, scratch: Path, runner: BlockRunner) -> tuple[int, str, str]:
    source = scratch / "readme-block.txt"
    source.write_text(block.source, encoding="utf-8")
    argv = [block.language, str(source), "--label", block.label]
    for backend in block.sandboxes:
        argv += ["--sandbox", backend]
    return runner.run(argv, scratch)


def provide(block: Block, scratch: Path) -> None:
    """The file an earlier block declares with `<!-- file: NAME -->`: the block's text, for the blocks after it."""
    assert block.file is not None
    (scratch / block.file).write_text(block.source, encoding="utf-8")


# --- the runner's own rules (no README needed) -------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    return readme


def test_markers_and_languages_are_read(tmp_path: Path) -> None:
    readme = write(
        tmp_path,
        "intro\n<!-- file: profiles.toml -->\n```toml\n[a]\nbackend = \"memory\"\n```\n"
        "<!-- sandbox: smallinvoice, runmyaccounts -->\n```python\nprint(1)\n```\n```\nbare\n```\n"
        "- a list item:\n  ```sh\n  echo indented\n  ```\n",
    )
    first, second, third, fourth = parse_blocks(readme)
    assert (first.language, first.file, first.line) == ("toml", "profiles.toml", 3)
    assert second.sandboxes == ("smallinvoice", "runmyaccounts") and second.source == "print(1)\n"
    assert third.language == ""  # refused by test_readme_block_runs: a bare fence is not exempt
    assert (fourth.language, fourth.source) == ("sh", "echo indented\n")  # an indented fence is a block too


def test_runner_fails_a_block_that_raises_or_reaches_an_unsandboxed_backend(tmp_path: Path, runner: BlockRunner) -> None:
    def run(kind: str, text: str) -> str:
        block = tmp_path / "block.txt"
        block.write_text(text, encoding="utf-8")
        status, _out, err = runner.run([kind, str(block)], tmp_path)
        assert status != 0
        return err

    top_level_await = "import accounting_bridge as ab\nasync with ab.connect('memory') as ledger:\n    1 / 0\n"
    assert "ZeroDivisionError" in run("python", top_level_await)
    real_host = "import accounting_bridge as ab\nab.connect('smallinvoice', client_id='x', client_secret='y')\n"
    assert "<!-- sandbox: smallinvoice -->" in run("python", real_host)
    shell = "$ python -c 'raise SystemExit(3)'  # exit 3\n$ python -c 'raise SystemExit(4)'\n"
    assert "exited 4, the README expects 0" in run("console", shell)
    assert "no extra 'nope'" in run("sh", "pip install '.[nope]'\n")


def test_runner_runs_profiles_and_a_sandbox_command(tmp_path: Path, runner: BlockRunner) -> None:
    def status(kind: str, text: str) -> tuple[int, str]:
        block = tmp_path / "block.txt"
        block.write_text(text, encoding="utf-8")
        code, _out, err = runner.run([kind, str(block)], tmp_path)
        return code, err

    profile = '[acme]\nbackend = "smallinvoice"\nclient_id = "acme-app"\nclient_secret = { env = "ACME_SI_SECRET" }\n'
    assert status("toml", profile) == (0, "")
    code, err = status("toml", profile.replace("client_id", "client_idd"))
    assert code != 0 and "did you mean `client_id`?" in err
    assert status("sh", "accounting-bridge sandbox runmyaccounts\n")[0] == 0  # served, printed, stopped by Ctrl-C


def test_shell_commands_stay_out_of_the_readers_home_and_off_real_hosts(tmp_path: Path, runner: BlockRunner) -> None:
    def run(kind: str, text: str) -> tuple[int, str]:
        block = tmp_path / "block.txt"
        block.write_text(text, encoding="utf-8")
        code, _out, err = runner.run([kind, str(block)], tmp_path)
        return code, err

    in_scratch = (
        "python -c 'import os, sys; from accounting_bridge.cli.paths import default_journal, default_profiles; "
        "sys.exit(0 if all(str(p).startswith(os.getcwd()) for p in (default_journal(), default_profiles())) else 5)'\n"
    )
    assert run("sh", in_scratch) == (0, "")
    (tmp_path / "profiles.toml").write_text(
        '[shop]\nbackend = "runmyaccounts"\ntenant = "shop"\napi_key = { env = "SHOP_RMA_KEY" }\n', encoding="utf-8"
    )
    code, err = run("console", "$ accounting-bridge profiles check --profiles profiles.toml  # exit 69\n")
    assert code != 0 and "profile 'shop' (runmyaccounts) would reach a real host" in err
