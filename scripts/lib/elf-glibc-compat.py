#!/usr/bin/env python3
"""Let ELF files built against a newer glibc load on an older one.

For every ELF64 little-endian file given, find the symbol-version requirements
(.gnu.version_r) on glibc's own libraries (libc.so.6, libm.so.6, ...) for
versions newer than --glibc (e.g. GLIBC_2.38 when the system has 2.36) and list
the undefined symbols bound to them.  With --patch, rename each such
requirement to GLIBC_2.2.5 (name offset and hash in the Vernaux entry), a
version every x86-64 glibc has, so ld.so accepts the file; the symbols then
bind by name to:
  - the compat library (scripts/lib/glibc238-compat.c, LD_PRELOADed), which
    exports them under the version GLIBC_2.2.5 (--provided MAPFILE lists them);
  - or, for SAME_AS_OLD below, glibc's own GLIBC_2.2.5 definition.
A symbol in neither is an error (exit 3): its new version would change
behaviour, or the system glibc lacks it.

Prints one line per (file, version, symbol): "FILE<TAB>VERSION<TAB>SYMBOL".
Exit 0: all covered (or nothing needed); 3: something not covered; 2: bad input.
Only the Python standard library is used; files are patched in place.  Marking
the requirements VER_FLG_WEAK would also be accepted by ld.so, but it then
prints a "weak version not found" line on every start.
"""
import argparse
import re
import struct
import sys

SHT_DYNSYM = 11
SHT_GNU_VERNEED = 0x6FFFFFFE
SHT_GNU_VERSYM = 0x6FFFFFFF
GLIBC_LIBS = {
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
    "libresolv.so.2", "libutil.so.1", "libanl.so.1", "ld-linux-x86-64.so.2",
    "libmvec.so.1", "libBrokenLocale.so.1", "libnsl.so.1",
}
TARGET = "GLIBC_2.2.5"
# New symbol versions whose GLIBC_2.2.5 definition behaves the same for these
# programs: fmod/fmodf@GLIBC_2.38 only dropped the obsolete SVID error mode.
SAME_AS_OLD = {"fmod", "fmodf"}


def elf_hash(name):
    h = 0
    for c in name.encode():
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def vtuple(s):
    return tuple(int(x) for x in s.split("."))


def cstr(data, off):
    end = data.index(b"\0", off)
    return data[off:end].decode("ascii", "replace")


def analyse(path, limit, patch):
    """Return [(version, symbol)] (the requirements newer than limit) and
    patch the file if asked."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if data[:4] != b"\x7fELF":
        return None
    if data[4] != 2 or data[5] != 1:
        raise ValueError("only ELF64 little-endian is supported")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        (name, typ, flags, addr, off, size, link, info, align,
         entsize) = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append((typ, off, size, link, entsize))

    new_idx = {}  # vna_other -> version name, for requirements newer than limit
    changed = False
    for typ, off, size, link, _ in sections:
        if typ != SHT_GNU_VERNEED:
            continue
        stroff, strsize = sections[link][1], sections[link][2]
        strtab = bytes(data[stroff:stroff + strsize])
        vn = off
        while True:
            vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from(
                "<HHIII", data, vn)
            fname = cstr(data, stroff + vn_file)
            va = vn + vn_aux
            for _ in range(vn_cnt):
                vna_hash, vna_flags, vna_other, vna_name, vna_next = struct.unpack_from(
                    "<IHHII", data, va)
                vname = cstr(data, stroff + vna_name)
                m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", vname)
                if fname in GLIBC_LIBS and m and vtuple(m.group(1)) > limit:
                    new_idx[vna_other] = vname
                    if patch:
                        pos = strtab.find(b"\0" + TARGET.encode() + b"\0")
                        if pos < 0:
                            raise ValueError(f"no {TARGET} string in its .dynstr to rename "
                                             f"{vname} to")
                        struct.pack_into("<IHHI", data, va, elf_hash(TARGET), vna_flags,
                                         vna_other, pos + 1)
                        changed = True
                if not vna_next:
                    break
                va += vna_next
            if not vn_next:
                break
            vn += vn_next

    found = []
    if new_idx:
        dynsym = next((s for s in sections if s[0] == SHT_DYNSYM), None)
        versym = next((s for s in sections if s[0] == SHT_GNU_VERSYM), None)
        if dynsym and versym:
            _, doff, dsize, dlink, dent = dynsym
            dstr = sections[dlink][1]
            for i in range(dsize // dent):
                st_name, st_info, st_other, st_shndx = struct.unpack_from(
                    "<IBBH", data, doff + i * dent)
                ver, = struct.unpack_from("<H", data, versym[1] + 2 * i)
                if st_shndx == 0 and (ver & 0x7FFF) in new_idx:
                    found.append((new_idx[ver & 0x7FFF], cstr(data, dstr + st_name)))
    if changed:
        with open(path, "r+b") as f:
            f.write(data)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--glibc", required=True, help="system glibc version, e.g. 2.36")
    ap.add_argument("--patch", action="store_true",
                    help=f"rename the newer requirements to {TARGET}")
    ap.add_argument("--provided", help="version script of the compat library")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    limit = vtuple(a.glibc)
    provided = None
    if a.provided:
        text = re.sub(r"/\*.*?\*/", "", open(a.provided).read(), flags=re.S)
        provided = set(SAME_AS_OLD)
        for node, body in re.findall(r"(GLIBC_[\d.]+)\s*\{(.*?)\}", text, re.S):
            if node != TARGET:
                continue
            body = body.split("local:")[0].replace("global:", "")
            provided.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body))
    missing = []
    for path in a.files:
        try:
            res = analyse(path, limit, a.patch)
        except (OSError, ValueError, struct.error) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        for ver, sym in res or ():
            print(f"{path}\t{ver}\t{sym}")
            if provided is not None and sym not in provided:
                missing.append(f"{sym}@{ver} (needed by {path})")
    if missing:
        print(f"glibc symbols newer than {a.glibc} that the compat library does not "
              "provide:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
