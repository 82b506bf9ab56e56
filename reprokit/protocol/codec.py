"""The wire codec: a frozen dataclass to and from its JSON object, derived from its fields and type hints.

Every message of the protocol is written and read here, field by field, in field order, each under its field's
name. A field's type hint says how:

=======================  ===========================  ===============================================
hint                     written                      read
=======================  ===========================  ===============================================
``str``, ``int``,        as it is                     through ``str()``, ``int()``, ``float()``,
``float``, ``bool``                                   ``bool()``
an ``Enum``              its value                    through the enum
``X | None``             ``null``, or ``X``           ``null`` as None, anything else as ``X``
``tuple[X, ...]``        an array                     an array, each element as ``X``
``Mapping[str, X]``      an object                    an object, each value as ``X``
a dataclass              an object, by its own fields an object, by its own fields
``Any``                  as it is                     as it is
=======================  ===========================  ===============================================

A key that is not there reads as the field's default; without one, the message is malformed. Keys the class has
no field for are ignored. Where a field needs anything else, it says so at the field with :func:`wire` metadata
(``field(metadata=wire(...))``): another key, leaving the key out, a default for a key older senders left out, or a
reader of its own. A class whose keys go in another order than its fields names that order in a ``WIRE_ORDER``
class variable.

:class:`Message` gives a message class its JSON line (``to_json``/``from_json``), and an event its ``"type"``
key. Reading raises ``KeyError``, ``TypeError`` or ``ValueError`` for a malformed object (``from_json``: a
:class:`ProtocolError`); a hint the codec cannot read is a ``TypeError`` when its class is first used.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

_T = TypeVar("_T")
_M = TypeVar("_M", bound="Message")

Writer = Callable[[Any], Any]
"""Writes a field's value as its JSON value."""

Reader = Callable[[Any], Any]
"""Reads a field's value from its JSON value (raises ``KeyError``, ``TypeError`` or ``ValueError`` if malformed)."""

_META = "reprokit.wire"
_REQUIRED = object()  # no default for a key that is not there
_PLANS: dict[type[Any], tuple[_Field, ...]] = {}


class ProtocolError(ValueError):
    """A line that is not the message it should be."""


@dataclass(frozen=True)
class Wire:
    """How one field crosses the wire where its type hint alone does not say (see :func:`wire`)."""

    key: str | None = None
    omit_default: bool = False
    omit_when: Callable[[Any], bool] | None = None
    missing: Any = _REQUIRED
    read: Reader | None = None


def wire(
    *,
    key: str | None = None,
    omit_default: bool = False,
    omit_when: Callable[[Any], bool] | None = None,
    missing: Any = _REQUIRED,
    read: Reader | None = None,
) -> dict[str, Wire]:
    """A field's special handling on the wire, as ``dataclasses.field`` metadata.

    Args:
        key: the field's key, where it is not the field's name.
        omit_default: leave the key out while the field holds its default.
        omit_when: leave the key out when this is true of the message (for keys that go together).
        missing: what a key that is not there reads as, where that is not the field's default.
        read: reads the field's JSON value instead of its type hint.
    """
    return {_META: Wire(key, omit_default, omit_when, missing, read)}


@dataclass(frozen=True)
class _Field:
    """One field of a class, compiled: how to write it and read it."""

    name: str
    key: str
    write: Writer | None  # None: as it is
    read: Reader
    omit: Callable[[Any], bool] | None  # given the message
    missing: Callable[[], Any] | None  # None: the key is required


def encode(message: Any) -> dict[str, Any]:
    """The dataclass instance ``message`` as a JSON-ready object (tuples of plain values stay tuples)."""
    data: dict[str, Any] = {}
    for field in _plan(type(message)):
        if field.omit is not None and field.omit(message):
            continue
        value = getattr(message, field.name)
        data[field.key] = value if field.write is None else field.write(value)
    return data


def decode(cls: type[_T], data: Any) -> _T:
    """The instance of the dataclass ``cls`` that the JSON object ``data`` holds.

    Raises:
        KeyError, TypeError, ValueError: ``data`` is not such an object.
    """
    data = _object(data)
    values = {}
    for field in _plan(cls):
        if field.key in data:
            values[field.name] = field.read(data[field.key])
        elif field.missing is not None:
            values[field.name] = field.missing()
        else:
            raise KeyError(field.key)
    return cls(**values)


class Message:
    """A message that crosses the wire as one JSON line: its fields, and for an event its ``"type"`` first."""

    TYPE: ClassVar[str] = ""
    """The event's ``"type"`` on the wire ("" for the configuration, which has none)."""

    def to_dict(self) -> dict[str, Any]:
        """The message as a JSON-ready object (tuples stand for JSON arrays)."""
        fields = encode(self)
        return {"type": self.TYPE, **fields} if self.TYPE else fields

    def to_json(self) -> str:
        """The message's wire line, without the newline."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls: type[_M], data: Mapping[str, Any]) -> _M:
        """Reads the message from its JSON object; raises KeyError, TypeError or ValueError if malformed."""
        return decode(cls, data)

    @classmethod
    def from_json(cls: type[_M], line: str) -> _M:
        """Reads the message from its wire line.

        Raises:
            ProtocolError: the line is not JSON, or not a message of this class.
        """
        name = cls.TYPE or cls.__name__
        try:
            data = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"not JSON: {line[:80]!r}") from e
        if not isinstance(data, dict) or data.get("type") != (cls.TYPE or None):
            raise ProtocolError(f"not a {name} message: {line[:80]!r}")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"malformed {name} message ({type(e).__name__}: {e}): {line[:80]!r}") from e


def array(value: Any) -> tuple[Any, ...]:
    """A JSON array as a tuple, its elements as they are."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a JSON array, received {type(value).__name__}")
    return tuple(value)


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, received {type(value).__name__}")
    return value


def _plan(cls: type[Any]) -> tuple[_Field, ...]:
    """The fields of the dataclass ``cls``, compiled (once), in the order of their keys."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _compile_plan(cls)
    return plan


def _compile_plan(cls: type[Any]) -> tuple[_Field, ...]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    hints = get_type_hints(cls)
    compiled = {field.name: _compile(field, hints[field.name]) for field in dataclasses.fields(cls)}
    order: tuple[str, ...] = getattr(cls, "WIRE_ORDER", ())
    if order and sorted(order) != sorted(compiled):
        raise TypeError(f"{cls.__name__}.WIRE_ORDER names {order}, not its fields {tuple(compiled)}")
    return tuple(compiled[name] for name in order or compiled)


def _compile(field: dataclasses.Field[Any], hint: Any) -> _Field:
    special: Wire = field.metadata.get(_META, Wire())
    omit = special.omit_when
    if special.omit_default:
        if field.default is not dataclasses.MISSING:
            omit = _holds(field.name, field.default)
        elif field.default_factory is not dataclasses.MISSING:
            omit = _holds(field.name, field.default_factory())  # an empty mapping is left out
        else:
            raise TypeError(f"{field.name}: omit_default needs a default")
    missing: Callable[[], Any] | None = None
    if special.missing is not _REQUIRED:
        missing = functools.partial(copy.copy, special.missing)  # a fresh ``{}`` for each message
    elif field.default is not dataclasses.MISSING:
        missing = functools.partial(copy.copy, field.default)
    elif field.default_factory is not dataclasses.MISSING:
        missing = field.default_factory
    return _Field(field.name, special.key or field.name, _writer(hint), special.read or _reader(hint), omit, missing)


def _holds(name: str, default: Any) -> Callable[[Any], bool]:
    """Whether a message's field ``name`` holds ``default``."""
    return lambda message: bool(getattr(message, name) == default)


def _writer(hint: Any) -> Writer | None:
    """How a value of type ``hint`` is written; None where it is written as it is."""
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return encode
    origin, args, optional = get_origin(hint), get_args(hint), _optional(hint)
    if optional is not None:
        return _nullable(_writer(optional))
    if origin is tuple and args:
        return _each(_writer(args[0]))
    if origin in (Mapping, dict) and len(args) == 2:
        return _each_value(_writer(args[1]))
    return None


def _nullable(write: Writer | None) -> Writer | None:
    return None if write is None else lambda value: None if value is None else write(value)


def _each(write: Writer | None) -> Writer | None:
    return None if write is None else lambda value: [write(item) for item in value]


def _each_value(write: Writer | None) -> Writer | None:
    return None if write is None else lambda value: {key: write(item) for key, item in value.items()}


def _reader(hint: Any) -> Reader:
    """How a value of type ``hint`` is read from its JSON value."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return _as_it_is
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    if hint in (str, int, float, bool):
        return hint  # type: ignore[no-any-return]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return functools.partial(decode, hint)
    if _optional(hint) is not None:
        inner = _reader(_optional(hint))
        return lambda value: None if value is None else inner(value)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _reader(args[0])
        return lambda value: tuple(item(element) for element in array(value))
    if origin in (Mapping, dict) and len(args) == 2:
        key, item = _reader(args[0]), _reader(args[1])
        return lambda value: {key(k): item(v) for k, v in _object(value).items()}
    raise TypeError(f"the wire codec cannot read {hint!r}: say how with field(metadata=wire(read=...))")


def _optional(hint: Any) -> Any:
    """``X`` for the hint ``X | None``, else None."""
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return args[0] if args[1] is type(None) else args[1]
    return None


def _enum_value(value: Enum) -> Any:
    return value.value


def _as_it_is(value: Any) -> Any:
    return value
