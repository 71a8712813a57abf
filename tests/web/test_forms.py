"""Forms from JSON Schemas (micro.web.forms): schema -> fields, and form data -> request."""

from __future__ import annotations

import typing
from typing import Any, Literal

import msgspec
import pytest
from starlette.datastructures import FormData, UploadFile

from micro import errors
from micro.rpc.schema import schema_for
from micro.web.forms import Choice, Field, Form, form_for, request_from_form, request_from_json


class Address(msgspec.Struct):
    street: str
    number: int
    note: str | None = None


class Node(msgspec.Struct):
    """A type that contains itself."""

    name: str
    child: Node | None = None


class Everything(msgspec.Struct):
    name: str
    count: int
    ratio: float
    home: Address
    work: Address | None = None
    active: bool = False
    verbose: bool = True
    maybe: bool | None = None
    colour: Literal["red", "green"] = "red"
    level: Literal[1, 2, 3] | None = None
    tags: list[str] = []
    scores: list[int] = []
    labels: dict[str, str] = {}
    addresses: list[Address] = []
    anything: Any = None
    nick: str | None = None
    tree: Node | None = None


SCHEMA = schema_for(Everything)


def fields_of(schema: dict[str, Any]) -> dict[str, Field]:
    """Every field of a form by input name, nested ones included."""
    found: dict[str, Field] = {}

    def walk(fields: tuple[Field, ...]) -> None:
        for f in fields:
            found[f.name] = f
            walk(f.fields)

    walk(form_for(schema).fields)
    return found


def form(*pairs: tuple[str, str]) -> FormData:
    return FormData(list(pairs))


def parse(*pairs: tuple[str, str], schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    return request_from_form(form_for(schema), form(*pairs))


REQUIRED = (("name", "x"), ("count", "1"), ("ratio", "0.5"), ("home.street", "Main"),
            ("home.number", "7"))  # fmt: skip


# -- schema -> fields -----------------------------------------------------------------------


def test_the_schema_uses_refs_and_defs() -> None:
    # the test is about $ref/$defs: make sure msgspec still draws them so
    assert SCHEMA["properties"]["home"] == {"$ref": "#/$defs/Address"}
    assert "Address" in SCHEMA["$defs"]


def test_scalars() -> None:
    fields = fields_of(SCHEMA)
    assert (fields["name"].kind, fields["name"].required, fields["name"].mandatory) == (
        "text",
        True,
        False,  # an empty text is a value ("")
    )
    assert (fields["count"].kind, fields["count"].mandatory) == ("integer", True)
    assert fields["ratio"].kind == "number"
    assert (fields["active"].kind, fields["active"].checked) == ("boolean", False)
    assert fields["verbose"].checked is True


def test_optional_scalars_are_not_required() -> None:
    fields = fields_of(SCHEMA)
    nick = fields["nick"]
    assert (nick.kind, nick.required, nick.mandatory) == ("text", False, False)


def test_enums_and_optional_booleans_are_selects() -> None:
    fields = fields_of(SCHEMA)
    colour = fields["colour"]
    assert colour.kind == "select"
    assert colour.choices == (Choice("green", "green"), Choice("red", "red"))  # msgspec sorts them
    assert colour.placeholder == "red"
    assert fields["level"].choices == (Choice(1, "1"), Choice(2, "2"), Choice(3, "3"))
    maybe = fields["maybe"]
    assert maybe.kind == "select"  # a checkbox cannot say "not given"
    assert [c.value for c in maybe.choices] == [True, False]


def test_nested_objects_through_refs_are_fieldsets_with_dotted_names() -> None:
    fields = fields_of(SCHEMA)
    home = fields["home"]
    assert home.kind == "object"
    assert [f.name for f in home.fields] == ["home.street", "home.number", "home.note"]
    assert [f.label for f in home.fields] == ["street", "number", "note"]
    assert fields["home.number"].mandatory
    work = fields["work"]  # Optional[Address]: anyOf [$ref, null]
    assert (work.kind, work.required) == ("object", False)
    # inside an optional object nothing is mandatory: the whole object may be left out
    assert fields["work.number"].required
    assert not fields["work.number"].mandatory


def test_lists_of_scalars_take_one_item_per_line() -> None:
    fields = fields_of(SCHEMA)
    tags = fields["tags"]
    assert (tags.kind, tags.type_name, tags.hint) == ("list", "list of string", "one item per line")
    assert tags.item is not None
    assert fields["scores"].item is not None
    assert fields["scores"].item.kind == "integer"


def test_maps_lists_of_objects_and_anything_are_json() -> None:
    fields = fields_of(SCHEMA)
    assert (fields["labels"].kind, fields["labels"].expect) == ("json", "object")
    assert (fields["addresses"].kind, fields["addresses"].expect) == ("json", "array")
    assert (fields["anything"].kind, fields["anything"].hint) == ("json", "any JSON value")


def test_a_type_containing_itself_ends_in_json() -> None:
    fields = fields_of(SCHEMA)
    assert fields["tree"].kind == "object"
    assert fields["tree.child"].kind == "json"  # not an endless fieldset


def test_deep_nesting_ends_in_json() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(8):
        deep = {"type": "object", "properties": {"a": deep}, "required": ["a"]}
    names = fields_of(deep)
    assert [names[n].kind for n in ("a", "a.a", "a.a.a", "a.a.a.a")] == [
        "object",
        "object",
        "object",
        "json",
    ]
    assert "a.a.a.a.a" not in names


def test_other_pointers_and_nullable_type_lists() -> None:
    schema = {
        "type": "object",
        "properties": {
            "x": {"$ref": "#/definitions/X"},
            "y": {"type": ["integer", "null"]},
            "z": {"allOf": [{"$ref": "#/definitions/X"}], "description": "a zed"},
            "gone": {"$ref": "#/nowhere"},
        },
        "definitions": {"X": {"type": "string", "enum": ["a", "b"]}},
    }
    fields = fields_of(schema)
    assert fields["x"].kind == "select"
    assert (fields["y"].kind, fields["y"].required) == ("integer", False)
    assert (fields["z"].kind, fields["z"].description) == ("select", "a zed")
    assert fields["gone"].kind == "json"


def test_requests_that_are_not_objects_have_raw_json_only() -> None:
    assert form_for({}) == Form((), False, "{}")
    assert not form_for({"type": "array", "items": {"type": "string"}}).fits
    assert not form_for({"type": "object"}).fits  # a free-form map
    empty = form_for({"type": "object", "properties": {}})
    assert (empty.fits, empty.fields) == (True, ())


def test_the_example_request_has_the_shape_of_the_schema() -> None:
    example = msgspec.json.decode(form_for(schema_for(Address)).example)
    assert example == {"street": "", "number": 0, "note": None}
    assert msgspec.json.decode(form_for(SCHEMA).example)["colour"] == "red"


# -- form data -> request -------------------------------------------------------------------


def test_a_filled_in_form() -> None:
    request = parse(
        *REQUIRED,
        ("work.street", "Side"),
        ("work.number", "9"),
        ("active", "true"),
        ("maybe", "false"),
        ("colour", "green"),
        ("level", "2"),
        ("tags", "a, b\r\n\r\nc d\n"),
        ("scores", "1\n2"),
        ("labels", '{"k": "v"}'),
        ("addresses", '[{"street": "s", "number": 1}]'),
        ("anything", "3"),
        ("nick", "  spaced  "),
    )
    assert request == {
        "name": "x",
        "count": 1,
        "ratio": 0.5,
        "home": {"street": "Main", "number": 7},
        "work": {"street": "Side", "number": 9},
        "active": True,
        "verbose": False,  # unchecked: false, whatever the default
        "maybe": False,
        "colour": "green",
        "level": 2,
        "tags": ["a, b", "c d"],  # commas are part of an item
        "scores": [1, 2],
        "labels": {"k": "v"},
        "addresses": [{"street": "s", "number": 1}],
        "anything": 3,
        "nick": "  spaced  ",
    }
    # the request fits the type the service reads
    assert msgspec.convert(request, Everything).work == Address("Side", 9)


def test_empty_optional_fields_are_left_out() -> None:
    request = parse(*REQUIRED, ("verbose", "true"), ("nick", ""), ("colour", ""), ("tags", "\n"),
                    ("labels", " "), ("work.street", ""), ("work.number", ""))  # fmt: skip
    assert request == {
        "name": "x",
        "count": 1,
        "ratio": 0.5,
        "home": {"street": "Main", "number": 7},
        "active": False,
        "verbose": True,
    }


def test_required_text_left_empty_is_an_empty_string() -> None:
    assert parse(("name", ""), *REQUIRED[1:], ("verbose", "true"))["name"] == ""
    assert parse(("street", ""), ("number", "3"), schema=schema_for(Address)) == {
        "street": "",
        "number": 3,
    }


def test_numbers() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "number"}, "i": {"type": "integer"}},
    }
    assert parse(("n", "2"), ("i", " -4 "), schema=schema) == {"n": 2, "i": -4}
    assert parse(("n", "2.5"), schema=schema) == {"n": 2.5}
    assert parse(("n", "1e3"), schema=schema) == {"n": 1000.0}


def test_repeated_entries_are_list_items() -> None:
    # a script may send tags=a&tags=b as the gateway takes them
    request = parse(*REQUIRED, ("tags", "a"), ("tags", "b, c"))
    assert request["tags"] == ["a", "b, c"]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ((("count", "abc"),), "count: 'abc' is not a whole number"),
        ((("count", "1.5"),), "count: '1.5' is not a whole number"),
        ((("ratio", "much"),), "ratio: 'much' is not a number"),
        ((("ratio", "nan"),), "ratio: 'nan' is not a number"),
        ((("home.number", "x"),), "home.number: 'x' is not a whole number"),
        ((("colour", "blue"),), "colour: 'blue' is not one of green, red"),
        ((("level", "4"),), "level: '4' is not one of 1, 2, 3"),
        ((("maybe", "perhaps"),), "maybe: 'perhaps' is not one of true, false"),
        ((("active", "perhaps"),), "active: 'perhaps' is not true or false"),
        ((("scores", "1\nlots\n3"),), "scores, item 2: 'lots' is not a whole number"),
        ((("labels", "{oops"),), "labels: not valid JSON (Expecting property name"),
        ((("labels", "[1]"),), "labels: a JSON object is needed"),
        ((("addresses", "{}"),), "addresses: a JSON array is needed"),
        ((("count", ""),), "count: a value is needed"),
        ((("home.number", ""),), "home.number: a value is needed"),
        ((("work.street", "Side"),), "work.number: a value is needed"),
    ],
)
def test_values_that_do_not_fit_are_400s_naming_the_field(
    pairs: tuple[tuple[str, str], ...], message: str
) -> None:
    given = dict(pairs)
    base = [(k, v) for k, v in REQUIRED if k not in given]
    with pytest.raises(errors.BadRequest) as caught:
        parse(*base, *pairs)
    assert caught.value.code == 400
    assert caught.value.detail.startswith(message)


def test_an_optional_object_with_a_field_filled_in_must_be_whole() -> None:
    # a checkbox changed from its default fills its object in too
    schema = {
        "type": "object",
        "properties": {
            "opt": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"on": {"type": "boolean"}, "n": {"type": "integer"}},
                        "required": ["n"],
                    },
                    {"type": "null"},
                ]
            }
        },
    }
    assert parse(schema=schema) == {}
    with pytest.raises(errors.BadRequest, match=r"opt\.n: a value is needed"):
        parse(("opt.on", "true"), schema=schema)
    assert parse(("opt.on", "true"), ("opt.n", "1"), schema=schema) == {"opt": {"on": True, "n": 1}}


def test_a_file_is_not_a_value() -> None:
    upload = UploadFile(file=typing.cast(Any, None), filename="f")
    data = FormData([("name", upload)])
    with pytest.raises(errors.BadRequest, match="name: a file is not a value here"):
        request_from_form(form_for(SCHEMA), data)


def test_unknown_entries_are_ignored() -> None:
    assert parse(("street", "s"), ("number", "1"), ("csrf", "t"), schema=schema_for(Address)) == {
        "street": "s",
        "number": 1,
    }


def test_raw_json() -> None:
    assert request_from_json('  {"name": "x", "n": [1]} ') == {"name": "x", "n": [1]}
    assert request_from_json("") == {}
    with pytest.raises(errors.BadRequest) as caught:
        request_from_json('{"count":')
    assert caught.value.detail.startswith("the request is not valid JSON (Expecting value")
