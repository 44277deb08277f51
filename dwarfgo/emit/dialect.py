"""What the chosen bpftrace version can do (design notes §5, checked on 0.17, 0.23 and 0.27)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import DwarfgoError


_DEFAULT_STRLEN_017 = 64  # BPFTRACE_STRLEN's default


@dataclass(frozen=True)
class Dialect:
    version: tuple[int, int, int]
    # batch slots a printf gets when the version's default made a probe exceed bpftrace's
    # 512-byte stack (probe.generate_fitting lowers it; `decode` is told with --record-slots)
    record_slots: int | None = None

    @property
    def version_text(self) -> str:
        return "%d.%d.%d" % self.version

    @property
    def supports_mid_function_probes(self) -> bool:
        """uprobes at an address inside a function (RET sites): not in builds without bfd such as
        Debian's 0.17; verified on 0.23 and 0.27."""
        return self.version >= (0, 23, 0)

    @property
    def no_ret_probes(self) -> str | None:
        """Why this version cannot trace results (None: it can)."""
        if self.supports_mid_function_probes:
            return None
        return (f"bpftrace {self.version_text} cannot probe a RET inside a function (no offset support); "
                f"use a newer bpftrace (--bpftrace PATH, 0.23+)")

    @property
    def config_block(self) -> bool:
        """`config = { ... }` at the top of a program (0.19+; older versions read BPFTRACE_* variables)."""
        return self.version >= (0, 19, 0)

    @property
    def max_strlen(self) -> int:
        """Longest string/buffer copy this version allows (BPFTRACE_STRLEN <= 200 up to 0.22)."""
        return 200 if self.version < (0, 23, 0) else 1024

    @property
    def buf_header_bytes(self) -> int | None:
        """0.23+: a `buf()` holds a 4-byte length before its bytes, and `buf(p, n)` copies
        min(n, max_strlen - 4) bytes by itself (measured on 0.23 and 0.27 with max_strlen 64, 68
        and 72: 60, 64 and 68 bytes of a 250-byte string). None: before the config block (0.17) a
        copy is min(n, BPFTRACE_STRLEN), and a program clamps it itself."""
        return 4 if self.version >= (0, 23, 0) else None

    def copy_record_size(self, max_str: int) -> int | None:
        """The `max_strlen` a program's config block sets: a byte copy then copies at most `max_str`
        bytes (the readable program relies on it: no clamp of its own) and takes that room in an
        output record; None: leave the version's default.

        0.23+ gives a `buf()` whose length is not a constant the room of max_strlen, 1024 bytes by
        default (LLVM IR of 0.23 and 0.27: `[1024 x i8]`), however short the copy: each string was a
        1 KiB output record, and 13 gofmt functions filled the 64 MiB ring buffer with them (a
        64-byte copy is refused by the verifier with max_strlen 64 or 65; 68 loads, and 9 for 5)."""
        room = self.copy_room(max_str)
        return None if room is None else room + self.buf_header_bytes

    def copy_room(self, max_str: int) -> int | None:
        """How many bytes a byte copy of a program asking for `max_str` can hold on 0.23+ (its
        `max_strlen` less buf()'s header): `max_str`, or more where this version's own library
        needs the room (shortest_copy_room). None before 0.23: the program clamps each copy
        itself."""
        return None if self.buf_header_bytes is None else max(max_str, self.shortest_copy_room)

    @property
    def shortest_copy_room(self) -> int:
        """The fewest bytes a copy's room (max_strlen less buf()'s header) may have. bpftrace 0.27
        checks the string literals of its own library against max_strlen, and `delete()` and
        `has_key()` expand to a 61-byte message: with max_strlen under 61 (--max-str 56 or less)
        every program that deletes a map entry was refused ("String is too long (over 12 bytes):
        call to %s expects a map with explicit keys"). The room is then that of the default
        --max-str, 64 (68 with the header: the size every fixture's program was checked at; 40 to
        56 also put some over 0.27's BPF stack). 0.23 takes max_strlen 12; 0.24-0.26 are not at
        hand and get the floor. A raw program clamps each copy to --max-str itself; a readable
        one shows up to this many bytes (readable.py says so)."""
        return 64 if self.version >= (0, 24, 0) else 0

    @property
    def command_note(self) -> str | None:
        """What a person running the program with -c must know (None: nothing): bpftrace 0.17
        attaches a -c run's uprobes to every process of the binary (measured: events of ~150 other
        processes); 0.23+ to the command's only."""
        if self.version >= (0, 23, 0):
            return None
        return (f"bpftrace {self.version_text} traces every process running this binary, even with -p PID or "
                "-c 'CMD': for one process, generate the program with --pid PID, or with -c add `pid == cpid` to "
                "each probe's predicate")

    def copy_env(self, max_str: int) -> dict[str, str]:
        """The environment a readable program with copies of `max_str` bytes needs: before the
        config block (0.17), BPFTRACE_STRLEN sizes every copy (64 unless set): without it,
        --max-str 100 showed 64 bytes. (The readable program's record budget and stack check
        make room for longer copies; the raw program's do not: raw_copy_limit.)"""
        if self.config_block or max_str <= _DEFAULT_STRLEN_017:
            return {}
        return {"BPFTRACE_STRLEN": str(max_str)}

    def raw_copy_limit(self, max_str: int) -> int:
        """Bytes the raw program (trace, decode, aggregations) copies of a string or byte slice.
        Before the config block (0.17) a copy is BPFTRACE_STRLEN bytes, 64 unless set, and with it
        set to 200 the shapes fixture's probes went over the 512-byte BPF stack: 64 at most."""
        return max_str if self.config_block else min(max_str, _DEFAULT_STRLEN_017)

    @property
    def shared_output_buffer(self) -> bool:
        """Output goes through one BPF ring buffer for all CPUs (perf_rb_pages sizes it), not a
        perf buffer per CPU: seen in 0.23 and 0.27."""
        return self.version >= (0, 23, 0)

    @property
    def printf_batch(self) -> int:
        """Batch slots per printf (a scalar takes one, a byte copy copy_slots). Before 0.23 a
        printf's arguments are built on the 512-byte BPF stack, beside the probe's variables, and
        an event's first printf also carries its 8 header fields: 24 (with at most nested_batch
        variables waiting in each `if`) loads every function of the shapes fixture on Go 1.15
        and 1.27 with -kk, with defaults, --depth 2, --depth 4 --max-items 16, and main.List with
        the live test's --args (two copies in a nested guard: 29 exceeded the stack there, 26
        did not). Each printf is a perf-buffer record, and every record costs the traced thread a
        wakeup of bpftrace (about 3.5 us a record on 2 vCPUs: main.Hot's 5 records per call cost
        4.4x a bare uprobe, 1 record 1.9x); main.Hot's 10 values and 2 copies (28 slots) would be
        two records with 24: an event's only printf gets one_record_batch. 0.23+ builds them in a map
        (objects over its on_stack_limit, 32 bytes); what waits to be printed still sits in
        variables. 24 loads 13 gofmt functions and parseBinaryExpr on 0.23 and 0.27 with -k (48
        exceeds the stack on 0.27), and cuts their records from 8.1 to 6.1 per event
        (bpftrace's CPU per event -5 to -10%). Not a proof for every probe (gofmt 1.15's
        parser.shortVarDecl exceeded the stack on 0.17 with 24: 23 values waiting for its end
        line beside its copies; cmd/compile 1.27's (*Block).NewValue3 on 0.27 with 24): probe.generate_fitting
        compiles the program and lowers record_slots until it fits."""
        return min(24, self.record_slots) if self.record_slots else 24

    @property
    def one_record_batch(self) -> int:
        """Batch slots of an event's only printf, at the top level of its probe (its header, its
        values and its end count in one record: bpftrace.ProgramWriter._pack); the probe then
        keeps nothing alive beside that printf's own values. Before 0.23: 28, so that main.Hot of
        scripts/bench-trace (10 values and 2 copies, 28 slots) is one record, not two (2.6x a bare
        uprobe with two, about 2.0x with one: each record costs a wakeup of bpftrace). Measured:
        main.List with the live test's --args, a first printf of two, exceeded the 512-byte stack
        with 28 slots; an only printf has nothing after it. 28 loads every function of the shapes
        fixture under printf_batch's checks. 0.23+: printf_batch (more does not save a record)."""
        return 28 if self.version < (0, 23, 0) and not self.record_slots else self.printf_batch

    @property
    def nested_batch(self) -> int:
        """Variables that may wait inside an `if` before they are printed there (a copy keeps
        two: its address and length). Before 0.23: 8, so that nested blocks do not fill the
        stack (see printf_batch)."""
        return min(8, self.printf_batch - 1) if self.version < (0, 23, 0) else self.printf_batch - 1

    @property
    def copy_slots(self) -> int:
        """Batch slots (printf_batch) a byte copy takes in the printf that makes it. Before 0.23
        the copy is built on the BPF stack with the printf's other arguments: BPFTRACE_STRLEN
        (64) bytes and its length, the room of 9 scalars. 0.23+ builds it in the printf's map
        entry: it takes no variable's room on the stack."""
        return 9 if self.version < (0, 23, 0) else 1

    @property
    def coalesced_reads(self) -> int:
        """Most 8-byte words the raw program reads with one memory read when a struct's words
        follow each other (bpftrace.ProgramWriter._coalesce), 0: one read per word. 0.23+: 4. Each
        memory read is a helper call that costs the traced thread about 150 ns (bpftrace 0.27,
        main.Hot of scripts/bench-trace, timed inside the probe: 1,340 ns with its 7 reads, 300 ns
        with none, 1,110 ns with its item's three words in one read). The copy is a struct
        variable that sits on the 512-byte BPF stack for the whole probe: a program refitted to
        that stack (record_slots set: probe.generate_fitting) reads one word at a time. Not on
        0.17: it reads a field of a struct variable when the field is used, one read a word
        (its LLVM IR; main.Hot's probe took 2,020 ns either way), and the program would only gain
        fewer casts at start-up (cmd/compile 1.27's (*Block).NewValue3: 119 -> 49, 3.8 -> 3.4 s
        CPU), against a stack check of 0.3-0.7 s for every program with a copy."""
        if self.record_slots or self.version < (0, 23, 0):
            return 0
        return 4

    @property
    def read_error_flags(self) -> list[str]:
        """Command-line flags that make bpftrace report a failed memory read (with the program
        line and column) instead of silently giving zeros: `-kk` before 0.23, `-k` from 0.23
        (its changelog: "Remove '-kk' ..., make '-k' surface probe read errors")."""
        return ["-k"] if self.version >= (0, 23, 0) else ["-kk"]

    def compile_only_flags(self, elf_path: str) -> list[str]:
        """Flags that make bpftrace compile a program and stop, loading nothing (emit/stackcheck):
        `--emit-elf FILE` on 0.17 and 0.23; 0.27's --emit-elf attaches the probes and runs them
        (seen: still tracing after 30 s), its `--mode codegen` stops after the code is made."""
        return ["--mode", "codegen"] if self.version >= (0, 27, 0) else ["--emit-elf", elf_path]


def parse_version(text: str) -> tuple[int, int, int]:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise DwarfgoError(f"cannot read a bpftrace version from {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


_VERSION_OPTION = re.compile(r"\d{1,4}\.\d{1,4}(\.\d{1,4})?")
# what `bpftrace --version` prints: "bpftrace v0.17.0", "bpftrace v0.23.2"
_VERSION_LINE = re.compile(r"^bpftrace v?(\d+\.\d+(?:\.\d+)?)\b")


def bpftrace_identity(bpftrace: str | None = None, version: str | None = None) -> list | None:
    """What a program made for (`--bpftrace`, `--bpftrace-version`) depends on besides the binary
    and the options, for keeping it: the version asked for, the bpftrace binary that detect()
    would ask and that checks a readable program's stack (its real path, size and mtime), and the
    CPU count (the output buffer's default size); None when there is no such bpftrace."""
    path = bpftrace or (shutil.which("bpftrace") if version is None else None)
    found = None
    if path is not None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        found = [os.path.realpath(path), st.st_size, st.st_mtime_ns]
    elif version is None:
        return None
    return [version, found, os.cpu_count()]


def detect(bpftrace: str | None = None, version: str | None = None, cached: bool = False) -> tuple[Dialect, str | None]:
    """The dialect to generate for: an explicit --bpftrace-version, or what `bpftrace --version`
    says (with `cached`, what it said is kept in the cache directory by the bpftrace binary's real
    path, size and mtime, and not asked again: indexcache.BpftraceVersions)."""
    if version is not None:
        if not _VERSION_OPTION.fullmatch(version):
            raise DwarfgoError(f"--bpftrace-version {version!r} is not a version (like 0.23 or 0.27.1)")
        return Dialect(parse_version(version)), bpftrace
    path = bpftrace or shutil.which("bpftrace")
    if path is None:
        raise DwarfgoError("bpftrace not found; install it (apt-get install bpftrace), "
                           "or name it with --bpftrace PATH, or say --bpftrace-version V to only generate")
    kept = None
    if cached:
        from ..indexcache import BpftraceVersions
        kept = BpftraceVersions(path)
        said = kept.get()
        m = _VERSION_LINE.match(said) if said is not None else None
        if m:
            return Dialect(parse_version(m.group(1))), path
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, errors="replace", timeout=30,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DwarfgoError(f"{path} --version did not answer within 30 s: is it bpftrace?") from None
    except OSError as e:
        raise DwarfgoError(f"cannot run {path}: {e.strerror or e}") from None
    for line in (out.stdout + "\n" + out.stderr).splitlines():
        m = _VERSION_LINE.match(line.strip())
        if m and out.returncode == 0:
            if kept is not None:
                kept.put(line.strip())
            return Dialect(parse_version(m.group(1))), path
    said = " ".join((out.stdout + out.stderr).split())[:60]
    raise DwarfgoError(f"{path} is not bpftrace: `{path} --version` exited {out.returncode} and printed "
                       f"{said!r}, not `bpftrace vX.Y`")
