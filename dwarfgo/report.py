"""Plain-data (JSON-ready) records of the model, shared by the CLI's --json outputs."""

from __future__ import annotations

from .abi.assign import FunctionLayout, Location, RegisterPiece
from .functions import Function, Parameter, split_symbol
from .gotypes import GoType


def type_record(t: GoType) -> dict:
    return {"name": t.name, "kind": t.kind.value, "size": t.size, "align": t.align}


def parameter_record(p: Parameter) -> dict:
    return {
        "name": p.name,
        "source_name": p.source_name,
        "hidden": p.is_hidden,
        "type": type_record(p.type),
    }


def location_record(loc: Location) -> dict:
    pieces = []
    for p in loc.pieces:
        base = {"path": p.leaf.path, "offset_in_value": p.leaf.offset, "size": p.leaf.size, "type": p.leaf.type_name}
        if isinstance(p, RegisterPiece):
            base.update(kind="register", register=p.register, bpftrace=p.bpf_name if p.readable else None,
                        unavailable=p.unavailable_reason)
        else:
            base.update(kind="stack", sp_offset=p.offset)
        pieces.append(base)
    return {"where": loc.describe(), "in_registers": loc.in_registers, "stack_offset": loc.stack_offset,
            "spill_offset": loc.spill_offset, "pieces": pieces}


def evidence_record(e) -> dict:
    m = e.machine
    return {
        "name": e.function.name, "address": e.function.address, "abi": e.abi, "role": e.role,
        "producer": e.producer,
        "prologue": None if m is None else {"summary": m.prologue, "check": m.stack_check.kind,
                                             "shape": m.stack_check.shape, "keep": m.stack_check.keep, "frame_size": m.frame_size},
        "ret_sites": [] if m is None else m.ret_sites,
        "spills": None if e.spills is None else {"agrees": e.spills.agrees, "detail": e.spills.detail},
        "dwarf": {"verdict": e.dwarf.verdict, "checks": [
            {"name": c.name, "computed": c.computed, "dwarf": c.dwarf, "agrees": c.agrees, "detail": c.detail,
             "known": c.known} for c in e.dwarf.checks]},
        "contradictions": e.contradictions,
    }


def function_record(prog, fn: Function, with_layout: bool = True, layout: FunctionLayout | None = None) -> dict:
    pkg, _, _ = split_symbol(fn.name)
    rec = {
        "name": fn.name,
        "address": fn.address,
        "package": fn.unit.name if fn.unit else pkg,
        "signature": fn.signature(),
        "go_version": prog.binary.go_version,
        "arch": prog.binary.arch,
        "abi": "ABIInternal" if fn.regabi else "ABI0",
        "receiver": parameter_record(fn.receiver) if fn.receiver else None,
        "params": [parameter_record(p) for p in fn.inputs if p is not fn.receiver],
        "results": [parameter_record(r) for r in fn.results],
    }
    rec["omitted_params"] = fn.omitted_inputs
    rec["results_note"] = fn.results_note
    rec["params_note"] = fn.inputs_note
    if with_layout:  # one function (sig): its DIE's attributes are read, which a whole listing avoids
        rec["wrapper"] = fn.wrapper_kind
    if layout is not None:
        rec["abi"] = layout.abi
        rec["locations_unknown"] = layout.unknown
        locs = {id(loc.param): loc for loc in layout.inputs + layout.results}
        for group, params in (("params", [p for p in fn.inputs if p is not fn.receiver]), ("results", fn.results)):
            for r, p in zip(rec[group], params):
                if id(p) in locs:
                    r["location"] = location_record(locs[id(p)])
        if fn.receiver is not None and id(fn.receiver) in locs:
            rec["receiver"]["location"] = location_record(locs[id(fn.receiver)])
        rec["abi_inputs"] = [loc.name for loc in layout.inputs]
        rec["spill_area"] = {"offset": layout.arch.arg_base + layout.spill_offset, "size": layout.spill_size}
    if not with_layout:
        for group in ("params", "results"):
            rec[group] = [{"name": r["source_name"], "type": r["type"]["name"]} for r in rec[group]]
        if rec["receiver"]:
            rec["receiver"] = {"name": rec["receiver"]["source_name"], "type": rec["receiver"]["type"]["name"]}
    return rec
