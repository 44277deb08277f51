"""`--count-by`, `--sum`, `--hist`: aggregations kept in bpftrace maps, one set per probed function.

    @dg_agg_<n>[<key>, ...]: <count>      --count-by EXPR[,EXPR...]   count() per distinct key
    @dg_agg_<n>: <sum>                    --sum EXPR                  sum() of an integer
    @dg_agg_<n>: + log2 buckets           --hist EXPR                 hist() of an integer
                                          --hist latency              hist() of call latency (ns, --ret)

The values are read with the filter's compiler (filter.py), so the grammar, the Go typing and the
nil/range guards are the same: a call whose key or value cannot be read (a nil pointer on the
way) is not counted, and counted instead in `@dg_unreached_<n>`. Keys are integers, bools (0/1),
a dynamic type (an interface's type descriptor address) or a string, copied up to --max-str bytes
with its true length beside it; a string key comes last in the map key (bpftrace prints string
keys unquoted: last, it is told apart from the rest by position). bpftrace prints every map when
it exits (and with --interval every N seconds); runner/aggregates.py reads that back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import goexpr
from ..errors import DwarfgoError
from ..gotypes import Kind

LATENCY = "latency"


@dataclass
class AggregateKey:
    text: str  # the Go expression
    kind: str  # "int", "uint", "bool", "type" (an interface's dynamic type), "string", "len" (a string key's length)


@dataclass
class AggregatePlan:
    """One map of the program: what runner/aggregates.py needs to show it with Go values."""

    index: int
    function: str
    kind: str  # "count", "sum", "hist"
    expr: str  # the summed/histogrammed expression, "latency", or the keys' texts joined by ", "
    keys: list[AggregateKey] = field(default_factory=list)  # count: in map key order

    @property
    def map_name(self) -> str:
        return f"@dg_agg_{self.index}"

    @property
    def unreached_map(self) -> str:
        return f"@dg_unreached_{self.index}"


@dataclass
class AggregateOptions:
    count_by: list[list[str]] = field(default_factory=list)  # each --count-by: its expressions
    sums: list[str] = field(default_factory=list)
    hists: list[str] = field(default_factory=list)  # expressions, or "latency"
    interval: float | None = None

    @property
    def any(self) -> bool:
        return bool(self.count_by or self.sums or self.hists)

    @property
    def latency(self) -> bool:
        return LATENCY in self.hists


@dataclass
class AggregateCode:
    """For one function's entry probe: statements (reads and map updates) and the plans of its maps."""

    statements: list[str]
    plans: list[AggregatePlan]
    latency: AggregatePlan | None  # updated by the return probes


def compile_aggregates(opts: AggregateOptions, fn, layout, dialect, ptr_size: int, runtime, max_str: int,
                       first_index: int) -> AggregateCode:
    """The aggregation code of `fn` (every aggregation whose expressions name its parameters)."""
    from .filter import _Compiler, _params_of

    comp = _Compiler(fn.name, _params_of(fn, layout), dialect.version, ptr_size, prefix="$dga_")
    comp.use_runtime(runtime)
    names = set(comp.params)
    plans: list[AggregatePlan] = []
    body: list[str] = []
    index = first_index

    def applies(exprs) -> bool:
        return all(e.root in names for e in exprs)

    for texts in opts.count_by:
        exprs = [_parse(t, "--count-by") for t in texts]
        if not applies(exprs):
            continue
        plan = AggregatePlan(index, fn.name, "count", ", ".join(e.text for e in exprs))
        index += 1
        comp.text = plan.expr
        keys, oks, strings = [], [], []
        for e in exprs:
            t = comp.type_of(e)
            kind = _key_kind(t, e.text, comp)
            ok, words = comp.operand(e, t, body, dynamic_type=kind == "type")
            oks.append(ok)
            if kind == "string":
                if strings:
                    comp.fail(f"--count-by {plan.expr}: at most one string key")
                n = comp.var("(int64)0")
                body.append(f"{n} = {words[1]} > {max_str} ? {max_str} : ({words[1]} < 0 ? 0 : {words[1]});")
                strings = [AggregateKey(f"len({e.text})", "len"), AggregateKey(e.text, "string")]
                string_words = [words[1], f"str({words[0]}, {n} + 1)"]
            else:
                keys.append((AggregateKey(e.text, kind), words[0]))
        plan.keys = [k for k, _ in keys] + strings
        key_exprs = [w for _, w in keys] + (string_words if strings else [])
        body += _when_all(oks, f"{plan.map_name}[{', '.join(key_exprs)}] = count();",
                          f"{plan.unreached_map} = count();")
        plans.append(plan)
    for kind, texts in (("sum", opts.sums), ("hist", [h for h in opts.hists if h != LATENCY])):
        for text in texts:
            e = _parse(text, f"--{kind}")
            if not applies([e]):
                continue
            plan = AggregatePlan(index, fn.name, kind, e.text)
            index += 1
            comp.text = e.text
            t = comp.type_of(e)
            if t.kind not in (Kind.INT, Kind.UINT, Kind.UINTPTR):
                comp.fail(f"--{kind} {e.text}: an integer expression is needed, not {t.name}")
            ok, words = comp.operand(e, t, body)
            body += _when_all([ok], f"{plan.map_name} = {kind}({words[0]});", f"{plan.unreached_map} = count();")
            plans.append(plan)
    latency = None
    if opts.latency:
        latency = AggregatePlan(index, fn.name, "hist", LATENCY)
        plans.append(latency)
    decls = [f"{v} = {z};" for v, z in comp.decls.items()]
    return AggregateCode(decls + body, plans, latency)


def check_aggregates(opts: AggregateOptions, functions, ret: bool, dialect) -> None:
    """Each expression names parameters of at least one probed function; latency needs returns."""
    if opts.latency:
        if not ret:
            raise DwarfgoError("--hist latency: the latency of a call is measured at its return: add --ret")
        if dialect.no_ret_probes:
            raise DwarfgoError(f"--hist latency: {dialect.no_ret_probes}")
    have = set()
    for fn in functions:
        have |= set(fn.names_of([p for p in fn.inputs if not p.is_hidden]))
    groups = [(f"--count-by {','.join(g)}", g) for g in opts.count_by]
    groups += [(f"--sum {s}", [s]) for s in opts.sums]
    groups += [(f"--hist {h}", [h]) for h in opts.hists if h != LATENCY]
    for what, texts in groups:
        roots = {_parse(t, what.split()[0]).root for t in texts}
        if not any(roots <= set(fn.names_of([p for p in fn.inputs if not p.is_hidden])) for fn in functions):
            raise DwarfgoError(f"{what}: no probed function has all of {', '.join(sorted(roots))} as parameters "
                               f"(parameters: {', '.join(sorted(have)) or 'none'})")
    if opts.interval is not None and not 1 <= opts.interval <= 10 ** 7:  # NaN fails both
        raise DwarfgoError("--interval: from 1 to 10,000,000 seconds")


def _parse(text: str, option: str) -> goexpr.ArgExpr:
    try:
        return goexpr.parse(text)
    except DwarfgoError as e:
        raise DwarfgoError(str(e).replace("--args", option, 1)) from None


def _key_kind(t, text: str, comp) -> str:
    if t.kind is Kind.INT:
        return "int"
    if t.kind in (Kind.UINT, Kind.UINTPTR):
        return "uint"
    if t.kind is Kind.BOOL:
        return "bool"
    if t.kind is Kind.STRING:
        return "string"
    if t.kind is Kind.INTERFACE:
        return "type"
    comp.fail(f"--count-by {text}: cannot count by a {t.name}; use an integer, bool, string or interface "
              f"(its dynamic type)")


def _when_all(oks: list[str], then: str, otherwise: str) -> list[str]:
    out = [f"if ({ok} == 1) {{" for ok in oks] + [then]
    for _ in oks:
        out += ["} else {", otherwise, "}"]
    return out
