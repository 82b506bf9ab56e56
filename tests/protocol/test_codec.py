"""The wire codec: a frozen dataclass to and from its JSON object, from its fields and type hints (pure)."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from reprokit.protocol.codec import Message, ProtocolError, decode, encode, wire


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Part:
    name: str
    colour: Colour = Colour.RED


@dataclass(frozen=True)
class Whole(Message):
    TYPE: ClassVar[str] = "whole"
    WIRE_ORDER: ClassVar[tuple[str, ...]] = ("size", "parts", "by_name", "spare", "note", "extra")
    parts: tuple[Part, ...]
    by_name: Mapping[str, Part]
    size: int
    spare: Part | None = None
    note: str = field(default="", metadata=wire(key="comment", omit_default=True))
    extra: Any = None


WHOLE = Whole((Part("a"), Part("b", Colour.BLUE)), {"c": Part("c")}, 3, Part("d", Colour.BLUE), "hi", [1, {"x": 2}])


def test_nested_dataclasses_enums_tuples_mappings_and_optional_values_round_trip():
    line = WHOLE.to_json()
    assert json.loads(line) == {
        "type": "whole",
        "size": 3,
        "parts": [{"name": "a", "colour": "red"}, {"name": "b", "colour": "blue"}],
        "by_name": {"c": {"name": "c", "colour": "red"}},
        "spare": {"name": "d", "colour": "blue"},
        "comment": "hi",
        "extra": [1, {"x": 2}],
    }
    assert list(json.loads(line)) == ["type", "size", "parts", "by_name", "spare", "comment", "extra"]
    assert Whole.from_json(line) == WHOLE


def test_defaults_are_left_out_only_where_a_field_says_so_and_read_back_when_missing():
    plain = Whole((), {}, 0)
    assert encode(plain) == {"size": 0, "parts": [], "by_name": {}, "spare": None, "extra": None}
    assert decode(Whole, {"size": "7", "parts": [], "by_name": {}}) == Whole((), {}, 7)  # scalars read by their hint


@pytest.mark.parametrize(
    "data",
    [
        {"parts": [], "by_name": {}},  # size is required
        {"size": 1, "parts": {}, "by_name": {}},  # not an array
        {"size": 1, "parts": [], "by_name": []},  # not an object
        {"size": 1, "parts": [{"name": "a", "colour": "green"}], "by_name": {}},  # no such colour
        {"size": "one", "parts": [], "by_name": {}},
    ],
)
def test_a_malformed_object_raises(data):
    with pytest.raises((KeyError, TypeError, ValueError)):
        decode(Whole, data)
    with pytest.raises(ProtocolError, match="malformed whole message"):
        Whole.from_json(json.dumps({"type": "whole", **data}))


def test_a_hint_the_codec_cannot_read_must_say_how():
    @dataclass(frozen=True)
    class Either:
        value: int | str

    with pytest.raises(TypeError, match="cannot read"):
        decode(Either, {"value": 1})

    @dataclass(frozen=True)
    class Said:
        value: int | str = field(metadata=wire(read=lambda v: v))

    assert decode(Said, {"value": "x"}) == Said("x")


def test_a_wire_order_must_name_every_field():
    @dataclass(frozen=True)
    class Short:
        WIRE_ORDER: ClassVar[tuple[str, ...]] = ("a",)
        a: int
        b: int

    with pytest.raises(TypeError, match="WIRE_ORDER"):
        encode(Short(1, 2))
