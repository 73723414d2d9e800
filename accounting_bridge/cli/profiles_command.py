"""`accounting-bridge profiles check`: open every profile of the file, read one thing from it, report each."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import AccountingError
from ..registry import connect
from .asyncrun import run_async
from .exits import ExitCode, exit_code_for, one_line
from .ledgers import probe, profiles_file, read_all, resolve

if TYPE_CHECKING:
    from ..sync.profiles import Profile
    from .app import Context

__all__ = ["run"]

@attrs.frozen
class Check:
    profile: str
    backend: str
    code: ExitCode
    detail: str
    seconds: float


def run(ctx: Context) -> int:
    path = profiles_file(ctx.args)
    checks = run_async(_check_all(ctx, read_all(ctx.args)))
    if ctx.args.json:
        ctx.out.json({"profiles": str(path), "results": [_as_json(check) for check in checks]})
    else:
        rows = [[c.profile, c.backend, _result(c), c.detail, f"{c.seconds:.2f} s"] for c in checks]
        ctx.out.table(f"Profiles in {path}", ["profile", "backend", "result", "detail", "time"], rows)
    return max((check.code for check in checks), default=ExitCode.OK)


async def _check_all(ctx: Context, profiles: dict[str, Profile]) -> list[Check]:
    return [await _check(ctx, profile) for profile in profiles.values()]


async def _check(ctx: Context, profile: Profile) -> Check:
    started = time.perf_counter()
    try:
        ledger = connect(profile.backend, **resolve(profile, ctx.redactor))
        async with ledger:
            detail = await probe(ledger)
        code = ExitCode.OK
    except AccountingError as exc:
        code, detail = exit_code_for(exc), ctx.redactor.text(one_line(exc))
    return Check(profile.name, profile.backend, code, detail, time.perf_counter() - started)


def _result(check: Check) -> str:
    return "ok" if check.code == ExitCode.OK else "FAILED"


def _as_json(check: Check) -> dict[str, Any]:
    return {
        "profile": check.profile,
        "backend": check.backend,
        "ok": check.code == ExitCode.OK,
        "exit_code": int(check.code),
        "detail": check.detail,
        "seconds": round(check.seconds, 3),
    }
