"""Live: `--count-by`, `--sum`, `--hist` kept in bpftrace maps (no line per call), shown by trace
with Go values as keys. fixtures/concurrent calls main.Work from several goroutines: the counts
per key and the sum equal what the test computes from the fixture's own report, and each
histogram's buckets add up to the number of calls counted (all with a filter on the call)."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import FIXTURES
from test_live import _live_preconditions, installed_bpftrace, trace_fixture


@pytest.mark.live
@pytest.mark.parametrize("go, bt", [("1.27", "0.27"), ("1.15", "0.17")])
def test_aggregations_equal_the_report(go, bt):
    """On 0.27 with --ret (the latency histogram too); on 0.17 (no RET probes) over the stack ABI."""
    binary = FIXTURES / f"go{go}" / "amd64" / "default" / "concurrent"
    _live_preconditions(binary)
    version, path = installed_bpftrace(bt)
    ret = version != "0.17"
    args = ["--count-by", "tag", "--count-by", "worker,len(job.Input)", "--sum", "item", "--hist", "job.ID",
            *(["--hist", "latency"] if ret else []), "--filter", "item >= 10"]
    report, out, errors, rc = trace_fixture(binary, ["main.Work"], path, ret=ret,
                                            fixture_args=("-workers", "3", "-calls", "40"), trace_args=args)
    assert rc == 0, "\n".join(errors[-20:])
    assert not [o for o in out if "event" in o], "aggregating printed calls"
    tables = {(t["aggregate"], t["of"]): t for t in out if t.get("final")}
    kept = [r["args"] for r in report if r["args"]["item"] >= 10]
    assert len(kept) == 3 * 30
    by_tag = {tuple(row["key"]): row["count"] for row in tables[("count", "tag")]["rows"]}
    assert by_tag == {(tag,): n for tag, n in Counter(a["tag"] for a in kept).items()}
    by_pair = {tuple(row["key"]): row["count"] for row in tables[("count", "worker, len(job.Input)")]["rows"]}
    assert by_pair == dict(Counter((a["worker"], len(a["job"]["Input"])) for a in kept))
    assert tables[("sum", "item")]["sum"] == sum(a["item"] for a in kept)
    for of in ("job.ID", "latency") if ret else ("job.ID",):
        assert sum(b["count"] for b in tables[("hist", of)]["buckets"]) == len(kept), of
    assert all(t["unreached"] == 0 for t in tables.values())
