"""Opening the ledger a command names: the profiles file, the profile, its secrets (remembered for redaction)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ledger import Capability
from ..registry import connect
from ..registry import load as load_adapter
from ..settings import did_you_mean, secret_settings
from ..sync.profiles import Profile, read_profiles
from .exits import CliError, ExitCode
from .paths import default_profiles

if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..transport.redact import Redactor
    from .app import Context

__all__ = ["open_ledger", "probe", "profiles_file", "read_all", "resolve"]

#: The cheapest reads that prove a profile reaches its books (address and credentials), in order of preference.
PROBES = (Capability.CUSTOMERS_LIST, Capability.INVOICES_LIST, Capability.COMPANIES_LIST, Capability.DOCUMENTS_LIST)


def profiles_file(args: argparse.Namespace) -> Path:
    path = Path(args.profiles) if getattr(args, "profiles", None) else default_profiles()
    if not path.is_file():
        given = "" if getattr(args, "profiles", None) else " (the default; pass --profiles FILE for another)"
        raise CliError(
            f"profiles file {path} does not exist{given}; write one with a table per profile, or start a sandbox "
            "with 'accounting-bridge sandbox BACKEND', which prints a ready one",
            ExitCode.USAGE,
        )
    return path


def read_all(args: argparse.Namespace) -> dict[str, Profile]:
    return read_profiles(profiles_file(args))


def resolve(profile: Profile, redactor: Redactor) -> dict[str, Any]:
    """The profile's settings with environment variables read; its secret values are redacted from then on."""
    settings = profile.resolve()
    secret_names = secret_settings(load_adapter(profile.backend).settings_class)
    redactor.add(*(str(settings[name]) for name in secret_names if settings.get(name) is not None))
    return settings


def open_ledger(ctx: Context) -> Ledger:
    """The ledger of the profile named by the command's PROFILE argument (not yet used: nothing is sent)."""
    profiles = read_all(ctx.args)
    name = ctx.args.profile
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        hint = did_you_mean(name, profiles, prefix="; ").removesuffix(")")
        raise CliError(
            f"no profile {name!r} in {profiles_file(ctx.args)}{hint} (profiles there: {known})", ExitCode.USAGE
        )
    profile = profiles[name]
    return connect(profile.backend, **resolve(profile, ctx.redactor))


async def probe(ledger: Ledger) -> str:
    """Read one thing (an authentication or connection problem raises its typed error); say what was read."""
    for capability in PROBES:
        if ledger.supports(capability):
            if capability is Capability.COMPANIES_LIST:
                await ledger.companies()
            else:
                async for _ in getattr(ledger, capability.value.split(".")[0]).list():
                    break
            return f"reached ({capability.value})"
    return "configured (the backend offers no read to check it with)"
