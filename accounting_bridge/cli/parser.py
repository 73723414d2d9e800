"""The command line's grammar (argparse): commands, arguments, and usage errors as exit code 64."""

from __future__ import annotations

import argparse
import datetime as _dt
from typing import NoReturn

from ..models import InvoiceStatus
from .exits import CliError, ExitCode

__all__ = ["LIST_KINDS", "PULL_KINDS", "PUSH_KINDS", "build_parser"]

PUSH_KINDS = ("customers", "invoices", "payments", "registrations", "documents")
LIST_KINDS = ("customers", "invoices", "payments", "bank_transactions", "documents")
PULL_KINDS = ("invoices", "payments", "bank_transactions")

EPILOG = """exit codes: 0 done, 1 some items failed, 2 some unknown or in conflict (look before rerunning),
64 usage or input error, 69 backend unreachable or authentication refused, 130 interrupted"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see '{self.prog} --help')", ExitCode.USAGE)


def _kind(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def _date(text: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-30, got {text!r}") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="accounting-bridge",
        description="One neutral command line over Run my Accounts, smallinvoice and Multi-Regnskab.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    profiles = _Parser(add_help=False)
    profiles.add_argument("--profiles", metavar="FILE", help="profiles TOML (default: in your config folder)")
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    journal = _Parser(add_help=False)
    journal.add_argument("--journal", metavar="PATH", help="journal: SQLite file or postgresql:// URL "
                         "(default: in your data folder)")

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str, *parents: _Parser) -> argparse.ArgumentParser:
        every = [common, *parents]
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=every)
        sub.set_defaults(command=name)
        return sub

    demo = command("demo", "run the neutral round trip on every backend's sandbox (in process, no network)")
    demo.add_argument("--backend", action="append", metavar="NAME", help="only this backend (repeatable)")

    sandbox = command("sandbox", "serve one backend's sandbox until Ctrl-C and print a ready profile")
    sandbox.add_argument("backend", metavar="BACKEND")
    sandbox.add_argument("--port", type=_port, default=0, help="port to listen on (default: any free port)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sandbox.add_argument("--seed", action="store_true", help="start with realistic customers and invoices")

    capabilities = command("capabilities", "what each backend can do", as_json)
    capabilities.add_argument("backend", nargs="?", metavar="BACKEND")

    profiles_cmd = command("profiles", "work with the profiles file")
    profiles_cmd.add_argument("action", choices=["check"], help="check: connect to each profile and report")
    profiles_cmd.add_argument("--profiles", metavar="FILE", help="profiles TOML (default: in your config folder)")
    profiles_cmd.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    list_cmd = command("list", "list what a ledger holds", profiles, as_json)
    list_cmd.add_argument("profile", metavar="PROFILE")
    list_cmd.add_argument("kind", metavar="KIND", type=_kind, choices=LIST_KINDS, help=", ".join(LIST_KINDS))
    list_cmd.add_argument("--since", type=_date, metavar="DATE")
    list_cmd.add_argument("--until", type=_date, metavar="DATE")
    list_cmd.add_argument("--status", type=_kind, choices=[s.value for s in InvoiceStatus], help="invoices only")

    push = command("push", "send items from a JSON or JSON Lines file, exactly once", profiles, journal, as_json)
    push.add_argument("profile", metavar="PROFILE")
    push.add_argument("kind", metavar="KIND", type=_kind, choices=PUSH_KINDS, help=", ".join(PUSH_KINDS))
    push.add_argument("file", metavar="FILE", help="a JSON array or JSON Lines of neutral models ('-' = stdin)")
    push.add_argument("--concurrency", type=_positive, default=8, help="items in flight (default: 8)")

    pull = command("pull", "read what is new since the last pull (the checkpoint moves when it ends cleanly)",
                   profiles, journal, as_json)
    pull.add_argument("profile", metavar="PROFILE")
    pull.add_argument("kind", metavar="KIND", type=_kind, choices=PULL_KINDS, help=", ".join(PULL_KINDS))
    pull.add_argument("--feed", metavar="NAME", help="checkpoint name (default: PROFILE-KIND)")
    pull.add_argument("--since", type=_date, metavar="DATE", help="ignore items dated before it")
    pull.add_argument("--account", metavar="ACCOUNT", help="the bank account (bank_transactions only)")
    return parser
