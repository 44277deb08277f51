"""Live: `--filter` decides in the probe. For fixtures/shapes functions with int, unsigned, bool,
string, pointer-to-struct and slice arguments, the calls `trace --filter` prints are exactly the
calls whose values, as the fixture reports them, satisfy the filter (computed here in Python
from the report, not by dwarfgo); their values are exact; with --ret their returns and no
others are shown; filtered-out calls are never reported as lost."""

from __future__ import annotations

import pytest

from conftest import FIXTURES
from livecompare import compare_run
from test_live import _live_preconditions, installed_bpftrace, trace_fixture


def _int(v) -> int:
    return int(v)  # the fixture writes integers beyond 2^53 as decimal strings


TAB = 'tab\there "quoted" \\ newline\n'
# (filter as given to dwarfgo, the fixture function, the same condition over the reported arguments)
FILTERS = [
    # a NUL in the constant ("hello" must not match), constants that are prefixes of a value
    # ("hell" of "hello", ten digits of the 300-byte string), escapes, UTF-8, the empty string
    ('main.Strings: s == "hello\\x00" || s == "0123456789" || s == "hell" || s == "tab\\there \\"quoted\\" \\\\ '
     'newline\\n" || (s == "" && t == "non-empty") || t == "ünïcødé ✓ 🎉x"',
     "main.Strings", lambda a: a["s"] in (TAB,) or (a["s"] == "" and a["t"] == "non-empty")),
    ("main.Bools: a && !b", "main.Bools", lambda a: a["a"] and not a["b"]),
    ("main.Signed: (d < 0 && e != -5) || c == 2", "main.Signed",
     lambda a: (_int(a["d"]) < 0 and _int(a["e"]) != -5) or a["c"] == 2),
    # 1<<63 is above every int64: an unsigned comparison
    ("main.Unsigned: d > 5 && a != 255", "main.Unsigned", lambda a: _int(a["d"]) > 5 and a["a"] != 255),
    ('p.A == 5 && *n == -55 && s == nil && pp != nil && (*pp).B == "fifty"', "main.Pointers",
     lambda a: a["p"]["A"] == 5 and a["n"] == -55 and a["s"] is None and a["pp"]["B"] == "fifty"),
    # head is nil in one call: the filter is false there, nothing is read through it
    ('head.Next.Name == "second" && head.Val >= 1', "main.List",
     lambda a: a["head"] is not None and a["head"]["Next"] is not None and a["head"]["Next"]["Name"] == "second"
     and a["head"]["Val"] >= 1),
    # ss[2] out of range in one call: false
    ('len(ss) == 3 && ss[2] == "ccc" && ps[1].A == 2 && xs[0] < 0', "main.Slices",
     lambda a: a["ss"]["len"] == 3 and a["ss"]["items"][2] == "ccc" and a["ps"]["items"][1]["A"] == 2
     and a["xs"]["items"][0] < 0),
    ("main.Bytes: b != nil && len(b) > 2", "main.Bytes", lambda a: a["b"] is not None and a["b"]["len"] > 2),
]

CASES = [("1.27", "0.27", True), ("1.15", "0.17", False)]


@pytest.mark.live
@pytest.mark.parametrize("go, bt, ret", CASES, ids=[f"go{g}-bpftrace{b}" for g, b, _ in CASES])
def test_filter_prints_exactly_the_matching_calls(go, bt, ret):
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "shapes"
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    funcs = sorted({f for _, f, _ in FILTERS})
    args = [a for text, _, _ in FILTERS for a in ("--filter", text)]
    report, events, errors, rc = trace_fixture(binary, funcs, path, ret, trace_args=args)
    assert rc == 0, "\n".join(errors[-20:])
    wanted = []
    for _, func, holds in FILTERS:
        calls = [r for r in report if r["func"] == func]
        matching = [r for r in calls if holds(r["args"])]
        # each filter keeps some calls and, where the fixture makes more than one, drops some
        assert matching and (len(matching) < len(calls) or len(calls) == 1), (func, len(matching), len(calls))
        wanted += matching
    tally, problems = compare_run(wanted, events, with_results=ret)
    assert not tally.mismatches, "wrong values:\n" + "\n".join(tally.mismatches[:50])
    assert not problems, "\n".join(problems) + "\ntrace stderr:\n" + "\n".join(errors[-10:])
    assert not [e for e in errors if "missing" in e or "cut short" in e], errors
    assert tally.checked > 20
