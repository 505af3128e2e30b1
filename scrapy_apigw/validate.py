"""Typed readers of setting values: each returns the value in its type or raises ConfigError.

A reader is a function ``(where, value) -> typed value``; ``where`` names the setting, and the
field for a nested one (``APIGW_PROVIDERS["spotify"]["rate"]``). Every error is one line naming
``where`` and the value, then what was expected::

    APIGW_PROVIDERS["spotify"]["rate"] = 'ten': expected a number > 0 (req/s)

Numbers accept numeric strings (``-s NAME=VALUE`` gives strings), as Scrapy's ``getfloat`` and
``getint`` do; booleans accept what Scrapy's ``getbool`` accepts; dicts accept their JSON, as
``getdict`` does; lists accept a comma-separated string, as ``getlist`` does. A credential's value
is never shown (:func:`credential`).

Adding a setting is one line: ``read(settings, "APIGW_X", number(above=0, unit="s"), 30.0)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from scrapy.settings import BaseSettings

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.secrets import Secret, redact_url

T = TypeVar("T")
Reader = Callable[[str, Any], T]


def invalid(where: str, value: Any, problem: str) -> ConfigError:
    """The error for a bad *value* of *where*: ``<where> = <value!r>: <problem>``."""
    return ConfigError(f"{where} = {value!r}: {problem}")


def item(where: str, key: Any) -> str:
    """*where* of one entry of a dict setting: ``item("APIGW_PROVIDERS", "spotify")`` is
    ``APIGW_PROVIDERS["spotify"]``."""
    try:
        return f"{where}[{json.dumps(key, ensure_ascii=False)}]"
    except TypeError:
        return f"{where}[{key!r}]"


def read(settings: BaseSettings, name: str, reader: Reader[T], default: T) -> T:
    """Read setting *name* with *reader*; *default* when it is unset (None).

    Raises:
        ConfigError: the value is set but *reader* rejects it (the message names *name*).
    """
    value = settings.get(name)
    return default if value is None else reader(name, value)


def optional(reader: Reader[T]) -> Reader[T | None]:
    """*reader*, but None and ``""`` give None (unset)."""

    def read_optional(where: str, value: Any) -> T | None:
        return None if value is None or value == "" else reader(where, value)

    return read_optional


def _bounds(
    above: float | None,
    minimum: float | None,
    below: float | None,
    unit: str,
    maximum: float | None = None,
) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    text = " and ".join(parts)
    return (f" {text}" if text else "") + (f" ({unit})" if unit else "")


def number(
    *,
    above: float | None = None,
    minimum: float | None = None,
    below: float | None = None,
    unit: str = "",
    maximum: float | None = None,
) -> Reader[float]:
    """A reader of a finite number (int, float or numeric string) within the given bounds."""
    expected = "expected a number" + _bounds(above, minimum, below, unit, maximum)

    def read_number(where: str, value: Any) -> float:
        result = _to_float(value)
        if (
            result is None
            or (above is not None and not result > above)
            or (minimum is not None and not result >= minimum)
            or (below is not None and not result < below)
            or (maximum is not None and not result <= maximum)
        ):
            raise invalid(where, value, expected)
        return result

    return read_number


def whole(*, minimum: int | None = None, maximum: int | None = None, unit: str = "") -> Reader[int]:
    """A reader of a whole number (int, integral float or string) within the given bounds."""
    expected = "expected a whole number" + _bounds(None, minimum, None, unit, maximum)

    def read_whole(where: str, value: Any) -> int:
        result = _to_float(value)
        if (
            result is None
            or not result.is_integer()
            or (minimum is not None and result < minimum)
            or (maximum is not None and result > maximum)
        ):
            raise invalid(where, value, expected)
        return int(result)

    return read_whole


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):  # True is an int, but never a meant number
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


_TRUE = ("1", "true")
_FALSE = ("0", "false")


def boolean(where: str, value: Any) -> bool:
    """True/False, 1/0, or the strings ``"true"``/``"false"``/``"1"``/``"0"`` (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise invalid(where, value, "expected True or False (or 1/0, 'true'/'false')")


def text(where: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(where, value, "expected a non-empty string")
    return value


def http_url(where: str, value: Any) -> str:
    """An ``http://`` or ``https://`` URL with a host; a trailing ``/`` is removed.

    The value shown in an error has any user info and credential query values removed.
    """
    shown = redacted_url(value)
    if not isinstance(value, str):
        raise invalid(where, shown, "expected an http(s) URL")
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise invalid(where, shown, "expected an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise invalid(where, shown, "expected an http(s) URL with a host")
    return value.strip().rstrip("/")


def redacted_url(value: Any) -> Any:
    """*value* to show in an error: a string loses user info and credential query values."""
    if not isinstance(value, str):
        return value
    try:
        return redact_url(value)
    except ValueError:
        return "<an unparsable URL>"


def text_list(where: str, value: Any) -> list[str]:
    """A list or tuple of strings, or one comma-separated string (as Scrapy's ``getlist``)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise invalid(where, value, "expected a list of strings")
    return list(value)


def mapping(where: str, value: Any) -> dict[Any, Any]:
    """A dict, or its JSON object as a string (as Scrapy's ``getdict``); ``""`` is ``{}``."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid(where, value, "expected a dict (or its JSON)") from None
    if not isinstance(value, Mapping):
        raise invalid(where, value, "expected a dict (or its JSON)")
    return dict(value)


def text_map(where: str, value: Any) -> dict[str, str]:
    """A dict of string to non-empty string (or its JSON)."""
    result = mapping(where, value)
    for key, value in result.items():
        text(item(where, key), value)
    return result


def statuses(where: str, value: Any) -> frozenset[int]:
    """HTTP status codes (100-599): a list, set or tuple of whole numbers or numeric strings."""
    if isinstance(value, str):
        value = text_list(where, value)
    if not isinstance(value, list | tuple | set | frozenset):
        raise invalid(where, value, "expected a list of HTTP status codes")
    status = whole(minimum=100, maximum=599)
    return frozenset(status(item(where, n), code) for n, code in enumerate(value))


def credential(where: str, value: Any) -> str | None:
    """A credential: a string (None when empty). The error never shows the value."""
    if value is None or value == "":
        return None
    if isinstance(value, Secret):
        return value.reveal()
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: expected a string, got a {type(value).__name__} "
            "(the value is not shown: it is a credential)"
        )
    return value
