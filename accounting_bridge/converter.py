"""cattrs converter between neutral models and plain dict/JSON: Decimal as text, dates as ISO, bytes as base64.

`raw` (the backend payload) is not part of the plain form: it belongs to one backend response, not to the model.
"""

from __future__ import annotations

import base64
import collections.abc
import datetime as _dt
import enum
import json
import types
import typing
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.fns import identity
from cattrs.gen import make_dict_unstructure_fn, override

from . import models
from .errors import FieldError, ValidationError

__all__ = ["converter", "from_dict", "from_json", "to_dict", "to_json"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda value, _t: value)  # the model's own converter checks it
converter.register_unstructure_hook(_dt.date, _dt.date.isoformat)
converter.register_structure_hook(_dt.date, lambda value, _t: value)


def _enum_value(member: enum.Enum) -> Any:
    return member.value


converter.register_unstructure_hook_func(lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _enum_value)
converter.register_structure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda value, _t: value
)
converter.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
converter.register_structure_hook(
    bytes, lambda value, _t: value if isinstance(value, bytes) else base64.b64decode(value, validate=True)
)


def _optional_of(t: Any) -> Any:
    """X for `X | None` (one type besides None), else None."""
    args = getattr(t, "__args__", ())
    if len(args) == 2 and type(None) in args and typing.get_origin(t) in (typing.Union, types.UnionType):
        return next(a for a in args if a is not type(None))
    return None


def _optional_hook(t: Any) -> Any:
    """`X | None` unstructured without cattrs' per-value dispatch: the field is copied as is when X is (so the
    generated function reads the attribute directly), else X's own hook runs on a value that is not None."""
    inner = converter.get_unstructure_hook(_optional_of(t))
    if inner is identity:
        return identity
    return lambda value: None if value is None else inner(value)


converter.register_unstructure_hook_factory(lambda t: _optional_of(t) is not None, _optional_hook)

_MODELS = [
    getattr(models, name)
    for name in models.__all__
    if attrs.has(getattr(models, name))
]


def cattrs_unstructure_fn(cls: type[Any]) -> Any:
    """cattrs' own generated unstructuring of a model (without `raw`): the reference `_plain_fn` must match."""
    omit_raw: dict[str, Any] = {f.name: override(omit=True) for f in attrs.fields(cls) if f.name == "raw"}
    return make_dict_unstructure_fn(cls, converter, **omit_raw)


#: The generated functions' shared globals: `_u_<Model>` names resolve when called, so order does not matter.
_PLAIN_GLOBALS: dict[str, Any] = {}


def _plain_fn(cls: type[Any]) -> Any:
    """One function per model, generated once, that builds what `cattrs_unstructure_fn` builds with the same
    hooks, but reads each field once and calls a hook only where the value needs one (None, text, numbers and
    enums as they are; nested models by their own generated function, lists of them by a comprehension)."""
    items = []
    for field in attrs.fields(attrs.resolve_types(cls)):
        if field.name == "raw":
            continue
        items.append(f"{field.name!r}: {_plain_expr(field.name, field.type)}")
    source = f"def _u_{cls.__name__}(instance):\n    return {{{', '.join(items)}}}\n"
    exec(compile(source, f"<accounting_bridge to_dict {cls.__name__}>", "exec"), _PLAIN_GLOBALS)  # noqa: S102
    return _PLAIN_GLOBALS[f"_u_{cls.__name__}"]


def _plain_expr(name: str, t: Any) -> str:
    value = f"instance.{name}"
    inner = _optional_of(t)
    if inner is not None:
        return f"(None if {value} is None else {_plain_value(value, inner)})"
    return _plain_value(value, t)


def _plain_value(value: str, t: Any) -> str:
    if attrs.has(t):
        return f"_u_{t.__name__}({value})"
    args = typing.get_args(t)
    if typing.get_origin(t) is collections.abc.Sequence and len(args) == 1 and attrs.has(args[0]):
        return f"(list(map(_u_{args[0].__name__}, {value})) if {value} else [])"  # no call at all when empty
    hook = converter.get_unstructure_hook(t)
    if hook is identity:
        return value
    if hook is _enum_value:
        return f"{value}._value_"  # what `.value` returns, without its descriptor call
    name = f"_hook_{len(_PLAIN_GLOBALS)}"
    _PLAIN_GLOBALS[name] = hook
    return f"{name}({value})"


_PLAIN_BY_MODEL: dict[type[Any], Any] = {cls: _plain_fn(cls) for cls in _MODELS}
for _cls, _fn in _PLAIN_BY_MODEL.items():
    converter.register_unstructure_hook(_cls, _fn)


def to_dict(model: Any) -> dict[str, Any]:
    """A neutral model as plain, JSON-ready data (no float anywhere)."""
    plain = _PLAIN_BY_MODEL.get(type(model))
    result = converter.unstructure(model) if plain is None else plain(model)
    assert isinstance(result, dict)
    return result


def from_dict(cls: type[T], data: Any) -> T:
    """Build a model from plain data; every problem becomes a `ValidationError` with its field path."""
    try:
        return converter.structure(data, cls)
    except ValidationError:
        raise
    except Exception as exc:
        errors = _flatten(exc, "")
        if not errors:
            raise ValidationError(FieldError("", str(exc)), model=cls.__name__) from exc
        raise ValidationError(errors, model=cls.__name__) from exc


def _flatten(exc: BaseException, prefix: str) -> list[FieldError]:
    if isinstance(exc, ValidationError):
        return list(exc.prefixed(prefix).errors)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return [FieldError(_path(prefix, key), "unknown field") for key in sorted(exc.extra_fields)]
    if isinstance(exc, cattrs.BaseValidationError):
        found: list[FieldError] = []
        for sub in exc.exceptions:
            found.extend(_flatten(sub, _path(prefix, _note_path(sub))))
        return found
    if isinstance(exc, KeyError):
        return [FieldError(prefix or str(exc), "is required")]
    return [FieldError(prefix, str(exc))]


def _note_path(exc: BaseException) -> str:
    """cattrs tags each sub-error with a note naming the attribute or index it came from."""
    for note in getattr(exc, "__notes__", ()):
        name = getattr(note, "name", None)
        index = getattr(note, "index", None)
        if name is not None:
            return str(name)
        if index is not None:
            return f"[{index}]"
    return ""


def _path(prefix: str, part: str) -> str:
    if not part:
        return prefix
    if not prefix:
        return part
    return prefix + part if part.startswith("[") else f"{prefix}.{part}"


def to_json(model: Any) -> str:
    return json.dumps(to_dict(model), ensure_ascii=False, sort_keys=True)


def from_json(cls: type[T], text: str | bytes) -> T:
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ValidationError(FieldError("", f"not valid JSON: {exc}"), model=cls.__name__) from None
    return from_dict(cls, data)
