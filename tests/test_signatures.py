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
    if version < (1, 17):
        got_in = _zero_size_order(fn, got_in, want_in)
    got_out = [(r.source_name, r.type.name) for r in fn.results]
    want_out = [(r["name"], r["type"]) for r in sig["results"]]
    for label, got, want in (("params", got_in, want_in), ("results", got_out, want_out)):
        if len(got) != len(want):
            problems.append(f"{label}: got {got}, want {want}")
            continue
        for (gn, gt), (wn, wt) in zip(got, want):
            if _blank(gn) != _blank(wn):
                problems.append(f"{label}: name {gn!r} != {wn!r}")
            # generic shape instantiations carry go.shape types: names and count are what we check
            if not generic and normalize_type(gt) != normalize_type(wt):
                problems.append(f"{label} {wn}: type {gt!r} != {wt!r}")
    if bool(fn.receiver) != bool(sig.get("receiver")):
        problems.append(f"receiver: got {fn.receiver_name!r}, want {sig.get('receiver')}")
    return problems


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
            if not sig.get("noinline"):
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
    minimum = {"shapes": 40, "demo": 5}.get(built.fixture, 1)
    assert checked >= minimum, f"only {checked} functions checked"


def test_matrix_is_complete():
    """CI builds everything: the matrix listed by the installed toolchains is present on disk."""
    if not go_versions():
        require_file(TOOLCHAINS / "go-versions", "toolchain list")
    assert len(go_versions()) >= 9 or not REQUIRE, f"only Go {go_versions()} installed"
    missing = [b.id for b in _all_builds() if not b.path.exists()]
    if missing and not REQUIRE:
        pytest.skip(f"{len(missing)} fixture binaries not built")
    assert not missing, f"missing builds: {missing[:20]}"
