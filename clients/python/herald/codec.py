"""Value codecs: how Python values become the bytes the broker stores, and back.

The default, :class:`JsonCodec`, writes JSON (pydantic models and dataclasses as their JSON form) and reads
JSON back; text that is not JSON (a value written by ``redis-cli SET k hello``) is returned as the string,
and bytes that are not UTF-8 as ``bytes``. Any object with ``encode(value) -> bytes`` and
``decode(bytes) -> value`` can be passed as ``codec=`` instead (:class:`RawCodec` passes bytes through).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Generic, Protocol, TypeVar, cast

__all__ = ["Codec", "JsonCodec", "RawCodec", "TypedCodec", "to_jsonable"]

T = TypeVar("T")


class Codec(Protocol):
    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


def to_jsonable(value: Any) -> Any:
    """A value JSON can write: pydantic models by ``model_dump(mode="json")``, dataclasses as dicts."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: pass a JSON value, a pydantic model or a dataclass")


class JsonCodec:
    """JSON text, UTF-8. ``strict=True`` refuses stored values that are not JSON instead of returning the text."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, default=to_jsonable, separators=(",", ":"), ensure_ascii=False).encode()

    def decode(self, data: bytes) -> Any:
        try:
            text = data.decode()
        except UnicodeDecodeError:
            if self.strict:
                raise ValueError(f"stored value is not UTF-8 JSON: {data[:40]!r}") from None
            return data
        try:
            return json.loads(text)
        except ValueError:
            if self.strict:
                raise ValueError(f"stored value is not JSON: {text[:40]!r}") from None
            return text


class RawCodec:
    """No encoding: values are ``bytes`` (``str`` is written as UTF-8) and come back as ``bytes``."""

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
        raise TypeError(f"RawCodec writes bytes or str, not {type(value).__name__}")

    def decode(self, data: bytes) -> Any:
        return data


class TypedCodec(Generic[T]):
    """JSON validated into a type: a pydantic model class, or anything pydantic's ``TypeAdapter`` takes
    (dataclasses, ``TypedDict``, ``list[int]`` ...). ``dict`` / ``Any`` / ``object`` skip validation."""

    def __init__(self, type_: Any, base: Codec | None = None) -> None:
        self.type = type_
        self.base: Codec = base or JsonCodec(strict=True)
        self._validate: Any = None
        if type_ in (dict, Any, object, None):
            return
        validate = getattr(type_, "model_validate", None)
        if callable(validate):
            self._validate = validate
            return
        try:
            from pydantic import TypeAdapter
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise TypeError(f"validating {type_!r} needs pydantic (pip install herald-client[pydantic])") from e
        self._validate = TypeAdapter(type_).validate_python

    def encode(self, value: Any) -> bytes:
        """Encodes ``value``, validated into the type first unless it already is one (a dict for a model is
        checked, a wrong one refused before anything is sent)."""
        if self._validate is not None and not (isinstance(self.type, type) and isinstance(value, self.type)):
            value = self._validate(value)
        return self.base.encode(value)

    def decode(self, data: bytes) -> T:
        return self.from_json(self.base.decode(data))

    def from_json(self, value: Any) -> T:
        """Validates an already parsed JSON value (bulletin events carry items as JSON objects)."""
        return cast(T, self._validate(value) if self._validate else value)
