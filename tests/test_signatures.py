"""`dwarfgo sig` recovers every fixture function's signature exactly as the Go source writes it.

Expectations come from the fixture source through go/types (scripts/sourcesigs), for
every Go version, both architectures and the build variants.
"""

from __future__ import annotations

import re

import pytest

from conftest import REQUIRE, TOOLCHAINS, Built, expected_builds, go_versions, require_file, source_signatures
from dwarfgo.functions import Function
from dwarfgo.program import GoProgram
from dwarfgo.verify.evidence import layout_for

FIXTURE_NAMES = ("shapes", "demo", "stackgrowth", "concurrent", "coldmem")


def _all_builds() -> list[Built]:
    out = []
    for name in FIXTURE_NAMES:
        out += expected_builds(name)
    return out


def normalize_type(t: str) -> str:
    """Spelling differences between go/types and Go's DWARF names that are not differences of type."""
    t = re.sub(r"\bbyte\b", "uint8", t)
    t = re.sub(r"\brune\b", "int32", t)
    t = re.sub(r"\bany\b", "interface {}", t)
    return re.sub(r"\s+", "", t)


def _strip_brackets(name: str) -> str:
    out, depth = [], 0
    for ch in name:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _blank(name: str) -> str:
    return "_" if name in ("", "_") else name


def _expected_params(sig: dict) -> list[tuple[str, str]]:
    params = []
    if sig.get("receiver"):
        params.append((sig["receiver"]["name"], sig["receiver"]["type"]))
    params += [(p["name"], p["type"]) for p in sig["params"]]
    return params


def _zero_size_order(fn: Function, got: list, want: list) -> list:
    """Go <= 1.16 lists parameters by frame offset; a zero-size parameter shares its offset with
    the next one and may come after it. Put such a pair back in source order (only that swap)."""
    sizes = {(p.source_name, p.type.name): p.type.size for p in fn.inputs}
    got = list(got)
    for i in range(len(got) - 1):
        if got[i] != want[i] and got[i] == want[i + 1] and got[i + 1] == want[i] \
                and 0 in (sizes.get(got[i]), sizes.get(got[i + 1])):
            got[i], got[i + 1] = got[i + 1], got[i]
    return got


def _compare(fn: Function, sig: dict, generic: bool, version: tuple[int, int], flagged: bool) -> list[str]:
    problems = []
    got_in = [(p.source_name, p.type.name) for p in fn.inputs if not p.is_hidden]
    want_in = _expected_params(sig)
    if version < (1, 22) and any(n in ("", "_") for n, _ in want_in):
        # Go before 1.22 writes no DWARF entry for blank or unnamed parameters: dwarfgo cannot
        # list them, and must say that the locations of the others are unknown.
        want_in = [(n, t) for n, t in want_in if n not in ("", "_")]
        if not flagged:
            problems.append("blank/unnamed parameters missing from DWARF, but dwarfgo did not flag the locations as unknown")
    reordered = False
    if version < (1, 17):
        dwarf_order, got_in = got_in, _zero_size_order(fn, got_in, want_in)
        reordered = got_in != dwarf_order
    got_out = [(r.source_name, r.type.name) for r in fn.results]
    want_out = [(r["name"], r["type"]) for r in sig["results"]]
    for label, got, want in (("params", got_in, want_in), ("results", got_out, want_out)):
        if len(got) != len(want):
            problems.append(f"{label}: got {got}, want {want}")
            continue
        for (gn, gt), (wn, wt) in zip(got, want):
            # DWARF tells a blank parameter from an unnamed one in no Go version (`~p0` for both);
            # results: an unnamed one is `~r0`, a blank one `~r0` among named ones (or `~b1`)
            if (_blank(gn) != _blank(wn)) if label == "params" else (gn != wn):
                problems.append(f"{label}: name {gn!r} != {wn!r}")
            # generic shape instantiations carry go.shape types: names and count are what we check
            if not generic and normalize_type(gt) != normalize_type(wt):
                problems.append(f"{label} {wn}: type {gt!r} != {wt!r}")
    if bool(fn.receiver) != bool(sig.get("receiver")):
        problems.append(f"receiver: got {fn.receiver_name!r}, want {sig.get('receiver')}")
    dropped = len(want_in) != len(_expected_params(sig))
    if not (generic or dropped or reordered or problems):
        want_text = _expected_text(fn.name, sig)
        if normalize_type(fn.signature()) != normalize_type(want_text):
            problems.append(f"signature: got {fn.signature()!r}, want {want_text!r}")
    return problems


def _expected_text(key: str, sig: dict) -> str:
    """`dwarfgo sig`'s first line as the source has it (a variadic `...T` is `[]T`: Go's DWARF
    does not mark it; an unnamed parameter is `_`: DWARF names it like a blank one)."""
    def param(name, typ):
        return f"{name or '_'} {typ}"

    out = "func "
    recv = sig.get("receiver")
    if recv:
        out += "(" + (f"{recv['name']} {recv['type']}" if recv["name"] else recv["type"]) + ") "
        out += key.rsplit(".", 1)[1]
    else:
        out += key.split(".", 1)[1]  # the fixtures are package main
    out += "(" + ", ".join(param(p["name"], p["type"]) for p in sig["params"]) + ")"
    results = sig["results"]
    if len(results) == 1 and not results[0]["name"]:
        out += " " + results[0]["type"]
    elif results:
        out += " (" + ", ".join(f"{r['name']} {r['type']}" if r["name"] else r["type"] for r in results) + ")"
    return out


@pytest.mark.matrix
@pytest.mark.parametrize("built", _all_builds(), ids=lambda b: b.id)
def test_signatures_match_source(built: Built):
    require_file(built.path, "fixture binary")
    sigs = source_signatures(built.fixture)
    checked = 0
    problems = []
    with GoProgram(built.path) as prog:
        symbols = prog.binary.function_symbols
        for key, sig in sigs.items():
            if not (sig.get("noinline") or sig.get("inlinable")):
                continue
            if sig.get("go118") and built.version < (1, 18):
                continue
            generic = bool(sig.get("generic")) or "[" in key
            if generic:
                cands = [s for s in symbols if _strip_brackets(s.name) == _strip_brackets(key) and "[" in s.name]
            else:
                cands = [s for s in symbols if s.name == key]
            if not cands:
                problems.append(f"{key}: no symbol in the binary")
                continue
            for sym in cands:
                fn = prog.functions.at(sym)
                if not fn.has_dwarf:
                    problems.append(f"{sym.name}: no DWARF subprogram")
                    continue
                flagged = bool(layout_for(prog, fn).unknown)
                problems += [f"{sym.name}: {p}" for p in _compare(fn, sig, generic, built.version, flagged)]
                checked += 1
    assert not problems, "\n".join(problems)
    minimum = {"shapes": 46, "demo": 5}.get(built.fixture, 1)
    assert checked >= minimum, f"only {checked} functions checked"


def _inlinable(sigs: dict) -> dict:
    return {k: v for k, v in sigs.items() if v.get("inlinable")}


@pytest.mark.matrix
@pytest.mark.parametrize("built", [b for b in expected_builds("shapes") if b.variant in ("default", "pie", "trimpath")],
                         ids=lambda b: b.id)
def test_inlinable_functions_are_out_of_line_copies(built: Built):
    """The shapes fixture's `//dwarfgo:inlinable` functions are what test_signatures_match_source
    needs them to be: out-of-line copies described by an abstract origin, whose concrete DIE has
    parameters of its own (unnamed or blank results), with every version of the matrix."""
    require_file(built.path, "fixture binary")
    wanted = _inlinable(source_signatures("shapes"))
    assert len(wanted) >= 6
    own_children = 0
    with GoProgram(built.path) as prog:
        by_name = {s.name: s for s in prog.binary.function_symbols}
        for key in wanted:
            assert key in by_name, f"{key}: no out-of-line copy in the binary"
            fn = prog.functions.at(by_name[key])
            assert fn.die is not None and "DW_AT_abstract_origin" in fn.die.attributes, \
                f"{key}: not described by an abstract origin"
            own_children += sum(1 for c in fn.die.iter_children()
                                if c.tag == "DW_TAG_formal_parameter" and "DW_AT_abstract_origin" not in c.attributes)
            # the union: every result of the source, each with its own location DIE
            assert len(fn.results) == len(wanted[key]["results"]), (key, fn.signature())
            assert all(r.die is not None for r in fn.results), (key, fn.signature())
    assert own_children >= 8, "the concrete DIEs no longer carry parameters of their own"


def test_matrix_is_complete():
    """CI builds everything: the matrix listed by the installed toolchains is present on disk."""
    if not go_versions():
        require_file(TOOLCHAINS / "go-versions", "toolchain list")
    assert len(go_versions()) >= 9 or not REQUIRE, f"only Go {go_versions()} installed"
    missing = [b.id for b in _all_builds() if not b.path.exists()]
    if missing and not REQUIRE:
        pytest.skip(f"{len(missing)} fixture binaries not built")
    assert not missing, f"missing builds: {missing[:20]}"
