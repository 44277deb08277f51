"""Does bpftrace before 0.23 accept a program's use of the 512-byte BPF stack? Each output record
is built on that stack beside the probe's variables, and how much of it LLVM keeps depends on the
probe's shape: compiling the program (`--emit-elf`, nothing is loaded) is the only sure answer.

The program is compiled against a stand-in for the traced binary: an ELF header of the same class,
byte order and machine with no sections. bpftrace 0.17 reads the DWARF of every uprobe target
while it compiles (about 85% of a 6.3 s compile for a cmd/compile 1.27 method, all of it in
libdw), and nothing of it reaches a probe attached by address: the BPF code is the same, so is
the verdict."""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile

from .dialect import Dialect


def over_the_stack(bpftrace: str, dialect: Dialect, program, binary: str | None = None, cached: bool = False) -> bool:
    """Does bpftrace refuse `program` for its stack? (compiled only: --emit-elf loads nothing;
    with `binary`, the path its attach points name, compiled against a stand-in for it; with
    `cached` the verdict is kept in the cache directory, keyed by the bpftrace binary, its flags
    and environment, and the program's text)"""
    from ..indexcache import StackVerdicts

    verdicts = StackVerdicts(bpftrace, [*dialect.read_error_flags, "--emit-elf"], program.run_env, program.text) \
        if cached else None
    known = verdicts.get() if verdicts is not None else None
    if known is not None:
        return known
    # a program for `-c CMD` names cpid, which bpftrace refuses without a command (nothing runs:
    # --emit-elf stops after compiling)
    child = ["-c", "/bin/true"] if any("cpid" in line for line in program.text.splitlines()
                                        if not line.lstrip().startswith("//")) else []
    with tempfile.TemporaryDirectory(prefix="dwarfgo-stack-") as tmp:
        text = program.text
        if binary is not None:
            stand_in = os.path.join(tmp, "binary")
            if _write_stand_in(binary, stand_in):
                text = text.replace(f'uprobe:"{binary}":', f'uprobe:"{stand_in}":')
        source = os.path.join(tmp, "probe.bt")
        with open(source, "w") as f:
            f.write(text)
        env = {**os.environ, **program.run_env}
        try:
            run = subprocess.run([bpftrace, *dialect.read_error_flags, *child, "--emit-elf",
                                  os.path.join(tmp, "probe.elf"), source], capture_output=True, text=True, timeout=120,
                                 env=env)
        except (OSError, subprocess.TimeoutExpired):
            return False  # no verdict: the program stays as built
    over = "stack limit" in run.stdout + run.stderr
    if verdicts is not None and (over or run.returncode == 0):  # a verdict, not another failure
        verdicts.put(over)
    return over


# the ELF header's fields after e_ident (16 bytes): type, machine, version, entry, phoff, shoff,
# flags, ehsize, phentsize, phnum, shentsize, shnum, shstrndx; addresses are 4 or 8 bytes
_HEADER_AFTER_IDENT = {1: "HHIIIIIHHHHHH", 2: "HHIQQQIHHHHHH"}


def _write_stand_in(binary: str, path: str) -> bool:
    """An executable ELF file of `binary`'s class, byte order, type and machine, with no program
    or section headers: something bpftrace accepts as a uprobe target and finds nothing in.
    False when `binary` cannot be read as an ELF file (the program is then compiled as it is)."""
    try:
        with open(binary, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in _HEADER_AFTER_IDENT or ident[5] not in (1, 2):
                return False
            layout = ("<" if ident[5] == 1 else ">") + _HEADER_AFTER_IDENT[ident[4]]
            rest = f.read(struct.calcsize(layout))
        if len(rest) < struct.calcsize(layout):
            return False
        e_type, machine, version, entry, *_ = struct.unpack(layout, rest)
        header_size = 16 + struct.calcsize(layout)
        header = ident + struct.pack(layout, e_type, machine, version, entry, 0, 0, 0, header_size, 0, 0, 0, 0, 0)
        with open(path, "wb") as f:
            f.write(header)
        os.chmod(path, 0o755)
        return True
    except OSError:
        return False
