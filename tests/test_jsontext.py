"""dwarfgo.jsontext writes the text json.dumps(value, indent=1) writes (the standard library is
the reference), for the plain data of the --json records and for what it hands back to json."""

from __future__ import annotations

import json
from enum import IntEnum

import pytest

from dwarfgo.jsontext import Fragment, dumps_indent1


class _Number(IntEnum):
    ONE = 1


RECORD = {  # the shape of an `abi --json` document
    "binary": "/tmp/x", "units": [{"name": "main", "producer": "Go cmd/compile go1.27; regabi", "regabi": True}],
    "functions": [{"name": "main.(*T).M", "address": 4198400, "prologue": None, "ret_sites": [4198410, 4198420],
                   "spills": {"agrees": None, "detail": ""}, "dwarf": {"verdict": "agree", "checks": []},
                   "contradictions": [], "pair": (1, ("a", -2))}],
}


@pytest.mark.parametrize("value", [
    RECORD, [], {}, [[]], [{}], {"a": {}}, {"a": []}, (1, (2,)), "", "é\u2028\x00\"\\\n\t", "\U0001f600",
    True, False, None, [True, False, None], 0, -7, 10**30, 1.5, -0.0, 1e300, 5e-324, float("nan"), float("inf"),
    float("-inf"), [1.0, {"x": 2.25}],
    # what it does not write itself: json.dumps's text all the same
    {1: "int key"}, {None: 1, True: 2, 2.5: 3}, [_Number.ONE], {"a": [_Number.ONE]},
])
def test_same_text_as_json_dumps(value):
    assert dumps_indent1(value) == json.dumps(value, indent=1)


def test_an_unencodable_value_raises_as_json_dumps_does():
    with pytest.raises(TypeError):
        dumps_indent1({"a": object()})


@pytest.mark.parametrize("value", [RECORD["functions"][0], {"a": "line\nbreak"}, [], {}, [[1, [2]]], "s", 3, None])
@pytest.mark.parametrize("where", ["top", "in a list", "deep", "beside a key json.dumps writes"])
def test_a_fragment_stands_for_its_value(value, where):
    """A value's text written beforehand, placed at any depth: json.dumps's text of the value there
    (also where the document is handed to json.dumps: a key of another type)."""
    place = {"top": lambda v: v, "in a list": lambda v: [v, 1], "deep": lambda v: {"a": [{"b": v}]},
             "beside a key json.dumps writes": lambda v: {1: [v]}}[where]
    assert dumps_indent1(place(Fragment(dumps_indent1(value)))) == json.dumps(place(value), indent=1)
