"""`accounting-bridge sandbox BACKEND [--port N] [--seed]`: serve one sandbox until Ctrl-C (or SIGTERM).

Everything it prints is TOML (notes are comments), so its output can be saved and passed to --profiles as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING, Any

from ..sandbox import create
from .asyncrun import run_async
from .exits import CliError, ExitCode
from .toml_table import toml_table

if TYPE_CHECKING:
    from ..sandbox import Sandbox
    from .app import Context

__all__ = ["profile_table", "run"]


def run(ctx: Context) -> int:
    sandbox = create(ctx.args.backend)  # no such backend / no sandbox: ConfigurationError (64)
    return run_async(_serve(ctx, sandbox))


def profile_table(sandbox: Sandbox, base_url: str) -> str:
    """The profile that reaches this sandbox: its credentials inline (allowed because of ``sandbox = true``)."""
    settings: dict[str, Any] = {"sandbox": True, "backend": sandbox.backend, "base_url": base_url}
    settings.update(sandbox.connect_settings())
    return toml_table(f"sandbox-{sandbox.backend}", settings)


async def _serve(ctx: Context, sandbox: Sandbox) -> int:
    stop = _stop_on_signals()
    host, port = ctx.args.host, ctx.args.port
    try:
        base_url = await sandbox.start(host=host, port=port)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliError(f"cannot listen on {host}:{port} ({reason}); choose another --port", ExitCode.USAGE) from None
    try:
        if ctx.args.seed:
            sandbox.seed()
        ctx.out.raw(
            f"# {sandbox.backend} sandbox serving on {base_url} until Ctrl-C"
            f"{' (seeded with sample customers and invoices)' if ctx.args.seed else ''}\n"
            "# a ready profile (save this output and pass it with --profiles):\n"
            + profile_table(sandbox, base_url)
        )
        await stop.wait()
    finally:
        await sandbox.stop()
    return 0


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (where the loop can handle signals; elsewhere Ctrl-C interrupts)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, stop.set)
    return stop
