"""Adapter discovery through the entry-point group ``accounting_bridge.adapters``, and `connect()`."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .errors import ConfigurationError
from .ledger import Adapter, Ledger
from .settings import build_settings

__all__ = ["ENTRY_POINT_GROUP", "available", "connect", "load", "register", "unregister"]

ENTRY_POINT_GROUP = "accounting_bridge.adapters"

_registered: dict[str, type[Adapter]] = {}


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as for imports
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
    if ep is None:
        raise ConfigurationError(
            f"no adapter named {name!r}; installed adapters: {', '.join(available()) or '(none)'}"
        )
    try:
        adapter = ep.load()
    except Exception as exc:
        raise ConfigurationError(
            f"adapter {name!r} is registered ({ep.value}) but could not be loaded: {exc.__class__.__name__}: {exc}"
        ) from exc
    if not isinstance(adapter, type) or not hasattr(adapter, "settings_class"):
        raise ConfigurationError(f"entry point {name!r} ({ep.value}) is not an adapter class")
    return adapter


def connect(name: str, **settings: Any) -> Ledger:
    """A `Ledger` for the adapter `name`, with `settings` validated against its settings class.

    ``async with ab.connect("runmyaccounts", tenant="muster", api_key="...") as ledger: ...``
    """
    adapter_cls = load(name)
    parsed = build_settings(adapter_cls.settings_class, settings, backend=name)
    adapter = adapter_cls(parsed)  # type: ignore[call-arg]
    return Ledger(adapter)
