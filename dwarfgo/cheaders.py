"""Emitter: C definitions of Go types, with exact offsets, for bpftrace scripts and for C.

Every Go struct, string, slice, interface and complex number becomes a C struct
whose fields sit at exactly the offsets DWARF gives (explicit padding, zero-size
fields as comments, explicit tail padding). Names are valid, stable C identifiers
with a prefix, so they can never collide with kernel (BTF) types in bpftrace.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from .gotypes import GoType, Kind

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Bool", "_Complex", "_Imaginary", "asm", "typeof",
}

_INT_C = {1: "int8_t", 2: "int16_t", 4: "int32_t", 8: "int64_t"}
_UINT_C = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}


def c_identifier(text: str, member: bool = False) -> str:
    """A valid C identifier for a Go name: ASCII letters, digits and `_` kept, the rest made readable.

    Type names are tidied (runs of `_` collapsed); member names keep their underscores (`_type`)."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("[]", i):
            out.append("slice_")
            i += 2
            continue
        if ch == "*":
            out.append("ptr_")
        elif ch == "[":
            out.append("_")
        elif ch.isascii() and (ch.isalnum() or ch == "_"):
            out.append(ch)
        elif ch.isascii():
            out.append("_")
        else:
            out.append(f"_u{ord(ch):04x}_")
        i += 1
    ident = "".join(out)
    if not member:
        ident = re.sub(r"_+", "_", ident).strip("_")
    ident = ident or "anon"
    if ident[0].isdigit():
        ident = "_" + ident
    return ident


def comment_text(text: str) -> str:
    """A name from the binary inside a C comment: it may not end the comment (`*/`), and
    non-printable characters (a newline, ESC) become `?`."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text.replace("*/", "*?/")


def needs_struct(t: GoType) -> bool:
    """Types represented as a C struct."""
    return t.kind in (Kind.STRUCT, Kind.STRING, Kind.SLICE, Kind.INTERFACE, Kind.COMPLEX)


@dataclass
class CHeaderWriter:
    """Collects Go types and renders C definitions for them (and for what they contain by value)."""

    prefix: str = "dg_"
    ptr_size: int = 8
    source: str = "DWARF"  # where the layouts come from, said in the header
    layouts: bool = True  # False: no Go layouts behind the program (untyped argument words only)
    _names: dict[str, str] = field(default_factory=dict)  # Go type name -> C struct tag
    _taken: dict[str, str] = field(default_factory=dict)  # C struct tag -> Go type name
    _order: list[GoType] = field(default_factory=list)
    _emitted: set[str] = field(default_factory=set)

    # -------------------------------------------------------------- naming
    def struct_tag(self, t: GoType) -> str:
        """`struct <tag>` for a struct-like type: stable, unique within this header."""
        key = self._key(t)
        tag = self._names.get(key)
        if tag is not None:
            return tag
        if t.kind is Kind.STRING:
            base = "string"
        elif t.kind is Kind.INTERFACE:
            base = "eface" if t.empty_interface else "iface"
        elif t.kind is Kind.COMPLEX:
            base = f"complex{t.size * 8}"
        elif t.kind is Kind.SLICE:
            base = "slice_" + c_identifier(t.elem.name if t.elem else t.name)
        else:
            base = c_identifier(t.name)
        tag = self.prefix + base
        if tag in self._taken and self._taken[tag] != key:
            tag = f"{tag}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        self._names[key] = tag
        self._taken[tag] = key
        return tag

    @staticmethod
    def _key(t: GoType) -> str:
        # all strings share one header struct, all empty / non-empty interfaces too
        if t.kind is Kind.STRING:
            return "string"
        if t.kind is Kind.INTERFACE:
            return "interface {}" if t.empty_interface else "iface"
        if t.kind is Kind.COMPLEX:
            return f"complex{t.size * 8}"
        return t.name

    # -------------------------------------------------------------- declarations
    def declaration(self, t: GoType, name: str) -> str:
        """A C declaration of a member named `name` with Go type `t`."""
        suffix = ""
        while t.kind is Kind.ARRAY:
            suffix += f"[{t.length}]"
            t = t.elem
        return f"{self.scalar_type(t)} {name}{suffix}"

    def scalar_type(self, t: GoType) -> str:
        k = t.kind
        if k is Kind.BOOL:
            return "uint8_t"
        if k is Kind.INT:
            return _INT_C[t.size]
        if k in (Kind.UINT, Kind.UINTPTR):
            return _UINT_C[t.size]
        if k is Kind.FLOAT:
            return "float" if t.size == 4 else "double"
        if needs_struct(t):
            return f"struct {self.struct_tag(t)}"
        if k is Kind.POINTER and t.elem is not None:
            e = t.elem
            if needs_struct(e):
                # the pointee may be defined later or, beyond --depth, not at all: C and every
                # bpftrace (0.17, 0.23, 0.27) accept a pointer to an incomplete struct there
                return f"struct {self.struct_tag(e)} *"
            if e.kind in (Kind.BOOL, Kind.INT, Kind.UINT, Kind.UINTPTR, Kind.FLOAT):
                return self.scalar_type(e) + " *"
        return "void *"  # unsafe.Pointer, map, chan, func, pointer to pointer/array

    # -------------------------------------------------------------- collection
    def add(self, t: GoType, depth: int = 0) -> None:
        """Include `t`, what it holds by value, and what its pointers/slices reach to `depth` levels."""
        self._visit(t, depth, set())

    def _visit(self, t: GoType, depth: int, seen: set) -> None:
        key = (self._key(t), depth)
        if key in seen:
            return
        seen.add(key)
        if t.kind is Kind.ARRAY:
            self._visit(t.elem, depth, seen)
            return
        if t.kind in (Kind.POINTER, Kind.SLICE) and t.elem is not None and depth > 0:
            self._visit(t.elem, depth - 1, seen)
        if t.kind is Kind.MAP and depth > 0:
            for sub in (t.key, t.elem):
                if sub is not None:
                    self._visit(sub, depth - 1, seen)
        if not needs_struct(t):
            return
        if t.kind is Kind.STRUCT:
            for f in t.fields:
                self._visit(f.type, depth, seen)
        tag = self.struct_tag(t)
        if tag not in self._emitted:
            self._emitted.add(tag)
            self._order.append(t)

    # -------------------------------------------------------------- rendering
    def body(self, t: GoType) -> str:
        tag = self.struct_tag(t)
        lines = [f"/* {comment_text(self._key(t))}: size {t.size}, align {t.align} */", f"struct {tag} {{"]
        members = self._members(t)
        used: set[str] = set()
        pos, npad = 0, 0
        for mname, mtype, off in members:
            if mtype.size == 0:
                lines.append(f"\t/* +{off} {comment_text(mname)} {comment_text(mtype.name)} (zero size) */")
                continue
            if off > pos:
                lines.append(f"\tuint8_t _pad{npad}[{off - pos}];")
                npad += 1
            cname = self._member_name(mname, used)
            lines.append(f"\t{self.declaration(mtype, cname)}; /* +{off} {comment_text(mtype.name)} */")
            pos = off + mtype.size
        if t.size > pos:
            lines.append(f"\tuint8_t _pad{npad}[{t.size - pos}];")
        lines.append("};")
        return "\n".join(lines)

    def member_names(self, t: GoType) -> dict[int, str]:
        """The C member name of each field of `t` (by field index) in its struct: the names
        `body` gives (zero-size fields have none)."""
        used: set[str] = set()
        return {i: self._member_name(mname, used) for i, (mname, mtype, _) in enumerate(self._members(t))
                if mtype.size != 0}

    def _members(self, t: GoType) -> list[tuple[str, GoType, int]]:
        if t.kind is Kind.COMPLEX:
            return [("real", _HalfOf(t), 0), ("imag", _HalfOf(t), t.size // 2)]
        return [(f.name, f.type, f.offset) for f in t.fields]

    @staticmethod
    def _member_name(name: str, used: set[str]) -> str:
        base = c_identifier(name, member=True) if name and name != "_" else "_blank"
        if base in C_KEYWORDS:
            base += "_"
        cname, n = base, 1
        while cname in used:
            cname = f"{base}{n}"
            n += 1
        used.add(cname)
        return cname

    def render(self) -> str:
        """The header: each struct defined after every struct it holds by value (the collection
        order), and no forward declarations, which bpftrace 0.27's parser rejects (`struct x;`)."""
        said = ": exact Go layouts" if self.layouts else ""
        out = [f"/* Generated by dwarfgo from {self.source}{said}. */", "#include <stdint.h>", ""]
        out += [self.body(t) + "\n" for t in self._order]
        return "\n".join(out)


class _HalfOf(GoType):
    """The float half of a complex number (a pseudo-type for rendering only)."""

    def __init__(self, c: GoType):
        super().__init__(offset=-1, name=f"float{c.size * 4}", kind=Kind.FLOAT, size=c.size // 2, align=c.size // 2)


def header_for_types(types: list[GoType], depth: int = 0, ptr_size: int = 8, prefix: str = "dg_") -> str:
    w = CHeaderWriter(prefix=prefix, ptr_size=ptr_size)
    for t in types:
        w.add(t, depth)
    return w.render()
