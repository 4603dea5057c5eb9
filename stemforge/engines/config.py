"""One ``user_config`` parser for every engine, driven by the engine's config dataclass.

Each field's annotation is its schema::

    @dataclass(frozen=True)
    class EngineConfig:
        top_p: Annotated[float, Range(0.0, 1.0)] = 0.0
        num_threads: Annotated[int, Range(1, 256)] | None = None
        kv_cache: Literal["preallocated", "dynamic"] = "preallocated"
        effects: bool = True

Supported: ``bool``, ``int``, ``float``, ``str``, a ``Literal`` of one of those, and any of them
``| None``; ``Range`` (inclusive) on ``int`` and ``float``. Rules that tie fields together stay
with the engine, after this parser.
"""

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from stemforge.errors import ConfigurationError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ConfigT = TypeVar("ConfigT", bound="DataclassInstance")

_SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a numeric field: ``Annotated[float, Range(0.0, 1.0)]``."""

    low: float
    high: float


@dataclass(frozen=True)
class _Field:
    name: str
    kind: type
    optional: bool
    bounds: Range | None
    # From a Literal: the only values accepted. Empty when any value of ``kind`` goes.
    choices: tuple[Any, ...]

    def expected(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = "a string"
        else:
            noun = "an integer" if self.kind is int else "a number"
            if self.bounds is None:
                text = noun
            else:
                # In the field's type, so a float field reads "0.0 to 1.0" even if declared Range(0, 1).
                low, high = self.kind(self.bounds.low), self.kind(self.bounds.high)
                text = f"{noun} from {low} to {high}"
        return f"{text} or null" if self.optional else text


def _unwrap(hint: Any) -> tuple[Any, Range | None]:
    if get_origin(hint) is not Annotated:
        return hint, None
    inner, *extras = get_args(hint)
    ranges = [extra for extra in extras if isinstance(extra, Range)]
    return inner, (ranges[0] if ranges else None)


def _describe(config_type: type, name: str, hint: Any) -> _Field:
    where = f"{config_type.__name__}.{name}"
    hint, bounds = _unwrap(hint)
    optional = False
    if get_origin(hint) in (Union, types.UnionType):
        members = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(members) != 1 or len(get_args(hint)) != 2:
            raise TypeError(f"{where}: a user_config field may be one type or one type | None; got {hint!r}")
        optional = True
        # Both spellings work: Annotated[int, Range(...)] | None and Annotated[int | None, Range(...)].
        hint, inner_bounds = _unwrap(members[0])
        if bounds is None:
            bounds = inner_bounds
    choices: tuple[Any, ...] = ()
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        kinds = {type(choice) for choice in choices}
        if len(kinds) != 1 or not kinds <= set(_SCALARS):
            raise TypeError(f"{where}: Literal choices must all be bool, int, float or str; got {hint!r}")
        (kind,) = kinds
    elif hint in _SCALARS:
        kind = hint
    else:
        raise TypeError(
            f"{where}: user_config fields must be bool, int, float, str or a Literal; got {hint!r}"
        )
    if bounds is not None:
        if kind not in (int, float) or choices:
            raise TypeError(f"{where}: Range applies to int and float fields only")
        if kind is int and not (float(bounds.low).is_integer() and float(bounds.high).is_integer()):
            raise TypeError(f"{where}: an int field's Range needs whole-number bounds; got {bounds}")
    return _Field(name, kind, optional, bounds, choices)


@cache
def _schema(config_type: type) -> dict[str, _Field]:
    hints = get_type_hints(config_type, include_extras=True)
    return {f.name: _describe(config_type, f.name, hints[f.name]) for f in fields(config_type) if f.init}


def _validated(spec: _Field, value: Any, engine: str) -> Any:
    def refuse() -> ConfigurationError:
        return ConfigurationError(
            f"{engine} user_config {spec.name!r} must be {spec.expected()}; got {value!r}"
        )

    if value is None and spec.optional:
        return None
    if spec.choices:
        # Compare types too: True == 1, and a YAML 1 is no answer to a choice of strings.
        if any(type(value) is type(choice) and value == choice for choice in spec.choices):
            return value
        raise refuse()
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        raise refuse()
    if spec.kind is str:
        if isinstance(value, str):
            return value
        raise refuse()
    # bool is a subclass of int, but `true` given for a number is a misplaced key, not a 1.
    numeric = int if spec.kind is int else int | float
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise refuse()
    number: float = value
    if spec.kind is float:
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            raise refuse() from None
        if not math.isfinite(number):
            raise refuse()
    if spec.bounds is not None and not spec.bounds.low <= number <= spec.bounds.high:
        raise refuse()
    return number


def parse_user_config(
    config_type: type[ConfigT], raw: Mapping[str, Any], *, engine: str, base: ConfigT | None = None
) -> ConfigT:
    """Validate ``raw`` against ``config_type``'s annotations and apply it over ``base`` (the
    dataclass defaults when None): keys left out keep the base's values.

    Unknown keys are refused rather than ignored, since a misspelt key would otherwise silently
    change nothing. Raises ``ConfigurationError`` naming the engine, the key, what is allowed and
    the value given.
    """
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{engine} user_config must be a mapping of keys to values; got {raw!r}")
    schema = _schema(config_type)
    unknown = [key for key in raw if key not in schema]
    if unknown:
        raise ConfigurationError(f"unknown {engine} user_config keys {unknown}; known keys: {sorted(schema)}")
    changes = {key: _validated(schema[key], value, engine) for key, value in raw.items()}
    return replace(base if base is not None else config_type(), **changes)
