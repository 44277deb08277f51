"""Name handling: symbol splitting, short-form lookup, listing patterns (synthetic symbols), and
lookup in a binary that vendors a package named like a standard one (tests/data/vendorflag)."""

import os

import pytest

from dwarfgo.binary import Symbol
from dwarfgo.errors import AmbiguousFunction, DwarfgoError, FunctionNotFound
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
        # promoted methods of unnamed types (Go 1.27 cmd/go): the type has spaces, braces and dots
        ("go:(*struct { encoding/json/v2.MarshalerTo }).MarshalJSONTo",
         ("", "(*struct { encoding/json/v2.MarshalerTo })", "MarshalJSONTo")),
        ("go:struct { encoding/json/v2.MarshalerTo }.MarshalJSONTo",
         ("", None, "struct { encoding/json/v2.MarshalerTo }.MarshalJSONTo")),
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


def test_lookup_ambiguous_lists_shortest_unique_forms():
    with pytest.raises(AmbiguousFunction) as e:
        lookup(SYMS, "BarrierView.Get")
    assert e.value.unique == ["vault.(*BarrierView).Get", "logical.(*BarrierView).Get"]
    assert "vault.(*BarrierView).Get, logical.(*BarrierView).Get" in str(e.value)
    for form, full in zip(e.value.unique, e.value.candidates):
        assert lookup(SYMS, form).name == full


VENDORED = [Symbol(n, 0x2000 + 16 * i, 16) for i, n in enumerate([
    "flag.(*FlagSet).Parse",
    "github.com/docker/cli/vendor/github.com/spf13/pflag.(*FlagSet).Parse",
    "github.com/docker/cli/vendor/github.com/other/flag.(*FlagSet).Parse",
    "vendor/golang.org/x/net/http/httpguts.ValidHeaderFieldName",
    "go/scanner.Error.Error",
    "go/scanner.(*Error).Error",
])]


@pytest.mark.parametrize("query, want", [
    # a vendored package by its import path, or any suffix of it
    ("github.com/spf13/pflag.(*FlagSet).Parse", "github.com/docker/cli/vendor/github.com/spf13/pflag.(*FlagSet).Parse"),
    ("spf13/pflag.FlagSet.Parse", "github.com/docker/cli/vendor/github.com/spf13/pflag.(*FlagSet).Parse"),
    ("pflag.(*FlagSet).Parse", "github.com/docker/cli/vendor/github.com/spf13/pflag.(*FlagSet).Parse"),
    ("golang.org/x/net/http/httpguts.ValidHeaderFieldName", "vendor/golang.org/x/net/http/httpguts.ValidHeaderFieldName"),
    ("httpguts.ValidHeaderFieldName", "vendor/golang.org/x/net/http/httpguts.ValidHeaderFieldName"),
    ("flag.(*FlagSet).Parse", "flag.(*FlagSet).Parse"),  # the full symbol
    # Delve's spelling of a pointer method
    ("(*pflag.FlagSet).Parse", "github.com/docker/cli/vendor/github.com/spf13/pflag.(*FlagSet).Parse"),
    # spelled as Go does, the value method wins over the pointer wrapper typed loosely
    ("scanner.Error.Error", "go/scanner.Error.Error"),
    ("Error.Error", "go/scanner.Error.Error"),
    ("(*Error).Error", "go/scanner.(*Error).Error"),
])
def test_lookup_vendored_and_delve_forms(query, want):
    assert lookup(VENDORED, query).name == want


def test_ambiguous_vendored_same_name_lists_unique_forms():
    with pytest.raises(AmbiguousFunction) as e:
        lookup(VENDORED, "FlagSet.Parse")
    # sorted by symbol; `flag.(*FlagSet).Parse` is the standard one's full name, `other/flag` is
    # the shortest path suffix that the other `flag` package does not share
    assert e.value.unique == ["flag.(*FlagSet).Parse", "other/flag.(*FlagSet).Parse", "pflag.(*FlagSet).Parse"]
    for form, full in zip(e.value.unique, e.value.candidates):
        assert lookup(VENDORED, form).name == full


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


@pytest.fixture(scope="module")
def vendorflag(tmp_path_factory):
    """tests/data/vendorflag built in GOPATH mode by the newest Go: a binary with the standard
    `flag` and a vendored package also named `flag`
    (`example.com/vendorflag/vendor/github.com/acme/flag`)."""
    import shutil
    import subprocess

    from conftest import REPO, TOOLCHAINS, newest_go, require_file

    go = newest_go()
    if go is None or not go.exists():
        require_file(TOOLCHAINS / "go-versions", "Go toolchains")
    gopath = tmp_path_factory.mktemp("gopath")
    src = gopath / "src" / "example.com" / "vendorflag"
    shutil.copytree(REPO / "tests" / "data" / "vendorflag", src)
    out = gopath / "vendorflag"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(GOPATH=str(gopath), GO111MODULE="off", GOFLAGS="", CGO_ENABLED="0")
    proc = subprocess.run([str(go), "build", "-o", str(out), "."], cwd=src, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_vendored_package_named_like_a_standard_one(vendorflag):
    from dwarfgo.program import GoProgram

    vendored = "example.com/vendorflag/vendor/github.com/acme/flag.(*FlagSet).Parse"
    with GoProgram(vendorflag) as prog:
        symbols = prog.binary.function_symbols
        with pytest.raises(AmbiguousFunction) as e:
            prog.function("FlagSet.Parse")
        assert e.value.candidates == [vendored, "flag.(*FlagSet).Parse"]
        assert e.value.unique == ["acme/flag.(*FlagSet).Parse", "flag.(*FlagSet).Parse"]
        assert "acme/flag.(*FlagSet).Parse, flag.(*FlagSet).Parse" in str(e.value)
        for form, full in zip(e.value.unique, e.value.candidates):
            assert lookup(symbols, form).name == full
        # the vendored package by its own import path
        for query in ("github.com/acme/flag.(*FlagSet).Parse", "github.com/acme/flag.FlagSet.Parse",
                      "(*acme/flag.FlagSet).Parse"):
            assert lookup(symbols, query).name == vendored, query
        fn = prog.function("github.com/acme/flag.(*FlagSet).Parse")
        assert fn.signature() == ("func (f *example.com/vendorflag/vendor/github.com/acme/flag.FlagSet) "
                                  "Parse(arguments []string) error")


@pytest.mark.parametrize("name, erased", [
    # Go 1.19's .symtab name of an instance, and its function table's (readelf / go tool nm on fixtures/shapes)
    ("main.Map[go.shape.int_0,go.shape.string_1]", "main.Map[...]"),
    ("main.(*Stack[go.shape.struct { A int; B string }_0]).Pop", "main.(*Stack[...]).Pop"),
    ("main.Box[go.shape.[2]int_0].Get", "main.Box[...].Get"),
    ("main.Plain", "main.Plain"),
    # a `]` that closes nothing is text (it used to drop the rest of the name)
    ("main.a]b[go.shape.int_0].c", "main.a]b[...].c"),
])
def test_erase_type_arguments(name, erased):
    from dwarfgo.names import erase_type_arguments
    assert erase_type_arguments(name) == erased


@pytest.mark.parametrize("name, plain", [
    ("main.(*Stack[go.shape.int]).Push", "main.(*Stack).Push"),
    ("main.Max[go.shape.float64]", "main.Max"),
    ("main.Box[go.shape.[2]int_0].Get", "main.Box.Get"),
    ("main.F[2]", "main.F[2]"),  # an array length stays
    ("main.a]b[go.shape.int_0].c", "main.a]b.c"),
])
def test_without_type_arguments(name, plain):
    from dwarfgo.names import without_type_arguments
    assert without_type_arguments(name) == plain


def test_address_selector_among_functions_of_one_name():
    from dwarfgo.names import is_address_selector
    syms = [Symbol("main.Max[...]", 0x1000, 16), Symbol("main.Max[...]", 0x1020, 8), Symbol("main.Min", 0x1040, 8)]
    with pytest.raises(AmbiguousFunction, match=r"main\.Max\[\.\.\.\]@0x1000 \(16 bytes, W0\); "
                                                r"main\.Max\[\.\.\.\]@0x1020 \(8 bytes, W1\)"):
        lookup(syms, "Max[...]", detail=lambda s: f"W{(s.address - 0x1000) // 0x20}")
    assert lookup(syms, "main.Max[...]@0x1020").address == 0x1020
    assert lookup(syms, "Max[...]@0x1000").address == 0x1000
    assert is_address_selector("Max[...]@0x1000") and not is_address_selector("memcpy@GLIBC_2.14")
    with pytest.raises(DwarfgoError, match="which 'main.Max' does not name"):
        lookup(syms, "main.Max@0x1040")


def test_generic_function_named_as_in_the_source():
    """`Max` or `main.(*Stack).Push`, as the source spells a generic function, names its
    instances (`main.Max[go.shape.int]`): the one there is, or an error that lists them; an array
    length is part of a name, not a type argument."""
    syms = [Symbol(n, 0x2000 + 16 * i, 16) for i, n in enumerate([
        "main.Max[go.shape.int]", "main.Max[go.shape.string]",
        "main.(*Stack[go.shape.int]).Push", "main.Only[go.shape.struct { A int; B [2]string }]",
        "type:.eq.[2]string", "main.Maps",
    ])]
    assert lookup(syms, "Only").name == "main.Only[go.shape.struct { A int; B [2]string }]"
    assert lookup(syms, "main.(*Stack).Push").name == "main.(*Stack[go.shape.int]).Push"
    assert lookup(syms, "Stack.Push").name == "main.(*Stack[go.shape.int]).Push"
    with pytest.raises(AmbiguousFunction) as e:
        lookup(syms, "main.Max")
    assert sorted(e.value.candidates) == ["main.Max[go.shape.int]", "main.Max[go.shape.string]"]
    with pytest.raises(FunctionNotFound):
        lookup(syms, "type:.eq.string")  # [2] is an array length, not a type argument
    assert lookup(syms, "Maps").name == "main.Maps"


def test_generic_instances_of_a_real_binary_named_as_in_the_source():
    """The instances `Max` names in the shapes fixture are those readelf lists as main.Max[…]."""
    import subprocess

    from conftest import FIXTURES, go_versions, require_file
    from dwarfgo.program import GoProgram

    go = (go_versions() or ["1.27"])[-1]
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    require_file(binary, "shapes fixture")
    out = subprocess.run(["readelf", "-sW", str(binary)], capture_output=True, text=True, check=True).stdout
    want = sorted({f.split()[7] for f in out.splitlines() if len(f.split()) > 7 and f.split()[7].startswith("main.Max[")})
    assert len(want) >= 2
    with GoProgram(str(binary)) as prog, pytest.raises(AmbiguousFunction) as e:
        prog.lookup("Max")
    assert sorted(e.value.candidates) == want


def test_close_matches_is_difflibs_over_a_binarys_names():
    """names.close_matches (the quick bound first) returns exactly what difflib.get_close_matches
    does, over the demo's ~2,000 function names and their last components, for misspellings:
    a letter dropped, doubled, a dot dropped."""
    import difflib
    import random

    from conftest import REPO
    from dwarfgo.binary import GoBinary
    from dwarfgo.names import close_matches

    with GoBinary(REPO / "fixtures" / "bin" / "demo-go1.22-amd64") as binary:
        names = [s.name for s in binary.function_symbols]
    tails = [n.rsplit(".", 1)[-1] for n in names]
    rng = random.Random(12)
    for i in range(12):
        name = rng.choice(names)
        cut = len(name) // 2
        word = [name[:cut] + name[cut + 1:], name[:cut] + name[cut] + name[cut:], name.replace(".", "", 1)][i % 3]
        for pool, query in ((names, word), (tails, word.rsplit(".", 1)[-1])):
            assert close_matches(query, pool, 5, 0.6) == difflib.get_close_matches(query, pool, 5, 0.6), query


def test_a_misspelled_full_name_suggests_the_function(tmp_path):
    """`sig` on a misspelled full name: one line, the demo's function first (fixtures/demo/main.go)."""
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run([sys.executable, "-m", "dwarfgo", "sig", str(REPO / "fixtures" / "bin" / "demo-go1.22-amd64"),
                           "main.(*BarrierView).Pt"], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path)))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("dwarfgo: error: no function matches 'main.(*BarrierView).Pt'; did you mean: "
                                  "main.(*BarrierView).Put, ")
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("names_from, why", [
    # cmd/compile 1.27's symbol table has two local `ir.(*Func).DeclareParams.func1` (0x6a6600,
    # 0xfa76c0): the closure compiled again where DeclareParams was inlined
    ("symbol table", "local symbols of its symbol table"),
    ("debug file", "local symbols of its debug file"),
    # a stripped binary's function table writes a wrapper without `.abi0`
    ("function table", "without a symbol table, a function and its ABI wrapper share a name"),
])
def test_functions_of_one_name_say_why_by_where_the_names_come_from(names_from, why):
    syms = [Symbol("p.(*Func).DeclareParams.func1", 0x6a6600, 781),
            Symbol("p.(*Func).DeclareParams.func1", 0xfa76c0, 549)]
    with pytest.raises(AmbiguousFunction) as caught:
        lookup(syms, "p.(*Func).DeclareParams.func1", names_from=names_from)
    message = str(caught.value)
    assert why in message
    assert "@0x6a6600 (781 bytes)" in message and "@0xfa76c0 (549 bytes)" in message
    if names_from != "function table":
        assert "without a symbol table" not in message
