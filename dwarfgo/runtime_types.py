"""Go runtime type descriptors: from a descriptor's address (an interface's type word) to its Go name.

DWARF gives each Go type DIE the address of its runtime descriptor (DW_AT_go_runtime_type),
relative to `runtime.types` in newer linkers and absolute in older ones.
"""

from __future__ import annotations

from functools import cached_property

from .gotypes import DW_AT_GO_RUNTIME_TYPE


class RuntimeTypeNames:
    def __init__(self, prog):
        self.prog = prog
        self.bias = 0  # load bias of a PIE process (runtime address - link address)

    @cached_property
    def _table(self) -> dict[int, str]:
        base = self.prog.binary.data_symbol("runtime.types") or 0
        low = min((s.address for s in self.prog.binary.function_symbols), default=0)
        out: dict[int, str] = {}
        for unit in self.prog.index.units:
            for die in unit.unit.get_top_DIE().iter_children():
                attr = die.attributes.get(DW_AT_GO_RUNTIME_TYPE)
                name = die.attributes.get("DW_AT_name")
                if attr is None or name is None or not attr.value:
                    continue
                addr = attr.value if attr.value >= low else base + attr.value
                out.setdefault(addr, name.value.decode("utf-8", "replace"))
        return out

    def __call__(self, address: int) -> str | None:
        link = address - self.bias
        return self._table.get(link) or self._from_descriptor(link)

    def _from_descriptor(self, addr: int) -> str | None:
        """The name stored in the descriptor itself (abi.Type.Str, a name offset from runtime.types)."""
        binary = self.prog.binary
        base = binary.data_symbol("runtime.types")
        if base is None or binary.ptr_size != 8:
            return None
        try:
            desc = binary.read_memory(addr, 48)
            tflag = desc[20]
            name_off = int.from_bytes(desc[40:44], "little", signed=True)
            head = binary.read_memory(base + name_off, 3)
            version = self.prog.index.version_tuple or (1, 0, 0)
            if version[:2] >= (1, 17):
                n, shift, i = 0, 0, 1
                while True:
                    b = binary.read_memory(base + name_off + i, 1)[0]
                    n |= (b & 0x7F) << shift
                    i += 1
                    shift += 7
                    if not b & 0x80:
                        break
                text = binary.read_memory(base + name_off + i, n)
            else:
                n = int.from_bytes(head[1:3], "big")
                text = binary.read_memory(base + name_off + 3, n)
            name = text.decode("utf-8", "replace")
            return name[1:] if tflag & 2 and name.startswith("*") else name
        except Exception:
            return None
