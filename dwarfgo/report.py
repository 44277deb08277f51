"""Plain-data (JSON-ready) records of the model, shared by the CLI's --json outputs."""

from __future__ import annotations

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


def function_record(prog, fn: Function, with_layout: bool = True) -> dict:
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
    if not with_layout:
        for group in ("params", "results"):
            rec[group] = [{"name": r["source_name"], "type": r["type"]["name"]} for r in rec[group]]
        if rec["receiver"]:
            rec["receiver"] = {"name": rec["receiver"]["source_name"], "type": rec["receiver"]["type"]["name"]}
    return rec
