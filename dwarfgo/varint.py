"""Variable-length integers: DWARF's ULEB128 and Go's uvarint are the same encoding (7 bits a
byte, low bits first, the high bit set on every byte but the last); SLEB128 is its signed form
(the last byte's bit 6 is the sign). Also DWARF's address arithmetic, which wraps at the address
size."""

from __future__ import annotations


def offset_address(base: int, offset: int, address_size: int) -> int:
    """base + offset as DWARF means it in a range or location list: modulo the address size. Go
    1.27's linker writes the code of a unit that lies below its base address as offsets near 2^64
    (crypto/tls in cmd/go: 0x74… under 0xb60e80); unwrapped, 437 functions lost their DWARF."""
    return (base + offset) & ((1 << (8 * address_size)) - 1)


def uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the number at data[pos]; IndexError past the end of data,
    ValueError for one longer than 64 bits (damaged input)."""
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def svarint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the SLEB128 number at data[pos]; errors as uvarint's."""
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (value - (1 << shift) if byte & 0x40 else value), pos
        if shift > 63:
            raise ValueError("varint longer than 64 bits")
