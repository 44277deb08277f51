"""What a raw program's output carries to say which program printed it.

`dwarfgo decode` rebuilds the decoder from the binary and the options it is given; that is only
right when they make the very program that ran. The program prints, in its attach marker and
again in its END block,

    @dg 0 0 attached plan=<16 hex> build=<Go build ID> dwarfgo=<version>
    @dg 0 0 identity plan=<16 hex> build=<Go build ID> dwarfgo=<version>

`plan` is a digest of everything the decoder relies on: each probe's function, addresses,
values and reads (their numbers, kinds and expressions) and which program line does which read
(bpftrace's failed-read warnings name the line). It leaves out what does not change the
decoding: the binary's path (decoded on another host), --pid, the output buffer size, comments.
So a different binary, other functions, or other --args/--ret/--depth/--max-str/--max-items or
a bpftrace version that reads differently give another digest, and decode refuses the output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass

from ..functions import Function, Parameter
from ..gotypes import GoType

# what may stand in a printf's format string without meaning anything to it
_SAFE = re.compile(r"[^A-Za-z0-9_./+=:-]")
PLACEHOLDER = "@@DWARFGO_IDENTITY@@"
_FIELDS = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class ProgramIdentity:
    plan: str  # digest of what decoding relies on
    build: str  # the binary's Go build ID ("none" without one)
    dwarfgo: str  # the dwarfgo version that generated the program

    @property
    def text(self) -> str:
        return f"plan={self.plan} build={self.build} dwarfgo={self.dwarfgo}"

    @classmethod
    def parse(cls, text: str) -> "ProgramIdentity | None":
        fields = dict(_FIELDS.findall(text))
        if "plan" not in fields:
            return None
        return cls(fields["plan"], fields.get("build", "?"), fields.get("dwarfgo", "?"))

    def mismatch(self, printed: "ProgramIdentity") -> str | None:
        """Why output printed by a program of identity `printed` cannot be decoded with this plan
        (None: it can)."""
        if printed.build != self.build:
            return (f"the output was printed by a program for another binary (build ID {printed.build}, "
                    f"this binary's is {self.build})")
        if printed.plan != self.plan:
            return (f"the output was printed by another program (plan {printed.plan}, these functions and "
                    f"options give plan {self.plan}; dwarfgo {printed.dwarfgo} made it): give decode the same "
                    f"functions, --args, --ret, --depth, --max-str, --max-items and --bpftrace-version as probe")
        return None


def safe_token(text: str | None) -> str:
    """`text` as one token of a printf format string (no `%`, `\\`, quote or space)."""
    return _SAFE.sub("_", text) if text else "none"


# the shape of the output lines; raised when the same plan prints its values otherwise
OUTPUT_LAYOUT = 3  # 3: the header on the first printf of values, with the CPU; 2: byte copies on
# the printfs of other values; 1: a printf each


def plan_digest(probes, read_lines: dict[int, tuple[int, ...]],
                read_spots: dict[tuple[int, int], tuple[int, int]] | None = None,
                early_reads: set[tuple[int, int]] | None = None) -> str:
    """16 hex digits over the probes' decoding plans, the program line (and column, for a byte
    copy) of every read and the output layout."""
    canon = {"probes": [_canonical(p) for p in probes], "read_lines": sorted(read_lines.items()),
             "read_spots": sorted([list(k), list(v)] for k, v in (read_spots or {}).items()),
             "early_reads": sorted(list(r) for r in (early_reads or ())), "layout": OUTPUT_LAYOUT}
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()[:16]


def _canonical(value):
    """A plan as plain JSON data: dataclasses field by field, a Go type or function by its name."""
    if isinstance(value, GoType):
        return value.name
    if isinstance(value, Function):
        return f"{value.name}@{value.address:#x}"
    if isinstance(value, Parameter):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"_": type(value).__name__,
                **{f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    name = getattr(value, "name", None)  # a Function
    return f"{type(value).__name__}:{name}" if name is not None else type(value).__name__
