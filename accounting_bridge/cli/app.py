"""`main()`: parse, check that the extra is installed, run one command, turn any error into one line + exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

import attrs

from ..transport.redact import Redactor
from .exits import ExitCode, exit_code_for, one_line
from .output import Output, require_rich
from .parser import build_parser

__all__ = ["Context", "main"]

PROG = "accounting-bridge"

#: command name → module of this package with `run(ctx) -> int`; imported only when that command runs.
COMMANDS = {
    "demo": "demo_command",
    "sandbox": "sandbox_command",
    "capabilities": "capabilities_command",
    "profiles": "profiles_command",
    "list": "list_command",
    "push": "push_command",
    "pull": "pull_command",
}


@attrs.define
class Context:
    """What a command gets: its arguments, where to write, and the redactor that knows the secrets it loaded."""

    args: argparse.Namespace
    out: Output
    redactor: Redactor = attrs.Factory(Redactor)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    redactor = Redactor()
    try:
        args = build_parser().parse_args(arguments)  # --help works without the extra
        require_rich()
        ctx = Context(args=args, out=Output(json_mode=bool(getattr(args, "json", False))), redactor=redactor)
        module = importlib.import_module(f".{COMMANDS[args.command]}", __package__)
        code: int = module.run(ctx)
        return code
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Python's own tools do
        _silence_stdout()
        return ExitCode.FAILED
    except KeyboardInterrupt:
        _say("interrupted; run the same command again to finish (a push's journal knows what was sent)")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        if "--debug" in arguments:
            _say(redactor.text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))).rstrip())
        _say(redactor.text(f"error: {one_line(exc)}"))
        return exit_code_for(exc)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _say(text: str) -> None:
    sys.stdout.flush()
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)
