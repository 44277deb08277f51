"""Will bpftrace compile a program? Before 0.23 each output record is built on the 512-byte BPF
stack beside the probe's variables; 0.27 keeps there the values waiting for a printf; how much of
the stack LLVM keeps depends on the probe's shape, and a very large probe can also exceed the
reach of a BPF jump. Compiling the program (nothing is loaded) is the only sure answer.

The program is compiled against a stand-in for the traced binary: an ELF header of the same class,
byte order and machine with no sections. bpftrace 0.17 reads the DWARF of every uprobe target
while it compiles (a whole-DWARF type search for each cast: about 85% of a 6.3 s compile for a
cmd/compile 1.27 method, all of it in libdw), and nothing of it reaches a probe attached by
address: the BPF code is the same, so is the verdict. No probe can be attached to the stand-in
either (bpftrace 0.27's --emit-elf attaches the probes and runs them; its --mode codegen does not)."""

from __future__ import annotations

import enum
import os
import struct
import subprocess
import tempfile

from .dialect import Dialect


class CompileVerdict(enum.Enum):
    FITS = "fits"  # compiled (or failed for another reason, which the real run reports)
    OVER_THE_STACK = "over the stack"  # LLVM: "stack limit ... exceeded"
    TOO_LARGE = "too large"  # LLVM: "Branch target out of insn range" (a jump beyond 32767 instructions)


def compile_verdict(bpftrace: str, dialect: Dialect, program, binary: str | None = None,
                    cached: bool = False) -> CompileVerdict:
    """What bpftrace says when it compiles `program` (with `binary`, the path its attach points
    name, against a stand-in for it; with `cached` the verdict is kept in the cache directory,
    keyed by the bpftrace binary, its flags and environment, and the program's text)."""
    from ..indexcache import StackVerdicts

    flags = [*dialect.read_error_flags, *dialect.compile_only_flags("probe.elf")]
    verdicts = StackVerdicts(bpftrace, flags, program.run_env, program.text) if cached else None
    known = verdicts.get() if verdicts is not None else None
    if known is not None:
        try:
            return CompileVerdict(known)
        except ValueError:
            pass  # a verdict of another dwarfgo: asked again
    # a program for `-c CMD` names cpid, which bpftrace refuses without a command (nothing runs:
    # the compile stops before it)
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
            run = subprocess.run([bpftrace, *dialect.read_error_flags, *child,
                                  *dialect.compile_only_flags(os.path.join(tmp, "probe.elf")), source],
                                 capture_output=True, text=True, timeout=120, env=env)
        except (OSError, subprocess.TimeoutExpired):
            return CompileVerdict.FITS  # no verdict: the program stays as built
    said = run.stdout + run.stderr
    if "stack limit" in said:
        verdict = CompileVerdict.OVER_THE_STACK
    elif "Branch target out of insn range" in said:
        verdict = CompileVerdict.TOO_LARGE
    elif run.returncode == 0:
        verdict = CompileVerdict.FITS
    else:
        return CompileVerdict.FITS  # another failure: not a verdict, the real run reports it
    if verdicts is not None:
        verdicts.put(verdict.value)
    return verdict


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
