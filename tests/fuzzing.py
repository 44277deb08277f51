"""Hostile-binary fuzzing: mutants of a Go ELF file, run through dwarfgo's commands.

Used by `scripts/fuzz-binaries` (thousands of mutants, figures by cause) and by
`tests/test_fuzz.py` (a fixed seed set in CI). Each run is a forked child that calls
`dwarfgo.cli.main()` in-process (no interpreter start-up per run) under a time limit
(SIGALRM) and an address-space limit (RLIMIT_AS), so a hang or a memory blow-up is
caught and classified instead of taking the machine down.

Outcomes of one run:
  clean      non-zero exit, exactly one stderr line starting `dwarfgo: error:`
  unchanged  the same exit status and stdout as on the original binary
  changed    exit 0 (or abi's 3) with other output (a mutation that changes the meaning)
  internal   anything else: `internal error`, a traceback, a multi-line or malformed error
  hang       still running after the time limit
  memory     MemoryError, or killed by the memory limit
  contradicted  probe emitted reads for a function whose own ABI evidence contradicts itself
"""

from __future__ import annotations

import dataclasses
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
FUNC = "(*BarrierView).Put"

SHF_COMPRESSED = 0x800

# (command name, argv after the binary; {func}: the function, FUNC unless another is given)
COMMANDS = {
    "sig": ["sig", "{bin}", "{func}"],
    "funcs": ["funcs", "{bin}", "main."],
    "structs": ["structs", "{bin}", "--for", "{func}"],
    "abi": ["abi", "{bin}", "{func}"],
    "probe": ["probe", "{bin}", "{func}", "--ret", "--bpftrace-version", "0.27"],
}


# ---------------------------------------------------------------------------------------- ELF
@dataclasses.dataclass
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    header: int  # file offset of the section header


class ElfImage:
    """A 64-bit little-endian ELF file as bytes, with its section table (read without pyelftools,
    so that the mutator does not depend on the code under test)."""

    def __init__(self, data: bytes):
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError("fuzzing needs a 64-bit little-endian ELF file")
        self.data = data
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        self.shoff, self.shentsize, self.shnum = shoff, shentsize, shnum
        raw = []
        for i in range(shnum):
            h = shoff + i * shentsize
            name, typ, flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, h)
            raw.append((i, name, typ, flags, off, size, h))
        strtab = raw[shstrndx]
        self.shstr = data[strtab[4]:strtab[4] + strtab[5]]
        self.sections = []
        for i, name, typ, flags, off, size, h in raw:
            end = self.shstr.find(b"\0", name)
            self.sections.append(Section(i, self.shstr[name:end].decode(), typ, flags, off, size, h))

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def contents(self, s: Section) -> bytes:
        """The section's bytes, decompressed if SHF_COMPRESSED."""
        raw = self.data[s.offset:s.offset + s.size]
        if s.flags & SHF_COMPRESSED:
            return zlib.decompress(raw[24:])
        return raw


def _put(data: bytearray, offset: int, fmt: str, value) -> None:
    struct.pack_into(fmt, data, offset, value)


def replace_section(data: bytes, s: Section, content: bytes, compress: bool | None = None,
                    declared_size: int | None = None) -> bytes:
    """The file with section `s` holding `content` (appended at the end of the file, the header
    pointed at it). compress: write it SHF_COMPRESSED (default: as it was)."""
    out = bytearray(data)
    if compress is None:
        compress = bool(s.flags & SHF_COMPRESSED)
    if compress:
        body = struct.pack("<IIQQ", 1, 0, declared_size if declared_size is not None else len(content), 1)
        body += zlib.compress(content, 6)
        flags = s.flags | SHF_COMPRESSED
    else:
        body = content
        flags = s.flags & ~SHF_COMPRESSED
    out += b"\0" * (-len(out) % 8)
    where = len(out)
    out += body
    _put(out, s.header + 8, "<Q", flags)
    _put(out, s.header + 24, "<Q", where)
    _put(out, s.header + 32, "<Q", len(body))
    return bytes(out)


def decompressed_copy(data: bytes) -> bytes:
    """The same binary with every SHF_COMPRESSED section stored plainly (so that mutations reach
    the DWARF structure instead of the zlib stream)."""
    img = ElfImage(data)
    for s in img.sections:
        if s.flags & SHF_COMPRESSED:
            data = replace_section(data, ElfImage(data).sections[s.index], img.contents(s), compress=False)
    return data


def zdebug_copy(data: bytes) -> bytes:
    """The same binary in the older `.zdebug_*` form (Go before 1.12, and gccgo): sections renamed,
    contents `ZLIB` + big-endian size + a zlib stream."""
    img = ElfImage(data)
    shstr = bytearray(img.shstr)
    names = {}
    for s in img.sections:
        if s.flags & SHF_COMPRESSED and s.name.startswith(".debug_"):
            names[s.index] = len(shstr)
            shstr += b".z" + s.name[1:].encode() + b"\0"
    out = data
    for s in img.sections:
        if s.index in names:
            content = img.contents(s)
            out = replace_section(out, ElfImage(out).sections[s.index],
                                  b"ZLIB" + struct.pack(">Q", len(content)) + zlib.compress(content, 6), compress=False)
            b = bytearray(out)
            _put(b, s.header, "<I", names[s.index])
            out = bytes(b)
    shstrndx, = struct.unpack_from("<H", out, 0x3E)
    return replace_section(out, ElfImage(out).sections[shstrndx], bytes(shstr), compress=False)


# ---------------------------------------------------------------------------------------- mutants
@dataclasses.dataclass
class Mutant:
    name: str  # what was done, reproducible: "flip .debug_info @0x1234:0x5a"
    kind: str
    data: bytes
    command: str


FLIP_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_loc", ".debug_ranges", ".debug_line", ".debug_frame",
                 ".gopclntab", ".symtab", ".strtab", ".go.buildinfo", ".note.go.buildid", ".text", ".shstrtab",
                 ".rodata", ".typelink")
# a binary without DWARF: what the stripped path reads (function table, type descriptors and links,
# module data, build info) and the code it decodes
STRIPPED_FLIP_SECTIONS = (".gopclntab", ".rodata", ".typelink", ".itablink", ".noptrdata", ".data", ".go.buildinfo",
                          ".note.go.buildid", ".text", ".shstrtab")


def _bomb(size: int) -> bytes:
    """A zlib stream of `size` zero bytes (a multiple of 1 MiB), built from one repeated deflate
    block: ~1,000:1, and cheap (0.5 s per GiB, for the checksum)."""
    chunk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)  # no reference to the first: repeatable
    n = size >> 20
    adler = 1
    for _ in range(n):
        adler = zlib.adler32(chunk, adler)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    return b"\x78\xda" + first + again * (n - 1) + end + struct.pack(">I", adler)


class Mutator:
    """Deterministic mutants of one ELF file: `Mutator(data, seed).random(n)` and `.targeted()`."""

    def __init__(self, data: bytes, seed: int = 1, commands=tuple(COMMANDS)):
        self.data = data
        self.img = ElfImage(data)
        self.rng = random.Random(seed)
        self.commands = list(commands)
        self._plain = None
        self._zdebug = None
        self._n = 0

    def _cmd(self) -> str:
        self._n += 1
        return self.commands[self._n % len(self.commands)]

    @property
    def plain(self) -> bytes:
        if self._plain is None:
            self._plain = decompressed_copy(self.data)
        return self._plain

    @property
    def zdebug(self) -> bytes:
        if self._zdebug is None:
            self._zdebug = zdebug_copy(self.data)
        return self._zdebug

    # ---------------------------------------------------------------- random
    def random(self, count: int):
        kinds = [(self.truncate, 2), (self.flip_raw, 5), (self.flip_inflated, 6), (self.flip_plain, 6),
                 (self.flip_zdebug, 1), (self.header_lie, 2), (self.elf_header, 1)]
        if self.img.section(".debug_info") is None and self.img.section(".zdebug_info") is None:
            kinds = [(self.truncate, 2), (self.flip_stripped, 11), (self.header_lie, 2), (self.elf_header, 1)]
        fns = [f for f, w in kinds for _ in range(w)]
        for _ in range(count):
            yield self.rng.choice(fns)()

    def truncate(self) -> Mutant:
        r = self.rng
        if r.random() < 0.3:
            at = r.randrange(0, 0x200)
        else:
            s = r.choice([s for s in self.img.sections if s.size])
            at = min(len(self.data) - 1, s.offset + r.randrange(0, s.size))
        return Mutant(f"truncate at {at:#x}", "truncate", self.data[:at], self._cmd())

    def _flips(self, buf: bytearray, start: int, size: int) -> str:
        r = self.rng
        done = []
        for _ in range(r.choice((1, 1, 1, 2, 3, 4, 8))):
            at = start + r.randrange(size)
            value = r.choice((0x00, 0xFF, 0x7F, 0x80, r.randrange(256), buf[at] ^ (1 << r.randrange(8))))
            buf[at] = value
            done.append(f"{at - start:#x}:{value:#04x}")
        return ",".join(done)

    def _section_of(self, img: ElfImage, names=FLIP_SECTIONS) -> Section:
        return self.rng.choice([s for s in img.sections if s.name in names and s.size])

    def flip_raw(self) -> Mutant:
        """Bytes of the file flipped inside one section (compressed sections: the zlib stream)."""
        s = self._section_of(self.img)
        buf = bytearray(self.data)
        what = self._flips(buf, s.offset, s.size)
        return Mutant(f"flip {s.name} raw {what}", "flip-raw", bytes(buf), self._cmd())

    def flip_stripped(self) -> Mutant:
        """Bytes flipped in what a binary without DWARF is read from."""
        s = self._section_of(self.img, STRIPPED_FLIP_SECTIONS)
        buf = bytearray(self.data)
        what = self._flips(buf, s.offset, s.size)
        return Mutant(f"flip {s.name} {what}", "flip-raw", bytes(buf), self._cmd())

    def flip_inflated(self) -> Mutant:
        """Bytes of one DWARF section flipped after decompression; recompressed."""
        s = self._section_of(self.img, [x.name for x in self.img.sections if x.flags & SHF_COMPRESSED])
        content = bytearray(self.img.contents(s))
        what = self._flips(content, 0, len(content))
        return Mutant(f"flip {s.name} inflated {what}", "flip-inflated",
                      replace_section(self.data, s, bytes(content)), self._cmd())

    def flip_plain(self) -> Mutant:
        """Bytes flipped in one section of the uncompressed copy."""
        img = ElfImage(self.plain)
        names = (".debug_info", ".debug_abbrev", ".debug_info", ".debug_loc", ".debug_ranges", ".gopclntab", ".symtab")
        s = self._section_of(img, names)
        buf = bytearray(self.plain)
        what = self._flips(buf, s.offset, s.size)
        return Mutant(f"flip {s.name} plain {what}", "flip-plain", bytes(buf), self._cmd())

    def flip_zdebug(self) -> Mutant:
        img = ElfImage(self.zdebug)
        s = self._section_of(img, [x.name for x in img.sections if x.name.startswith(".zdebug")])
        buf = bytearray(self.zdebug)
        # the header (ZLIB, size) or the stream
        size = 12 if self.rng.random() < 0.3 else s.size
        what = self._flips(buf, s.offset, size)
        return Mutant(f"flip {s.name} zdebug {what}", "flip-zdebug", bytes(buf), self._cmd())

    def header_lie(self) -> Mutant:
        """A section header or compression header that lies about a size or an offset."""
        r = self.rng
        s = r.choice([s for s in self.img.sections if s.size])
        buf = bytearray(self.data)
        value = r.choice((1 << 40, 1 << 63, len(self.data) + r.randrange(1, 1 << 20), r.randrange(1 << 32), 0))
        field = r.choice(("sh_size", "sh_offset", "sh_entsize", "ch_size") if s.flags & SHF_COMPRESSED
                         else ("sh_size", "sh_offset", "sh_entsize"))
        at = {"sh_size": s.header + 32, "sh_offset": s.header + 24, "sh_entsize": s.header + 56,
              "ch_size": s.offset + 8}[field]
        _put(buf, at, "<Q", value)
        return Mutant(f"{s.name} {field}={value:#x}", "header", bytes(buf), self._cmd())

    def elf_header(self) -> Mutant:
        buf = bytearray(self.data)
        what = self._flips(buf, 0, 0x40)
        return Mutant(f"flip ELF header {what}", "elf-header", bytes(buf), self._cmd())

    # ---------------------------------------------------------------- targeted
    def targeted(self):
        """The hand-made cases: every one once per command."""
        cases = list(self._targeted_cases())
        for name, kind, data in cases:
            for cmd in self.commands:
                yield Mutant(name, kind, data, cmd)

    def _targeted_cases(self):
        d, img = self.data, self.img
        info = img.section(".debug_info")
        bomb = _bomb(1536 << 20)
        yield "zlib bomb: .debug_info inflates to 1.5 GiB (declared)", "bomb", \
            self._with_stream(info, bomb, 1536 << 20)
        yield "zlib bomb: .debug_info inflates to 1.5 GiB (declared as the original size)", "bomb", \
            self._with_stream(info, bomb, len(img.contents(info)))
        zimg = ElfImage(self.zdebug)
        zinfo = zimg.section(".zdebug_info")
        yield "zlib bomb: .zdebug_info inflates to 1.5 GiB", "bomb", replace_section(
            self.zdebug, zinfo, b"ZLIB" + struct.pack(">Q", len(img.contents(info))) + bomb,
            compress=False)
        yield "zdebug: .zdebug_info declares 2^40 bytes", "header", self._patch(
            self.zdebug, zinfo.offset + 4, ">Q", 1 << 40)
        yield "ch_size of .debug_info is 2^40", "header", self._patch(d, info.offset + 8, "<Q", 1 << 40)
        plain = ElfImage(self.plain)
        for name in (".debug_info", ".debug_abbrev", ".symtab", ".gopclntab"):
            s = plain.section(name)
            if s is None:  # a PIE keeps its function table in .data.rel.ro
                continue
            yield f"{name} sh_size is 2^40 (uncompressed)", "header", self._patch(self.plain, s.header + 32, "<Q", 1 << 40)
        yield "corrupt compressed .debug_abbrev (stream cut short)", "flip-raw", self._patch(
            d, img.section(".debug_abbrev").offset + 40, "<Q", 0)
        yield "ELF of 64 bytes", "truncate", d[:64]
        for name, data in self._dwarf_cases():
            yield name, "dwarf", data

    @staticmethod
    def _patch(data: bytes, at: int, fmt: str, value) -> bytes:
        b = bytearray(data)
        _put(b, at, fmt, value)
        return bytes(b)

    def _with_stream(self, s: Section, stream: bytes, declared: int) -> bytes:
        body = struct.pack("<IIQQ", 1, 0, declared, 1) + stream
        out = bytearray(self.data)
        out += b"\0" * (-len(out) % 8)
        where = len(out)
        out += body
        _put(out, s.header + 24, "<Q", where)
        _put(out, s.header + 32, "<Q", len(body))
        return bytes(out)

    def _dwarf_cases(self):
        """Structural DWARF damage at the types of FUNC's parameters (found with pyelftools on the
        original file), written into the uncompressed copy."""
        from elftools.elf.elffile import ELFFile
        import io
        plain = self.plain
        elf = ELFFile(io.BytesIO(plain))
        dw = elf.get_dwarf_info(relocate_dwarf_sections=False)
        info = ElfImage(plain).section(".debug_info")
        want = {"context.Context": "typedef", "error": "typedef", "main.StorageEntry": "struct",
                "main.BarrierView": "struct", "string": "struct", "float64": "base", "main.(*BarrierView).Put": "func"}
        found = {}
        for cu in dw.iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                n = die.attributes.get("DW_AT_name")
                if n is not None and n.value.decode(errors="replace") in want and n.value.decode() not in found:
                    found[n.value.decode()] = die
            if len(found) == len(want):
                break

        def patch_ref(die, attr, target) -> bytes:
            a = die.attributes[attr]
            b = bytearray(plain)
            value = target if a.form == "DW_FORM_ref_addr" else target - die.cu.cu_offset
            size = {"DW_FORM_ref_addr": 4, "DW_FORM_ref4": 4, "DW_FORM_ref8": 8}[a.form]
            _put(b, info.offset + a.offset, "<I" if size == 4 else "<Q", value)
            return bytes(b)

        for tname in ("context.Context", "error"):
            die = found.get(tname)
            if die is not None and "DW_AT_type" in die.attributes:
                yield f"typedef {tname} refers to itself", patch_ref(die, "DW_AT_type", die.offset)
        ctx, err = found.get("context.Context"), found.get("error")
        if ctx is not None and err is not None:
            b = patch_ref(ctx, "DW_AT_type", err.offset)
            plain_saved = plain
            plain = b
            yield "typedefs context.Context and error refer to each other", patch_ref(err, "DW_AT_type", ctx.offset)
            plain = plain_saved
        put, f64 = found.get("main.(*BarrierView).Put"), found.get("float64")
        if put is not None and f64 is not None:
            for p in put.iter_children():
                if p.tag == "DW_TAG_formal_parameter" and p.attributes["DW_AT_name"].value == b"entry":
                    # the argument area keeps its size, but the machine code spills entry from DI,
                    # not X0: the evidence contradicts the layout computed from the damaged DWARF
                    yield "parameter entry of Put typed float64", patch_ref(p, "DW_AT_type", f64.offset)
        for sname in ("main.StorageEntry", "main.BarrierView", "string"):
            die = found.get(sname)
            if die is None:
                continue
            members = [c for c in die.iter_children() if c.tag == "DW_TAG_member"]
            if not members:
                continue
            m = members[0]
            yield f"struct {sname} contains itself by value (member {m.attributes['DW_AT_name'].value.decode()})", \
                patch_ref(m, "DW_AT_type", die.offset)
            size = die.attributes.get("DW_AT_byte_size")
            if size is not None and size.form in ("DW_FORM_udata", "DW_FORM_data1") and 1 < size.value < 128:
                b = bytearray(plain)
                b[info.offset + size.offset] = 1  # shrink the struct under its members
                yield f"struct {sname} smaller than its members (byte_size 1)", bytes(b)


# ---------------------------------------------------------------------------------------- runs
@dataclasses.dataclass
class Outcome:
    kind: str  # clean, unchanged, changed, internal, hang, memory, contradicted
    status: int | None
    stdout: str
    stderr: str
    cause: str = ""  # internal/memory/contradicted: where; clean: the message
    seconds: float = 0.0


def _child(argv: list[str], out_fd: int, err_fd: int, info_path: str, timeout: float, mem: int,
           check_probe: bool) -> None:
    """In the forked child: limits, then the CLI in-process; the exit status tells the parent."""
    try:
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        # new streams on the files: the inherited ones may be a test runner's in-memory capture
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        os.environ["DWARFGO_DEBUG"] = "1"  # cli.main re-raises what it would call an internal error
        sys.argv = ["dwarfgo", *argv]
        from dwarfgo import cli
        code = 0
        try:
            cli.main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # noqa: BLE001 - the internal error, with where it was raised
            frames = traceback.extract_tb(e.__traceback__)
            inner = [f for f in frames if "/dwarfgo/" in f.filename or "/elftools/" in f.filename] or frames
            last = inner[-1]
            where = f"{Path(last.filename).parent.name}/{Path(last.filename).name}:{last.name}"
            with open(info_path, "w") as fh:
                fh.write(f"{type(e).__name__} in {where}: {str(e)[:200]}")
            sys.stdout.flush()
            sys.stderr.write(f"dwarfgo: internal error: {type(e).__name__}: {e}\n")
            sys.stderr.flush()
            os._exit(70)
        sys.stdout.flush()
        sys.stderr.flush()
        if code == 0 and check_probe:
            bad = _probe_contradicted(argv[1], argv[2])
            if bad:
                with open(info_path, "w") as fh:
                    fh.write(bad)
                os._exit(71)
        os._exit(code)
    except BaseException:  # noqa: BLE001 - never return into the parent's code
        os._exit(72)


def _probe_contradicted(binary: str, func: str) -> str | None:
    """The probe was generated: does `abi`'s evidence for the function contradict itself while the
    program still reads its values?"""
    from dwarfgo.emit.dialect import Dialect
    from dwarfgo.emit.probe import ProbeOptions, generate
    from dwarfgo.program import GoProgram
    from dwarfgo.verify.evidence import gather
    with GoProgram(binary) as prog:
        if not prog.binary.has_dwarf:  # a stripped binary: no DWARF evidence to contradict
            return None
        fn = prog.function(func)
        ev = gather(prog, fn)
        if ev.consistent:
            return None
        program = generate(prog, [fn], Dialect((0, 27, 0)), ProbeOptions(ret=True))
        reading = [p for p in program.probes if p.unknown is None and p.reads]
        if reading:
            return f"contradicted evidence ({ev.contradictions[0][:120]}) but probe reads {len(reading[0].reads)} values"
    return None


def run(binary: Path, command: str, timeout: float = 20.0, mem: int = 1 << 30, check_probe: bool = True,
        func: str = FUNC) -> Outcome:
    argv = [a.replace("{bin}", str(binary)).replace("{func}", func) for a in COMMANDS[command]]
    return run_argv(argv, timeout, mem, check_probe and command == "probe")


def run_argv(argv: list[str], timeout: float = 20.0, mem: int = 1 << 30, check_probe: bool = False) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="dgfuzz-") as tmp:
        out_p, err_p, info_p = (os.path.join(tmp, n) for n in ("out", "err", "info"))
        out_fd = os.open(out_p, os.O_WRONLY | os.O_CREAT, 0o600)
        err_fd = os.open(err_p, os.O_WRONLY | os.O_CREAT, 0o600)
        t0 = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(argv, out_fd, err_fd, info_p, timeout, mem, check_probe)
        os.close(out_fd)
        os.close(err_fd)
        deadline = t0 + timeout + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:  # the child's own timer failed: stop it from here
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.005)
        seconds = time.monotonic() - t0
        stdout = Path(out_p).read_text(errors="replace")
        stderr = Path(err_p).read_text(errors="replace")
        info = Path(info_p).read_text() if os.path.exists(info_p) else ""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGALRM, signal.SIGKILL) and seconds >= timeout:
            return Outcome("hang", None, stdout, stderr, f"no exit within {timeout:.0f} s", seconds)
        return Outcome("memory" if sig in (signal.SIGKILL, signal.SIGSEGV) else "internal", None, stdout, stderr,
                       f"killed by signal {sig}", seconds)
    code = os.WEXITSTATUS(status)
    if code == 71:
        return Outcome("contradicted", 0, stdout, stderr, info, seconds)
    if code == 70:
        if "MemoryError" in info or "insufficient memory" in info:
            return Outcome("memory", code, stdout, stderr, info.split(":")[0], seconds)
        return Outcome("internal", code, stdout, stderr, info.split(": ", 1)[0] if info else stderr.strip()[:200],
                       seconds)
    if code == 72:
        return Outcome("internal", code, stdout, stderr, "the fuzz child itself failed", seconds)
    return Outcome("?", code, stdout, stderr, "", seconds)


def classify(o: Outcome, baseline: Outcome) -> Outcome:
    """Fill in clean/unchanged/changed/internal for a run that exited by itself."""
    if o.kind != "?":
        return o
    lines = [line for line in o.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("dwarfgo: error: ")]
    if o.status == baseline.status and o.stdout == baseline.stdout:
        o.kind = "unchanged"
    elif o.status not in (0, 3):
        if len(errors) == 1 and len(lines) == 1 and "Traceback" not in o.stderr:
            o.kind = "clean"
            o.cause = errors[0][len("dwarfgo: error: "):]
        else:
            o.kind = "internal"
            o.cause = f"exit {o.status} without one error line: {' | '.join(lines)[:200]}"
    else:
        o.kind = "changed"
    return o


BAD = ("internal", "hang", "memory", "contradicted")


def preload() -> None:
    """Import every dwarfgo module in the parent, so that a forked run pays for no imports (and
    every run uses the same code)."""
    import importlib
    import pkgutil
    import dwarfgo
    for m in pkgutil.walk_packages(dwarfgo.__path__, "dwarfgo."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)


def fuzz(mutants, workdir: Path, timeout: float = 20.0, mem: int = 1 << 30, baselines=None, keep: Path | None = None,
         progress=None, recheck: float | None = None, func: str = FUNC):
    """Run every mutant; returns [(mutant name, command, Outcome)]. A run that does not end within
    `timeout` is run again with `recheck` seconds (default 4 x timeout), alone: on a loaded machine
    a slow run is not a hang."""
    preload()
    results = []
    path = workdir / "mutant"
    for i, m in enumerate(mutants):
        path.write_bytes(m.data)
        path.chmod(0o755)
        base = baselines[m.command]
        o = classify(run(path, m.command, timeout, mem, func=func), base)
        if o.kind == "hang":
            o = classify(run(path, m.command, recheck or 4 * timeout, mem, func=func), base)
        results.append((m.name, m.command, o))
        if keep is not None and o.kind in BAD:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{len(results):05d}-{o.kind}-{m.command}").write_bytes(m.data)
        if progress:
            progress(i + 1, m, o)
    return results


class BaselineFailed(RuntimeError):
    """A command fails on the undamaged binary: nothing to compare mutants with."""


def baselines_for(binary: Path, commands=tuple(COMMANDS), timeout: float = 60.0, mem: int = 1 << 30,
                  func: str = FUNC):
    preload()
    out = {}
    for c in commands:
        o = run(binary, c, timeout, mem, check_probe=False, func=func)
        if o.kind != "?" or o.status != 0:
            raise BaselineFailed(f"{c} fails on the original binary: {o.kind} {o.status} {o.stderr.strip()[:300]}")
        out[c] = o
    return out


# ---------------------------------------------------------------------------------------- options
def option_cases(demo: Path, tmp: Path):
    """Hostile files and options (issue 9's list): (name, argv, check). `check(outcome)` returns
    what is wrong with a run that exited by itself, or None; every case must exit non-zero with
    one error line unless its check says otherwise."""
    import shutil
    put = FUNC
    gen = ["--bpftrace-version", "0.27"]
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    short = tmp / "short"
    short.write_bytes(demo.read_bytes()[:64])
    i386 = bytearray(demo.read_bytes())
    i386[0x12:0x14] = (3).to_bytes(2, "little")
    (tmp / "i386").write_bytes(bytes(i386))
    esc = bytearray(demo.read_bytes())
    at = esc.index(b"main.(*BarrierView).Put\0", ElfImage(bytes(esc)).section(".strtab").offset)
    esc[at + 9:at + 11] = b"\x1b\x07"
    (tmp / "esc").write_bytes(bytes(esc))
    evil_dir = tmp / "evil"
    evil_dir.mkdir()
    inject = evil_dir / 'A:main.main\n{ }\ninterval:s:1 { printf("INJECTED\\n"); exit(); }\nuprobe:x'
    shutil.copyfile(demo, inject)
    plain = bytearray(decompressed_copy(demo.read_bytes()))
    info = ElfImage(bytes(plain)).section(".debug_info")
    at = plain.find(b"main.StorageEntry\0", info.offset)
    while at >= 0:
        plain[at:at + 18] = b"m*/int INJECT;/*x\0"
        at = plain.find(b"main.StorageEntry\0", at + 1)
    (tmp / "cinject").write_bytes(bytes(plain))

    def error(o):
        return None  # the default: one clean error line

    def no_injection(o):
        if "INJECTED" in o.stdout:
            return "the file name injected a probe into the program"
        return None

    def escaped(o):
        if "\x1b" in o.stdout + o.stderr or "\x07" in o.stdout + o.stderr:
            return "control characters from a name reached the terminal"
        return "ok" if o.status == 0 else None

    def comment_closed(o):
        import re
        code = re.sub(r"/\*.*?\*/", "", o.stdout, flags=re.S)
        if re.search(r"\bINJECT\b", code):
            return "a type name closed its C comment: an injected member"
        return "ok" if o.status == 0 else None

    # a private copy of /dev/full (the real one must not be at stake: code that replaces the
    # target would put a regular file in its place)
    full = tmp / "full"
    try:
        os.mknod(full, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 7))
    except OSError:
        full = None

    def device_kept(o):
        if not __import__("stat").S_ISCHR(os.stat(full).st_mode):
            return "the device (a copy of /dev/full) was replaced by a regular file"
        return None

    devices = [("-o /dev/full (a private copy)", ["probe", str(demo), put, *gen, "-o", str(full)], device_kept)] \
        if full else []
    return devices + [
        ("FIFO as the binary", ["funcs", str(fifo)], error),
        ("device as the binary (/dev/zero)", ["sig", "/dev/zero", put], error),
        ("directory as the binary", ["funcs", str(tmp)], error),
        ("ELF of 64 bytes", ["funcs", str(short)], error),
        ("-E catastrophic regex", ["funcs", str(demo), "-E", r"(.*)*(.*)*(.*)*(.*)*[^\s\S]"], error),
        ("--args 1,000 nested parentheses", ["probe", str(demo), put, *gen, "--args", "(" * 1000 + "entry" + ")" * 1000],
         error),
        ("--args 1,000 stars", ["probe", str(demo), put, *gen, "--args", "*" * 1000 + "entry"], error),
        ("--args index 10^30", ["probe", str(demo), put, *gen, "--args", "entry.Value[" + "9" * 30 + "]"], error),
        ("-o a directory", ["probe", str(demo), put, *gen, "-o", str(tmp)], error),
        ("--depth 9", ["probe", str(demo), put, *gen, "--depth", "9"], error),
        ("--depth -1", ["probe", str(demo), put, *gen, "--depth", "-1"], error),
        ("--max-str 0", ["probe", str(demo), put, *gen, "--max-str", "0"], error),
        ("--max-str 100000", ["probe", str(demo), put, *gen, "--max-str", "100000"], error),
        ("--max-items 65", ["probe", str(demo), put, *gen, "--max-items", "65"], error),
        ("--buffer-pages 1", ["probe", str(demo), put, *gen, "--buffer-pages", "1"], error),
        ("--buffer-pages 2^40", ["probe", str(demo), put, *gen, "--buffer-pages", str(1 << 40)], error),
        ("--pid 2^70", ["probe", str(demo), put, *gen, "--pid", str(1 << 70)], error),
        ("--pid 0", ["probe", str(demo), put, *gen, "--pid", "0"], error),
        ("--pid -1", ["probe", str(demo), put, *gen, "--pid", "-1"], error),
        ("--bpftrace /bin/false", ["probe", str(demo), put, "--bpftrace", "/bin/false"], error),
        ("--bpftrace /bin/echo", ["probe", str(demo), put, "--bpftrace", "/bin/echo"], error),
        ("--bpftrace-version '0.27; rm -rf /'", ["probe", str(demo), put, "--bpftrace-version", "0.27; rm -rf /"], error),
        ("--bpftrace-version abc", ["probe", str(demo), put, "--bpftrace-version", "abc"], error),
        ("funcs on a 386 binary (sig rejects it)", ["funcs", str(tmp / "i386"), "main."], error),
        ("ESC and BEL in a function name (funcs)", ["funcs", str(tmp / "esc"), "main."], escaped),
        ("file name that injects a probe", ["probe", str(inject), put, *gen, "--ret"], no_injection),
        ("type name closing a C comment (structs)", ["structs", str(tmp / "cinject"), "--for", put], comment_closed),
    ]


def run_options(demo: Path, tmp: Path, timeout: float = 30.0, mem: int = 1 << 30):
    """[(case, outcome text)]: `clean`, `ok` (output as expected), or what went wrong."""
    preload()
    rows = []
    for name, argv, check in option_cases(demo, tmp):
        o = run_argv(argv, timeout, mem)
        if o.kind in BAD:
            rows.append((name, f"{o.kind}: {o.cause[:90]}"))
            continue
        problem = check(o)
        lines = [line for line in o.stderr.splitlines() if line.strip()]
        if problem and problem != "ok":
            rows.append((name, f"WRONG: {problem}"))
        elif problem == "ok":
            rows.append((name, "ok"))
        elif o.status == 0:
            rows.append((name, "WRONG: accepted (exit 0)"))
        elif len(lines) == 1 and lines[0].startswith("dwarfgo: error: "):
            rows.append((name, f"clean: {lines[0][len('dwarfgo: error: '):][:90]}"))
        else:
            rows.append((name, f"not one line (exit {o.status}): {' | '.join(lines)[:90]}"))
    return rows
