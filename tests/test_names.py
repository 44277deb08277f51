"""Name handling: symbol splitting, short-form lookup, listing patterns (no binaries needed)."""

import pytest

from dwarfgo.binary import Symbol
from dwarfgo.errors import AmbiguousFunction, FunctionNotFound
from dwarfgo.functions import split_symbol
from dwarfgo.names import compile_pattern, lookup


@pytest.mark.parametrize(
    "name, expected",
    [
        ("main.Add", ("main", None, "Add")),
        ("main.(*Store).Put", ("main", "(*Store)", "Put")),
        ("main.Pair.String", ("main", None, "Pair.String")),
        ("main.main.func1", ("main", None, "main.func1")),
        ("github.com/hashicorp/vault/vault.(*BarrierView).Put",
         ("github.com/hashicorp/vault/vault", "(*BarrierView)", "Put")),
        ("gopkg.in/yaml%2ev3.Marshal", ("gopkg.in/yaml%2ev3", None, "Marshal")),
        # the compiler's per-type equality functions belong to no package
        ("type:.eq.internal/abi.RegArgs", ("", None, "type:.eq.internal/abi.RegArgs")),
        ("type..eq.[15]internal/cpu.option", ("", None, "type..eq.[15]internal/cpu.option")),
        ("main.Map[go.shape.int,go.shape.string]", ("main", None, "Map[go.shape.int,go.shape.string]")),
        ("main.(*Box[go.shape.struct { A int; B net/url.URL }]).Get",
         ("main", "(*Box[go.shape.struct { A int; B net/url.URL }])", "Get")),
        ("runtime.memmove.abi0", ("runtime", None, "memmove")),
    ],
)
def test_split_symbol(name, expected):
    assert split_symbol(name) == expected


SYMS = [Symbol(n, 0x1000 + 16 * i, 16) for i, n in enumerate([
    "github.com/hashicorp/vault/vault.(*BarrierView).Put",
    "github.com/hashicorp/vault/vault.(*BarrierView).Get",
    "github.com/other/logical.(*BarrierView).Get",
    "main.Pair.String",
    "main.(*Pair).Set",
    "runtime.memmove.abi0",
    "main.handle",
])]


@pytest.mark.parametrize("query, want", [
    ("BarrierView.Put", "github.com/hashicorp/vault/vault.(*BarrierView).Put"),
    ("(*BarrierView).Put", "github.com/hashicorp/vault/vault.(*BarrierView).Put"),
    ("vault.(*BarrierView).Put", "github.com/hashicorp/vault/vault.(*BarrierView).Put"),
    ("vault.BarrierView.Get", "github.com/hashicorp/vault/vault.(*BarrierView).Get"),
    ("Pair.String", "main.Pair.String"),
    ("Pair.Set", "main.(*Pair).Set"),
    ("runtime.memmove", "runtime.memmove.abi0"),
    ("handle", "main.handle"),
])
def test_lookup_short_forms(query, want):
    assert lookup(SYMS, query).name == want


def test_lookup_ambiguous_lists_candidates():
    with pytest.raises(AmbiguousFunction) as e:
        lookup(SYMS, "BarrierView.Get")
    assert e.value.candidates == [
        "github.com/hashicorp/vault/vault.(*BarrierView).Get",
        "github.com/other/logical.(*BarrierView).Get",
    ]


def test_lookup_miss_suggests_nearest():
    with pytest.raises(FunctionNotFound) as e:
        lookup(SYMS, "BarierView.Put")
    assert e.value.suggestions[0] == "github.com/hashicorp/vault/vault.(*BarrierView).Put"


@pytest.mark.parametrize("pattern, regex, matches, rejects", [
    ("Barrier", False, "github.com/hashicorp/vault/vault.(*BarrierView).Put", "main.handle"),
    ("*(*BarrierView).P*", False, "github.com/hashicorp/vault/vault.(*BarrierView).Put",
     "github.com/hashicorp/vault/vault.(*BarrierView).Get"),
    ("main.*", False, "main.handle", "runtime.main.func1"),
    ("main.Map[go.shape.*]", False, "main.Map[go.shape.int]", "main.Map"),
    # a glob may leave out the import path, not part of a package name
    ("types2.(*Checker).in*", False, "cmd/compile/internal/types2.(*Checker).infer",
     "cmd/compile/internal/types2.(*Checker).exprInternal"),
    ("vault.(*BarrierView).P*", False, "github.com/hashicorp/vault/vault.(*BarrierView).Put",
     "github.com/hashicorp/vault/myvault.(*BarrierView).Put"),
    (r"^main\.(handle|Pair\.String)$", True, "main.Pair.String", "main.(*Pair).Set"),
])
def test_patterns(pattern, regex, matches, rejects):
    pred = compile_pattern(pattern, regex)
    assert pred(matches)
    assert not pred(rejects)


@pytest.mark.parametrize("name, closure", [
    ("main.MakeAdder.func1", True),
    ("crypto/internal/fips140/hmac.New[go.shape.*uint8].func1", True),
    ("crypto/internal/fips140/hmac.New[go.shape.*uint8].func1.1", True),  # nested
    ("main.glob..func1", True),  # a package-level literal (Go <= 1.21)
    ("main.(*Store).Put.gowrap1", True),
    ("main.(*Store).Put-fm", True),
    ("main.Walk-range1", True),
    ("main.Map[go.shape.int]", False),
    ("main.(*Store).Put", False),
    ("main.funcName", False),
    ("main.function1", False),
])
def test_closures_are_told_by_name(name, closure):
    # a closure's generic dictionary is captured, not a leading hidden argument
    from dwarfgo.functions import Function

    assert Function(Symbol(name, 0x1000, 16), None, [], []).is_closure is closure
