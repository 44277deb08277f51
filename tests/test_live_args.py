"""Live: `dwarfgo trace --args EXPR` prints exactly the selected part of each argument.

The expected value of each expression is computed here from the fixture's own report of
its arguments (a JSON walk written for this test: fields by key, pointers already followed
by the fixture's encoder, slices through "items", len/cap from the report), never from
dwarfgo. A nil pointer on the way or an index past the length must come out as
unavailable with that reason.
"""

from __future__ import annotations

import re

import pytest

from conftest import FIXTURES, go_versions
from test_live import _live_preconditions, installed_bpftrace, reported_calls, trace_fixture

# (function, expressions); every function exists in every Go version of the matrix
SELECTIONS = {
    "main.List": ["head.Val", "head.Name", "head.Next.Name", "head.Next.Next.Val", "head.Next.Next.Next.Val",
                  "len(head.Name)"],
    "main.Slices": ["len(xs)", "cap(xs)", "xs[0]", "xs[2]", "ps[1].B", "ps[1]", "ss[0]", "len(ss[2])", "cap(ps)"],
    "main.Maps": ["len(m)", "len(idx)"],
    "main.Arrays": ["a3[1]", "len(a3)", "a1[0]", "len(a1[0])"],
    "main.StructNested": ["n.P.B", "n.In.U", "n.Name", "n.P"],
    "main.Chans": ["len(c)", "cap(c)", "len(r)", "cap(s)"],
    "main.Variadic": ["nums[1]", "len(nums)", "prefix"],
    "main.StructBig": ["b.J", "b.S", "tag"],
}

_NIL, _RANGE = "nil", "out of range"


def expected(args: dict, expr: str):
    """(value, None) or (None, why) where why is _NIL or _RANGE; from the report alone."""
    m = re.fullmatch(r"(len|cap)\((.*)\)", expr)
    builtin, path = (m.group(1), m.group(2)) if m else (None, expr)
    root, rest = re.match(r"(\w+)(.*)", path).groups()
    v = args[root]
    for field, index in re.findall(r"\.(\w+)|\[(\d+)\]", rest):
        if v is None:  # a nil pointer (field) or a nil slice (index: Go says out of range)
            return None, (_NIL if field else _RANGE)
        if field:
            v = v[field]
            continue
        i = int(index)
        if isinstance(v, str):
            data = v.encode()
            return (data[i], None) if i < len(data) else (None, _RANGE)
        items = v["items"] if isinstance(v, dict) else v
        if i >= len(items):
            return None, _RANGE
        v = items[i]
    if builtin is None:
        return v, None
    if v is None:  # nil slice, map or chan: 0; a nil pointer cannot reach here (no len of a pointer)
        return 0, None
    if isinstance(v, str):
        return len(v.encode()), None
    if isinstance(v, list):
        return len(v), None
    return v[builtin], None


# every Go version on the newest bpftrace; the oldest and newest on 0.17
_VERSIONS = go_versions() or ["1.22"]
MATRIX = [(v, "newest") for v in _VERSIONS] + [(v, "0.17") for v in sorted({_VERSIONS[0], _VERSIONS[-1]})]


@pytest.mark.live
@pytest.mark.parametrize("go, bt", MATRIX, ids=[f"go{v}-bpftrace{b}" for v, b in MATRIX])
def test_args_expressions_exact(go, bt):
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    funcs = list(SELECTIONS)
    exprs = sorted({e for es in SELECTIONS.values() for e in es})
    trace_args = [a for e in exprs for a in ("--args", e)]
    # the report names functions as the fixture calls them; every one here is in the report
    report = [r for r in reported_calls(binary) if r["func"] in SELECTIONS]
    assert {r["func"] for r in report} == set(SELECTIONS)
    _, events, errors, rc = trace_fixture(binary, funcs, path, ret=False, trace_args=trace_args,
                                          calls_traced=lambda rep: sum(r["func"] in SELECTIONS for r in rep))
    assert rc == 0, "\n".join(errors[-20:])
    calls = sorted((e for e in events if e["event"] == "call"), key=lambda e: e["ts"])
    checked, wrong, repeats = 0, [], 0
    for func in SELECTIONS:
        got = [e for e in calls if e["func"] == func]
        want = [r for r in report if r["func"] == func]
        j = 0
        for i, ev in enumerate(got):
            assert set(ev["args"]) == set(SELECTIONS[func]), ev["args"]
            if j < len(want):
                problems = _compare(ev["args"], want[j])
                if not problems:
                    checked += len(SELECTIONS[func])
                    j += 1
                    continue
            # bpftrace 0.17 may report one call twice (documented): the same goroutine, same values
            if (version == "0.17" and i > 0 and ev["args"] == got[i - 1]["args"]
                    and ev["goroutine"] == got[i - 1]["goroutine"]):
                repeats += 1
                continue
            wrong += problems if j < len(want) else [f"{func}: extra call event {ev['args']}"]
            j += 1
        if j < len(want):
            wrong.append(f"{func}: {len(want) - j} call(s) without an event")
    assert not wrong, "\n".join(wrong)
    assert repeats <= 2, f"{repeats} repeated call events"
    assert checked >= 60


def _compare(got: dict, rec: dict) -> list[str]:
    out = []
    for expr in SELECTIONS[rec["func"]]:
        value, why = expected(rec["args"], expr)
        actual = got[expr]
        if why is not None:
            ok = isinstance(actual, dict) and why in str(actual.get("unavailable", ""))
        else:
            ok = actual == value
        if not ok:
            out.append(f"{rec['func']} call {rec['seq']}: {expr} = {actual!r}, fixture passed "
                       f"{value if why is None else why!r}")
    return out
