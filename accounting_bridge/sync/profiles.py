"""Profiles: named ledger settings from a mapping or a TOML file, with secrets read from environment variables.

A profiles file has one top-level table per profile: ``backend = "..."`` plus the adapter's settings. A secret is
written ``{ env = "VAR" }``; a secret written inline is refused unless the table says ``sandbox = true`` (sandbox
credentials are not secrets). A mapping (built by the caller's own code, e.g. from its secret store) is taken as
it is: ``{"env": "VAR"}`` values are resolved there too, inline secrets are accepted.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigurationError
from ..registry import load as load_adapter
from ..settings import secret_settings

__all__ = ["EnvRef", "Profile", "ProfilesSource", "load_profiles", "read_profiles"]

ProfilesSource = Mapping[str, Mapping[str, Any]] | str | os.PathLike[str]

#: Keys of a profile table that are not adapter settings.
BACKEND, SANDBOX = "backend", "sandbox"
#: Settings a profile cannot carry: objects that only code can make (the pool supplies the session).
_NOT_IN_PROFILES = frozenset({"session"})


@attrs.frozen
class EnvRef:
    """A setting read from the environment variable `variable` when the profile is opened."""

    variable: str


@attrs.frozen(kw_only=True)
class Profile:
    """One profile as written: `settings` may hold `EnvRef`s, resolved by `resolve()`."""

    name: str
    backend: str
    settings: Mapping[str, Any] = attrs.field(repr=lambda s: f"<{len(s)} settings>")
    sandbox: bool = False
    origin: str | None = None  # the file it was read from

    def resolve(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The settings for `ab.connect(profile.backend, **settings)`, environment variables read now."""
        env = os.environ if environ is None else environ
        resolved: dict[str, Any] = {}
        for key, value in self.settings.items():
            if isinstance(value, EnvRef):
                if value.variable not in env:
                    raise _error(
                        self.origin,
                        f"profile {self.name!r}: setting {key!r} reads the environment variable "
                        f"{value.variable!r}, which is not set",
                    )
                value = env[value.variable]
            resolved[key] = value
        return resolved


def load_profiles(source: ProfilesSource, *, environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Every profile of `source` (a mapping, or the path of a TOML file) as ``{name: {"backend": ..., **settings}}``
    with ``{ env = "VAR" }`` values read from the environment. Any problem is a `ConfigurationError` naming the
    file, the profile, the setting and the variable — never a value."""
    return {
        name: {BACKEND: profile.backend, **profile.resolve(environ)} for name, profile in read_profiles(source).items()
    }


def read_profiles(source: ProfilesSource) -> dict[str, Profile]:
    """The profiles of `source`, checked (structure, backend, no inline secret in a file) but not resolved."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return _profiles(_read_toml(path), origin=str(path))
    if isinstance(source, Mapping):
        return _profiles(source, origin=None)
    raise ConfigurationError(f"profiles: expected a mapping or the path of a TOML file, not {type(source).__name__}")


def _read_toml(path: Path) -> Mapping[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as file:
            tables: dict[str, Any] = tomllib.load(file)
            return tables
    except FileNotFoundError:
        raise ConfigurationError(f"profiles file {path} does not exist") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"profiles file {path} cannot be read ({reason})") from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: invalid TOML {_where(exc)}") from None


_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _where(exc: ValueError) -> str:
    """ "at line N, column M: reason" from a TOMLDecodeError (its message names positions and keys, never values)."""
    message = str(exc.args[0]) if exc.args else str(exc)
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    found = _POSITION.search(message)
    if found:
        message = message[: found.start()]
        line, column = line or int(found.group(1)), column or int(found.group(2))
    if line is None:
        return f"({message})"
    return f"at line {line}, column {column}: {message}"


def _profiles(tables: Mapping[str, Any], *, origin: str | None) -> dict[str, Profile]:
    return {str(name): _profile(str(name), table, origin) for name, table in tables.items()}


def _profile(name: str, table: Any, origin: str | None) -> Profile:
    if not isinstance(table, Mapping):
        raise _error(origin, f'profile {name!r} must be a table with backend = "..." and its settings')
    backend = table.get(BACKEND)
    if not isinstance(backend, str) or not backend:
        typo = difflib.get_close_matches(BACKEND, [str(key) for key in table if key != BACKEND], n=1, cutoff=0.7)
        hint = f" (is `{typo[0]}` meant to be `backend`?)" if typo else ""
        raise _error(origin, f'profile {name!r}: backend = "..." (the adapter\'s name) is missing{hint}')
    sandbox = table.get(SANDBOX, False)
    if not isinstance(sandbox, bool):
        raise _error(origin, f"profile {name!r}: sandbox must be true or false")
    try:
        secrets = secret_settings(load_adapter(backend).settings_class)
    except ConfigurationError as exc:
        raise _error(origin, f"profile {name!r}: {exc.message}") from None
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key in (BACKEND, SANDBOX):
            continue
        if key in _NOT_IN_PROFILES:
            raise _error(origin, f"profile {name!r}: setting {key!r} cannot be given in a profile")
        settings[key] = _setting(name, key, value, origin)
        inline_secret = key in secrets and not isinstance(settings[key], EnvRef)
        if inline_secret and origin is not None and not sandbox:
            raise _error(
                origin,
                f'profile {name!r}: setting {key!r} is a secret: write it as {key} = {{ env = "VARIABLE" }} '
                "(inline values are accepted only in a table with sandbox = true)",
            )
    return Profile(name=name, backend=backend, settings=settings, sandbox=sandbox, origin=origin)


def _setting(name: str, key: str, value: Any, origin: str | None) -> Any:
    if not isinstance(value, Mapping):
        return value
    variable = value.get("env")
    if set(value) != {"env"} or not isinstance(variable, str) or not variable:
        raise _error(
            origin,
            f'profile {name!r}: setting {key!r}: a table value must be {{ env = "VARIABLE" }} and nothing else',
        )
    return EnvRef(variable)


def _error(origin: str | None, message: str) -> ConfigurationError:
    return ConfigurationError(f"{origin}: {message}" if origin else f"profiles: {message}")
