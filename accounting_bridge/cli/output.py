"""Terminal output through rich (the optional extra `cli`): tables, JSON, and a progress display that is a live bar
on a terminal and plain lines otherwise (logs, pipes, CI)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from .exits import CliError, ExitCode

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["INSTALL_HINT", "Output", "ProgressUpdate", "require_rich"]

INSTALL_HINT = "pip install 'accounting-bridge[cli]'"

PIPE_WIDTH = 160

#: Called with the number of items finished and the counts per outcome so far.
ProgressUpdate = Callable[[int, Mapping[str, int]], None]


def require_rich() -> None:
    """Fail with the install command when the extra `cli` is missing (`--help` works without it)."""
    try:
        import rich  # noqa: F401
    except ImportError:
        raise CliError(
            f"the command line needs the optional extra 'cli' (rich); install it with: {INSTALL_HINT}", ExitCode.USAGE
        ) from None


class Output:
    """Where a command writes: `out` for results, `err` for progress under --json and for errors."""

    def __init__(self, *, json_mode: bool = False, stdout: IO[str] | None = None, stderr: IO[str] | None = None):
        self.json_mode = json_mode
        self.out: Console = _console(stdout or sys.stdout)
        self.err: Console = _console(stderr or sys.stderr)

    def line(self, text: str = "") -> None:
        self.out.print(text, markup=False)

    def raw(self, text: str) -> None:
        """Text exactly as given (a TOML table, JSON): no wrapping, no markup."""
        file = self.out.file
        file.write(text)
        file.flush()

    def json(self, data: Any) -> None:
        self.raw(json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def table(self, title: str | None, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        from rich.table import Table
        from rich.text import Text

        if title:  # a line of its own: a table's title would be wrapped to the table's width
            self.line(title)
        # Text, not markup: a cell like "[runmyaccounts] ..." is data, never a style tag
        table = Table()
        for header in headers:
            table.add_column(Text(header), overflow="fold")
        for row in rows:
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        self.out.print(table)

    @contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[ProgressUpdate]:
        """A progress display for `total` items: a live bar on a terminal, otherwise a plain line at every
        tenth of the way and at the end (so logs stay short and still show movement)."""
        console = self.err if self.json_mode else self.out
        if console.is_terminal:
            with _live_bar(console, total, label) as update:
                yield update
        else:
            yield _PlainLines(console, total, label)


def _console(file: IO[str]) -> Console:
    from rich.console import Console

    console = Console(file=file, highlight=False)
    if not console.is_terminal:  # a log or a pipe: keep table rows whole instead of folding at 80 columns
        console.width = max(console.width, PIPE_WIDTH)
    return console


def describe_counts(counts: Mapping[str, int]) -> str:
    shown = [f"{name.replace('_', ' ')} {count}" for name, count in counts.items() if count]
    return ", ".join(shown) or "nothing yet"


class _PlainLines:
    def __init__(self, console: Console, total: int | None, label: str) -> None:
        self._console = console
        self._total = total
        self._label = label
        self._next_step = 1

    def __call__(self, done: int, counts: Mapping[str, int]) -> None:
        if self._total:
            step = done * 10 // self._total
            if step < self._next_step and done < self._total:
                return
            self._next_step = step + 1
        of_total = f"/{self._total}" if self._total is not None else ""
        self._console.print(f"{self._label}: {done}{of_total} ({describe_counts(counts)})", markup=False)
        self._console.file.flush()


@contextmanager
def _live_bar(console: Console, total: int | None, label: str) -> Iterator[ProgressUpdate]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(label, total=total, counts="")

        def update(done: int, counts: Mapping[str, int]) -> None:
            bar.update(task, completed=done, counts=describe_counts(counts))

        yield update
