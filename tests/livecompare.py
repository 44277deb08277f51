"""Compare decoded trace events with what a fixture program reported it passed (its -report JSON).

The fixture's encoding (fixtures/README.md) and dwarfgo's JSON differ in form, never in
content: this module states how each form maps, and counts what it checked.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field


@dataclass
class Tally:
    checked: int = 0  # scalar values compared equal
    unavailable: dict = field(default_factory=dict)  # reason -> count
    mismatches: list = field(default_factory=list)
    truncated: int = 0  # values not fully copied (string limits, item limits, depth): compared as far as read
    max_str: int | None = None  # --max-str of the run: a cut ASCII string must show exactly that many bytes

    def unavailable_count(self) -> int:
        return sum(self.unavailable.values())


def _as_int(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return None
    return None


def _float_bits(value, size: int) -> int | None:
    if isinstance(value, dict) and "bits" in value:
        return int(value["bits"], 16)
    if isinstance(value, (int, float)):
        if size == 4:
            return struct.unpack("<I", struct.pack("<f", value))[0]
        return struct.unpack("<Q", struct.pack("<d", value))[0]
    return None


def compare(path: str, want, got, tally: Tally) -> None:
    """Compare the fixture's value `want` with dwarfgo's `got` at `path`."""
    if isinstance(got, dict) and "unavailable" in got:
        tally.unavailable[got["unavailable"]] = tally.unavailable.get(got["unavailable"], 0) + 1
        return
    if isinstance(want, dict) and set(want) == {"float", "bits"}:
        size = 4 if len(want["bits"]) <= 10 else 8
        if _float_bits(got, size) == int(want["bits"], 16) or (
                isinstance(got, dict) and got.get("bits") and int(got["bits"], 16) == int(want["bits"], 16)):
            tally.checked += 1
        else:
            tally.mismatches.append(f"{path}: want {want}, got {got}")
        return
    if want is None:
        if got is None:
            tally.checked += 1
        else:
            tally.mismatches.append(f"{path}: want nil, got {got}")
        return
    if isinstance(want, bool):
        (tally.mismatches.append(f"{path}: want {want}, got {got}") if got is not want else None)
        tally.checked += got is want
        return
    if isinstance(want, int) or (isinstance(want, str) and isinstance(got, int) and _as_int(want) is not None):
        # integers (the fixture writes those beyond 2^53 as decimal strings)
        if isinstance(got, int) and not isinstance(got, bool) and got == _as_int(want):
            tally.checked += 1
        else:
            tally.mismatches.append(f"{path}: want {want}, got {got}")
        return
    if isinstance(want, str):
        if isinstance(got, str) and got == want:
            tally.checked += 1
        elif isinstance(got, dict) and got.get("truncated") and want.startswith(got.get("prefix", "\0")) \
                and got.get("len") == len(want.encode()) \
                and (tally.max_str is None or not want.isascii() or got["prefix"] == want[:tally.max_str]):
            tally.truncated += 1
            tally.checked += 1
        else:
            tally.mismatches.append(f"{path}: want {want!r}, got {got!r}")
        return
    if isinstance(want, list):  # arrays
        if not isinstance(got, list):
            tally.mismatches.append(f"{path}: want array {want}, got {got}")
            return
        if len(got) < len(want):
            tally.truncated += 1
        for i, (w, g) in enumerate(zip(want, got)):
            compare(f"{path}[{i}]", w, g, tally)
        return
    if isinstance(want, dict):
        if set(want) == {"len", "cap", "items"} and want.get("len") is not None:  # slice
            if not isinstance(got, dict) or got.get("len") != want["len"] or got.get("cap") != want["cap"]:
                tally.mismatches.append(f"{path}: want slice len {want['len']} cap {want['cap']}, got {got}")
                return
            tally.checked += 2
            items = got.get("items") or []
            if len(items) < len(want["items"]):
                tally.truncated += 1
            for i, (w, g) in enumerate(zip(want["items"], items)):
                compare(f"{path}[{i}]", w, g, tally)
            return
        if set(want) == {"len"} or set(want) == {"len", "cap"}:  # map / chan
            for k in want:
                if not isinstance(got, dict) or got.get(k) != want[k]:
                    tally.mismatches.append(f"{path}.{k}: want {want[k]}, got {got}")
                else:
                    tally.checked += 1
            return
        if set(want) == {"unsafe.Pointer"}:  # the fixture cannot know the address: only nil-ness
            if isinstance(got, str) and got.startswith("0x"):
                tally.checked += 1
            else:
                tally.mismatches.append(f"{path}: want a non-nil unsafe.Pointer, got {got}")
            return
        if set(want) == {"func"}:
            if isinstance(got, dict) and got.get("func") == want["func"]:
                tally.checked += 1
            else:
                tally.mismatches.append(f"{path}: want func {want['func']}, got {got}")
            return
        if set(want) == {"type", "value"}:  # interface
            if not isinstance(got, dict) or "type" not in got:
                tally.mismatches.append(f"{path}: want interface {want}, got {got}")
            elif got["type"] != want["type"]:
                tally.mismatches.append(f"{path}: dynamic type want {want['type']}, got {got['type']}")
            else:
                tally.checked += 1
            return
        if set(want) == {"real", "imag"}:
            if not isinstance(got, dict) or "real" not in got:
                tally.mismatches.append(f"{path}: want complex {want}, got {got}")
                return
            compare(path + ".real", want["real"], got["real"], tally)
            compare(path + ".imag", want["imag"], got["imag"], tally)
            return
        # a struct, or a pointer followed to its struct
        if isinstance(got, dict) and "ptr" in got and len(got) == 1:
            tally.truncated += 1  # beyond --depth: only the address was read
            return
        if not isinstance(got, dict):
            tally.mismatches.append(f"{path}: want struct {want}, got {got}")
            return
        for k, w in want.items():
            if k not in got:
                tally.mismatches.append(f"{path}.{k}: missing")
                continue
            compare(f"{path}.{k}", w, got[k], tally)
        return
    tally.mismatches.append(f"{path}: cannot compare {want!r} with {got!r}")


def canonical_func(name: str) -> str:
    """Go 1.19 names shape instantiations `Map[go.shape.int_0,go.shape.string_1]`; 1.21+ drop the index."""
    return re.sub(r"(go\.shape\.[^,\]]*?)_\d+(?=[,\]])", r"\1", name)


def _int_key(args: dict | None) -> tuple:
    """Top-level integer arguments: what tells apart the calls of a function made concurrently."""
    key = []
    for name, v in sorted((args or {}).items()):
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            key.append((name, v))
        elif isinstance(v, str) and v.lstrip("-").isdigit():
            key.append((name, int(v)))
    return tuple(key)


def _pair(reported: list[dict], events: list[dict]) -> list[tuple[dict, dict]]:
    """Pair reported calls with events: in time order, within groups of equal integer arguments
    (calls from many goroutines at once arrive in no fixed order); what no group pairs (values
    dwarfgo marked unavailable have no key) is paired in order. Every reported call is paired
    when the counts agree (the counts are checked separately)."""
    groups: dict[tuple, list[dict]] = {}
    for e in events:
        groups.setdefault(_int_key(e.get("args")), []).append(e)
    pairs, left = [], []
    for r in reported:
        group = groups.get(_int_key(r["args"]))
        if group:
            pairs.append((r, group.pop(0)))
        else:
            left.append(r)
    rest = sorted((e for g in groups.values() for e in g), key=lambda e: e["ts"])
    pairs += list(zip(left, rest))
    return pairs


def compare_run(report_lines: list[dict], events: list[dict], with_results: bool,
                max_str: int | None = None) -> tuple[Tally, list[str]]:
    """Match events to reported calls per function; return the tally and count problems. With
    `max_str`, a string cut short must show exactly its first max_str bytes (bpftrace 0.17 once
    showed 64 of --max-str 200: its BPFTRACE_STRLEN was not set)."""
    tally = Tally(max_str=max_str)
    problems = []
    report_lines = [dict(r, func=canonical_func(r["func"])) for r in report_lines]
    events = [dict(e, func=canonical_func(e["func"])) for e in events]
    by_func_report: dict[str, list[dict]] = {}
    for r in report_lines:
        by_func_report.setdefault(r["func"], []).append(r)
    calls: dict[str, list[dict]] = {}
    rets: dict[str, list[dict]] = {}
    for e in sorted(events, key=lambda e: e["ts"]):
        (calls if e["event"] == "call" else rets).setdefault(e["func"], []).append(e)
    for func, reported in by_func_report.items():
        got_calls = calls.get(func, [])
        if len(got_calls) != len(reported):
            problems.append(f"{func}: {len(got_calls)} call events for {len(reported)} calls")
        for i, (r, e) in enumerate(_pair(reported, got_calls)):
            if e.get("unavailable"):  # dwarfgo said it cannot locate this function's values, and why
                for name in list(r["args"]) + list(r["results"] if with_results else []):
                    tally.unavailable[e["unavailable"]] = tally.unavailable.get(e["unavailable"], 0) + 1
                continue
            for name, want in r["args"].items():
                if name not in e["args"]:
                    problems.append(f"{func}#{i}: argument {name} not in event {list(e['args'])}")
                    continue
                compare(f"{func}#{i}.{name}", want, e["args"][name], tally)
        if with_results:
            got_rets = rets.get(func, [])
            if len(got_rets) != len(reported):
                problems.append(f"{func}: {len(got_rets)} return events for {len(reported)} calls")
            for i, (r, e) in enumerate(_pair(reported, got_rets)):
                if e.get("unavailable"):
                    continue
                for name, want in r["results"].items():
                    if name not in e["results"]:
                        problems.append(f"{func}#{i}: result {name} not in event {list(e['results'])}")
                        continue
                    compare(f"{func}#{i}->{name}", want, e["results"][name], tally)
    for func in calls:
        if func not in by_func_report:
            problems.append(f"{func}: {len(calls[func])} call events but no reported call")
    return tally, problems
