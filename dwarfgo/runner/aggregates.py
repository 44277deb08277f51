"""Read back the aggregation maps bpftrace prints (at exit, and every --interval) and show them with
Go values as keys: a table per map, or one JSON object per map.

bpftrace's formats (0.17, 0.23, 0.27):

    @dg_agg_0[3, w1]: 250          count: the key's fields, a string key last and unquoted
    @dg_agg_1: 31125               sum
    @dg_agg_2:                     hist: then one line per bucket, ended by an empty line
    [0]                    1 |@                                                   |
    [2, 4)                 2 |@@                                                  |
    @dg_unreached_0: 4             calls whose key or value could not be read
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from ..emit.aggregate import AggregatePlan

_MAP_LINE = re.compile(r"^@dg_(agg|unreached)_(\d+)(?:\[(.*)\])?:\s*(-?\d+)?\s*$")
_BUCKET = re.compile(r"^\[([^\]]*?)(?:\]|\))\s+(\d+)\s*\|")


@dataclass
class AggregateTable:
    plan: AggregatePlan
    rows: list[tuple[list, int]] = field(default_factory=list)  # (key values, count) / (bucket, count)
    total: int | None = None  # a sum
    unreached: int = 0

    def to_json(self) -> dict:
        p = self.plan
        rec = {"aggregate": p.kind, "func": p.function, "of": p.expr, "unreached": self.unreached}
        if p.kind == "count":
            rec["by"] = [k.text for k in p.keys if k.kind != "len"]
            rec["rows"] = [{"key": key, "count": n} for key, n in self.rows]
        elif p.kind == "sum":
            rec["sum"] = self.total
        else:
            rec["buckets"] = [{"bucket": b, "count": n} for b, n in self.rows]
        return rec

    def lines(self) -> list[str]:
        p = self.plan
        if p.kind == "sum":
            out = [f"{p.function}: sum({p.expr}) = {self.total if self.total is not None else 0}"]
        elif p.kind == "count":
            out = [f"{p.function}: calls by {p.expr}"]
            shown = [(", ".join(_go(v) for v in key), n) for key, n in self.rows]
            width = max((len(k) for k, _ in shown), default=0)
            out += [f"  {k:<{width}}  {n}" for k, n in sorted(shown, key=lambda kn: -kn[1])]
        else:
            unit = " (ns)" if p.expr == "latency" else ""
            out = [f"{p.function}: histogram of {p.expr}{unit}"]
            width = max((len(b) for b, _ in self.rows), default=0)
            out += [f"  {b:<{width}}  {n}" for b, n in self.rows]
        if self.unreached:
            out.append(f"  ({self.unreached} call(s) not counted: a nil pointer or a short slice on the way)")
        return out


def _go(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if v is None:
        return "nil"
    return str(v)


class AggregateReader:
    """Fed every output line; takes the aggregation maps' lines. `snapshot()` gives the tables read
    since the last one (bpftrace prints them all each time)."""

    def __init__(self, plans: list[AggregatePlan], type_name: Callable[[int], str | None] | None = None):
        self.plans = {p.index: p for p in plans}
        self.type_name = type_name or (lambda addr: None)
        self.tables: dict[int, AggregateTable] = {}
        self._hist: AggregateTable | None = None

    def feed(self, line: str) -> bool:
        """True when the line was one of the maps'."""
        line = line.rstrip("\n")
        if self._hist is not None:
            m = _BUCKET.match(line)
            if m:
                self._hist.rows.append((f"[{m.group(1)}{']' if ',' not in m.group(1) else ')'}", int(m.group(2))))
                return True
            self._hist = None
            if not line.strip():
                return True
        m = _MAP_LINE.match(line)
        if not m or int(m.group(2)) not in self.plans:
            return False
        plan = self.plans[int(m.group(2))]
        table = self.tables.setdefault(plan.index, AggregateTable(plan))
        value = int(m.group(4)) if m.group(4) is not None else None
        if m.group(1) == "unreached":
            table.unreached = value or 0
        elif plan.kind == "count" and m.group(3) is not None:
            table.rows.append((self._key(plan, m.group(3)), value or 0))
        elif plan.kind == "sum":
            table.total = value
        elif plan.kind == "hist":
            table.rows = []
            self._hist = table
        return True

    def _key(self, plan: AggregatePlan, text: str) -> list:
        numeric = [k for k in plan.keys if k.kind != "string"]
        parts = text.split(", ", len(numeric)) if any(k.kind == "string" for k in plan.keys) else text.split(", ")
        out = []
        for k, raw in zip(plan.keys, parts):
            if k.kind == "string":
                out.append(raw)
            elif k.kind == "len":
                continue  # shown through the string (a string cut at --max-str is marked below)
            elif k.kind == "bool":
                out.append(int(raw) != 0)
            elif k.kind == "type":
                addr = int(raw)
                out.append(None if addr == 0 else (self.type_name(addr) or hex(addr)))
            else:
                out.append(int(raw))
        lens = [int(p) for k, p in zip(plan.keys, parts) if k.kind == "len"]
        if lens and out and isinstance(out[-1], str) and len(out[-1].encode()) < lens[0]:
            out[-1] = f"{out[-1]}…(len {lens[0]})"
        return out

    def snapshot(self) -> list[AggregateTable]:
        out = [self.tables[i] for i in sorted(self.tables)]
        self.tables = {}
        self._hist = None
        return out
