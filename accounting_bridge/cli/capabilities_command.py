"""`accounting-bridge capabilities [BACKEND]`: the capability matrix of the installed adapters, or one backend's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ledger import Capability
from ..registry import available, load

if TYPE_CHECKING:
    from .app import Context
    from .output import Output

__all__ = ["matrix_rows", "print_matrix", "run"]


def run(ctx: Context) -> int:
    backends = [ctx.args.backend] if ctx.args.backend else available()
    supported = {name: load(name).capabilities for name in backends}  # an unknown name: ConfigurationError (64)
    if ctx.args.json:
        ctx.out.json({name: sorted(c.value for c in caps) for name, caps in supported.items()})
    else:
        print_matrix(ctx.out, supported)
    return 0


def matrix_rows(supported: dict[str, frozenset[Capability]]) -> list[list[str]]:
    return [[cap.value, *("yes" if cap in caps else "-" for caps in supported.values())] for cap in Capability]


def print_matrix(out: Output, supported: dict[str, frozenset[Capability]]) -> None:
    out.table("Capabilities", ["capability", *supported], matrix_rows(supported))
