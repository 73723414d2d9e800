"""Adapter discovery through the entry-point group ``accounting_bridge.adapters``, and `connect()`."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .errors import ConfigurationError, register_credential_settings
from .ledger import Adapter, Ledger
from .settings import build_settings, did_you_mean

__all__ = ["ENTRY_POINT_GROUP", "available", "connect", "load", "refresh", "register", "unregister"]

ENTRY_POINT_GROUP = "accounting_bridge.adapters"

_registered: dict[str, type[Adapter]] = {}


#: The installed entry points, read once per process: scanning every distribution's metadata costs more than
#: building a ledger. Read again when `sys.path` changes, or on `refresh()` (after installing into a running process).
_scanned: tuple[tuple[str, ...], dict[str, EntryPoint]] | None = None
_loaded: dict[str, type[Adapter]] = {}


def refresh() -> None:
    """Forget the entry points read so far: the next look-up scans the installed distributions again."""
    global _scanned
    _scanned = None
    _loaded.clear()


def _entry_points() -> dict[str, EntryPoint]:
    global _scanned
    path = tuple(sys.path)
    if _scanned is not None and _scanned[0] == path:
        return _scanned[1]
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as for imports
    _loaded.clear()
    _scanned = (path, found)
    return found


def available() -> list[str]:
    """Names of every adapter that can be connected to: installed entry points and runtime registrations."""
    return sorted(set(_entry_points()) | set(_registered))


def register(name: str, adapter: type[Adapter]) -> None:
    """Register an adapter class at runtime (takes precedence over an entry point of the same name)."""
    _registered[name] = adapter


def unregister(name: str) -> None:
    _registered.pop(name, None)


def load(name: str) -> type[Adapter]:
    """The adapter class registered under `name`; `ConfigurationError` listing what is installed otherwise."""
    if name in _registered:
        return _registered[name]
    ep = _entry_points().get(name)
    if name in _loaded:
        return _loaded[name]
    if ep is None:
        raise ConfigurationError(
            f"no adapter named {name!r}{did_you_mean(name, available())}; "
            f"installed adapters: {', '.join(available()) or '(none)'}"
        )
    try:
        adapter = ep.load()
    except Exception as exc:
        raise ConfigurationError(
            f"adapter {name!r} is registered ({ep.value}) but could not be loaded: {exc.__class__.__name__}: {exc}"
        ) from exc
    if not isinstance(adapter, type) or not hasattr(adapter, "settings_class"):
        raise ConfigurationError(f"entry point {name!r} ({ep.value}) is not an adapter class")
    _loaded[name] = adapter
    return adapter


def connect(name: str, **settings: Any) -> Ledger:
    """A `Ledger` for the adapter `name`, with `settings` validated against its settings class.

    ``async with ab.connect("runmyaccounts", tenant="muster", api_key="...") as ledger: ...``
    """
    adapter_cls = load(name)
    register_credential_settings(
        getattr(adapter_cls, "name", name),
        getattr(adapter_cls, "credential_settings", None),
        refused_with_403=getattr(adapter_cls, "credential_refused_with_403", False),
    )
    parsed = build_settings(adapter_cls.settings_class, settings, backend=name)
    if getattr(parsed, "shared_state", None) is not None:
        from .fleet.redis_state import with_shared_tokens

        parsed = with_shared_tokens(parsed, backend=name)
    adapter = adapter_cls(parsed)  # type: ignore[call-arg]
    return Ledger(adapter)
