"""Adapter settings: the common keyword arguments of `ab.connect`, and strict validation of what a caller passed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import aiohttp
import attrs

from .errors import ConfigurationError
from .fleet.redis_state import SharedState
from .transport.auth import TokenStore
from .transport.http import DEFAULT_MAX_RESPONSE_BYTES, TransportConfig, check_http_url
from .transport.retry import RetryPolicy

__all__ = ["SENSITIVE", "CommonSettings", "build_settings", "did_you_mean", "secret_field", "secret_settings"]

S = TypeVar("S")


#: `attrs` metadata key marking a settings field as a secret (see `secret_field`, `secret_settings`).
SENSITIVE = "accounting_bridge.secret"


def secret_field(**kwargs: Any) -> Any:
    """A settings field holding a secret: never shown in a repr, and refused inline in a profiles file."""
    metadata = {**kwargs.pop("metadata", {}), SENSITIVE: True}
    return attrs.field(repr=False, metadata=metadata, **kwargs)


def secret_settings(cls: type[Any]) -> frozenset[str]:
    """The names of the settings of `cls` that hold secrets: the one place that says which settings are secret."""
    return frozenset(f.name for f in attrs.fields(cls) if f.metadata.get(SENSITIVE))


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ConfigurationError(f"setting {attribute.name!r} must be a positive number")


def _positive_int(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"setting {attribute.name!r} must be a whole number > 0")


def _http_base_url(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ConfigurationError(f"setting {attribute.name!r} must be a str, not {type(value).__name__}")
    check_http_url(value, what=f"setting {attribute.name!r}")


def _shared_state_url(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        SharedState.parse(value)  # ConfigurationError naming the setting, never showing the URL


def _non_negative_int(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"setting {attribute.name!r} must be a whole number >= 0")


@attrs.frozen(kw_only=True)
class CommonSettings:
    """Settings every adapter accepts. Adapters subclass this with their own fields."""

    #: An http:// or https:// URL with a host (checked here, so `ab.connect` fails at once).
    base_url: str | None = attrs.field(default=None, validator=_http_base_url)
    session: aiohttp.ClientSession | None = attrs.field(default=None, repr=False)
    timeout: float = attrs.field(default=60.0, validator=_positive)
    deadline: float = attrs.field(default=180.0, validator=_positive)
    max_retries: int = attrs.field(default=3, validator=_non_negative_int)
    max_concurrency: int | None = attrs.field(default=None, validator=_positive)
    token_store: TokenStore | None = attrs.field(default=None, repr=False)
    #: After an ambiguous write, how long apart the lookups that decide it are (the backend may still be working).
    write_settle_delay: float = attrs.field(default=1.0, validator=_positive)
    #: Largest response body read (after decompression); a larger one is refused with `ResponseError`.
    max_response_bytes: int = attrs.field(default=DEFAULT_MAX_RESPONSE_BYTES, validator=_positive_int)
    #: A redis:// URL shared by a fleet of workers: the credential's rate-limit budget, tokens and renewal lock live
    #: there (`accounting_bridge.fleet`; extra `redis`). None: in this process only.
    shared_state: str | None = attrs.field(default=None, validator=_shared_state_url, repr=False)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, deadline=self.deadline, settle_delay=self.write_settle_delay)

    def transport_config(self, backend: str, default_base_url: str, **extra: Any) -> TransportConfig:
        return TransportConfig(
            backend=backend,
            base_url=self.base_url or default_base_url,
            timeout=self.timeout,
            retry=self.retry_policy(),
            max_concurrency=self.max_concurrency,
            max_response_bytes=self.max_response_bytes,
            shared_state=self.shared_state,
            **extra,
        )


def did_you_mean(name: str, choices: Iterable[str], *, prefix: str = " (") -> str:
    """`` (did you mean `max_concurrency`?)`` for the closest of `choices`, or "" when none is close."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {choice.lower().replace("-", "_"): choice for choice in choices}
        close = [lowered[key] for key in [name.lower().replace("-", "_")] if key in lowered]
    return f"{prefix}did you mean `{close[0]}`?)" if close else ""


def build_settings(cls: type[S], values: Mapping[str, Any], *, backend: str) -> S:
    """Validate keyword arguments into an attrs settings class with errors that name each key (never a value)."""
    fields = {f.name: f for f in attrs.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        guesses = "".join(did_you_mean(name, fields, prefix=f" ({name!r}: ") for name in unknown)
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(unknown)} for adapter {backend!r}{guesses}; "
            f"accepted: {', '.join(sorted(fields))}",
            backend=backend,
        )
    missing = sorted(n for n, f in fields.items() if f.default is attrs.NOTHING and n not in values)
    if missing:
        raise ConfigurationError(
            f"missing required setting(s) {', '.join(missing)} for adapter {backend!r}", backend=backend
        )
    try:
        return cls(**values)
    except ConfigurationError as exc:
        raise ConfigurationError(exc.message, backend=backend) from None
    except TypeError as exc:
        # attrs' instance_of puts the offending value into its message: name the field and the type only.
        if len(exc.args) >= 3 and isinstance(exc.args[1], attrs.Attribute):
            name, expected = exc.args[1].name, exc.args[2]
            got = type(values.get(name)).__name__
            raise ConfigurationError(f"setting {name!r} must be {expected}, not {got}", backend=backend) from None
        raise ConfigurationError(f"invalid settings for adapter {backend!r}", backend=backend) from None
    except ValueError as exc:
        field = exc.args[1] if len(exc.args) >= 2 and isinstance(exc.args[1], attrs.Attribute) else None
        what = f"setting {field.name!r}" if field is not None else f"settings for adapter {backend!r}"
        raise ConfigurationError(f"invalid {what}", backend=backend) from None
