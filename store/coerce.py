"""Turning configuration values (environment text, TOML values, flags) into a field's declared type.

``coerce(value, hint)`` follows the real type hint (from ``typing.get_type_hints``), not its
spelling: ``bool`` reads true/false, 1/0, yes/no and on/off in any case; ``int``, ``float``,
``str`` and ``Path`` read text; ``X | None`` reads an empty text as None. A value already of
the right type passes through (a TOML ``true`` for a bool, a TOML ``3`` for a float). A value
that does not fit raises ``ValueError`` saying what was expected (``expected(hint)``).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})


def coerce(value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` names; ``ValueError`` when it does not fit."""
    base, optional = _unwrap(hint)
    if optional and (value is None or value == ""):
        return None
    convert = _CONVERTERS.get(base)
    if convert is None:
        raise TypeError(f"no conversion to {hint!r}")
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expected {expected(hint)}, got {value!r}") from None


def expected(hint: Any) -> str:
    """What a value for ``hint`` must look like, for error messages: "int", "bool (true or false)"."""
    base, optional = _unwrap(hint)
    name = {bool: "bool (true or false)", Path: "a path"}.get(base, getattr(base, "__name__", str(base)))
    return f"{name} or empty" if optional else name


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) for ``X`` or ``X | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
    raise ValueError(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    if isinstance(value, int | str):
        return int(value)
    raise TypeError(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    return float(value)


def _str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Path):
        raise TypeError(value)
    return str(value)


def _path(value: Any) -> Path:
    if not isinstance(value, str | Path):
        raise TypeError(value)
    return Path(value).expanduser()


_CONVERTERS = {bool: _bool, int: _int, float: _float, str: _str, Path: _path}
