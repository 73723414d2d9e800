"""One protocol for every adapter's local sandbox server, its common fault switches, and discovery by backend name.

    from accounting_bridge import sandbox

    async with sandbox.create("smallinvoice") as sb:             # or: url = await sb.start(port=0) ... sb.stop()
        async with ab.connect(sb.backend, base_url=sb.base_url, **sb.connect_settings()) as ledger: ...
        acme = sb.add_tenant("acme")                             # separate books; its connect settings

Every sandbox keeps separate books per tenant (`add_tenant(name)` returns that tenant's connect settings), serves on
127.0.0.1 over real sockets, and has one fault vocabulary (`Faults`) on top of its own richer switches.
Adapters name their sandbox lazily with a class attribute ``sandbox = "module:Class"``; `memory` has none.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs
from aiohttp import web

from .errors import ConfigurationError

__all__ = [
    "WRITE_METHODS",
    "FaultRule",
    "Faults",
    "Sandbox",
    "SandboxServer",
    "available_sandboxes",
    "create",
    "sandbox_class",
]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@attrs.define
class FaultRule:
    """One queued fault of the common vocabulary, consumed by the next `count` matching requests."""

    kind: str  # "status": answered before the request is handled; "drop": cut after a write was committed
    count: int
    status: int = 0
    headers: Mapping[str, str] = attrs.field(factory=dict)
    method: str | None = None  # only requests with this method (any by default)
    path: str | None = None  # only requests whose path contains this text (any by default)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or self.path in path)


class Faults:
    """The fault switches every sandbox understands; a sandbox's own subclass adds richer ones.

    - `latency`: seconds every request waits before it is handled;
    - `fail_next(status, count=, method=, path=, headers=)`: the next matching requests are answered `status`
      (in the backend's error format) without being performed;
    - `rate_limit_next(count=, reset=)`: the next requests get 429 with the backend's rate-limit headers;
    - `drop_after_commit(count=, method=, path=)`: the next matching writes are performed, then the connection is cut
      before the answer (the write landed, the client cannot know);
    - `expire_tokens()`: every access token issued so far expires now (a no-op on backends without tokens).
    Rules apply in the order they were queued; `pending()` counts what has not hit yet, `clear()` forgets it.
    """

    def __init__(self, *, expire_tokens: Callable[[], None] | None = None) -> None:
        self.latency = 0.0
        self.rules: list[FaultRule] = []
        self._expire_tokens = expire_tokens

    def __repr__(self) -> str:
        return f"{type(self).__name__}(latency={self.latency}, pending={self.pending()})"

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        _check(status=status, count=count)
        self.rules.append(FaultRule("status", count, status, dict(headers or {}), _upper(method), path))

    def rate_limit_next(self, *, count: int = 1, reset: int = 1) -> None:
        self.fail_next(429, count=count, headers=self.rate_limit_headers(reset))

    def rate_limit_headers(self, reset: int) -> dict[str, str]:
        """The headers of an injected 429; sandboxes override with their backend's own."""
        return {"Retry-After": str(reset)}

    def drop_after_commit(self, *, count: int = 1, method: str | None = None, path: str | None = None) -> None:
        _check(count=count)
        self.rules.append(FaultRule("drop", count, method=_upper(method), path=path))

    def expire_tokens(self) -> None:
        if self._expire_tokens is not None:
            self._expire_tokens()

    def pending(self, kind: str | None = None) -> int:
        """How many queued faults have not hit yet ("status", "drop" or all)."""
        return sum(rule.count for rule in self.rules if kind in (None, rule.kind))

    def clear(self) -> None:
        self.rules.clear()

    # --- used by the servers ---------------------------------------------------------------------------------

    def take(self, kind: str, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.kind == kind and rule.matches(method, path):
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
                return rule
        return None


def _check(*, count: int, status: int = 500) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigurationError(f"fault 'count' must be a whole number of at least 1, not {count!r}")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigurationError(f"fault 'status' must be an HTTP status code (100-599), not {status!r}")


def _upper(method: str | None) -> str | None:
    return method.upper() if method else None


@runtime_checkable
class Sandbox(Protocol):
    """What every adapter's sandbox server offers (see the module docstring)."""

    backend: str
    faults: Faults

    @property
    def base_url(self) -> str: ...

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str: ...

    def connect_settings(self, tenant: str | None = None) -> dict[str, Any]: ...

    def add_tenant(self, tenant: str) -> dict[str, Any]: ...

    def seed(self, *, tenant: str | None = None, customers: int = 3, invoices: int = 5) -> None: ...

    def request_count(self, method: str | None = None, path: str | None = None, status: int | None = None) -> int: ...

    async def stop(self) -> None: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class SandboxServer:
    """Shared machinery of the sandboxes: serving an app, the common fault middleware, request counts, `async with`.

    A subclass sets `backend`, builds `faults` (a `Faults`) and its app with `count_middleware` outermost and
    `fault_middleware` where its backend applies faults, and overrides `fault_response` to answer an injected
    status in its backend's error format.
    """

    backend: str = ""
    faults: Faults

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._served: list[tuple[str, str, int]] = []  # (method, path, status) of every answered request

    def __repr__(self) -> str:
        where = f"{self._host}:{self._port}" if self._runner is not None else "not started"
        return f"{type(self).__name__}(backend={self.backend!r}, {where})"

    @property
    def port(self) -> int:
        return self._port

    async def serve(self, app: web.Application, host: str, port: int) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner, self._host, self._port = runner, host, int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def request_count(self, method: str | None = None, path: str | None = None, status: int | None = None) -> int:
        """How many requests were answered (an int), optionally only those with this method, path part or status."""
        return sum(
            1
            for m, p, s in self._served
            if (method is None or m == method.upper()) and (path is None or path in p) and status in (None, s)
        )

    def fault_response(self, request: web.Request, rule: FaultRule) -> web.StreamResponse:
        return web.json_response({"message": f"injected fault {rule.status}"}, status=rule.status, headers=rule.headers)

    @web.middleware
    async def count_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Outermost: counts every answered request (`request_count`)."""
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:  # unknown route or method: still counted
            self._served.append((request.method, request.path, exc.status))
            raise
        self._served.append((request.method, request.path, response.status))
        return response

    @web.middleware
    async def fault_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Applies the common `faults`: latency, injected statuses, connections cut after a committed write."""
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        rule = self.faults.take("status", request.method, request.path)
        if rule is not None:
            return self.fault_response(request, rule)
        response: web.StreamResponse = await handler(request)
        if (
            request.method in WRITE_METHODS
            and 200 <= response.status < 300
            and self.faults.take("drop", request.method, request.path) is not None
        ):
            cut_connection(request)
        return response


def cut_connection(request: web.Request) -> None:
    """Close the connection under a request: its answer never arrives."""
    transport = request.transport
    if transport is not None:
        transport.close()


# --- discovery ---------------------------------------------------------------------------------------------------


def sandbox_class(backend: str) -> type[Any]:
    """The sandbox class of `backend`, named by its adapter's `sandbox = "module:Class"` attribute."""
    from . import registry

    spec = getattr(registry.load(backend), "sandbox", None)
    if not isinstance(spec, str) or ":" not in spec:
        names = ", ".join(available_sandboxes()) or "(none)"
        raise ConfigurationError(f"backend {backend!r} has no sandbox; sandboxes exist for: {names}")
    module_name, _, class_name = spec.partition(":")
    try:
        found: type[Any] = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"the sandbox of {backend!r} ({spec}) could not be loaded: {exc}") from exc
    return found


def create(backend: str, **kwargs: Any) -> Sandbox:
    """A (not yet started) sandbox for `backend`; `kwargs` go to its class (see the adapter's README)."""
    sandbox: Sandbox = sandbox_class(backend)(backend=backend, **kwargs)
    return sandbox


def available_sandboxes() -> list[str]:
    """The backends whose adapter ships a sandbox, sorted."""
    from . import registry

    names = []
    for name in registry.available():
        try:
            adapter = registry.load(name)
        except ConfigurationError:
            continue
        if isinstance(getattr(adapter, "sandbox", None), str):
            names.append(name)
    return names
