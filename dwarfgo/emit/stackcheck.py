"""Does bpftrace before 0.23 accept a program's use of the 512-byte BPF stack? Each output record
is built on that stack beside the probe's variables, and how much of it LLVM keeps depends on the
probe's shape: compiling the program (`--emit-elf`, nothing is loaded) is the only sure answer."""

from __future__ import annotations

import os
import subprocess
import tempfile

from .dialect import Dialect


def over_the_stack(bpftrace: str, dialect: Dialect, program, cached: bool = False) -> bool:
    """Does bpftrace refuse `program` for its stack? (compiled only: --emit-elf loads nothing;
    about 1.5 s for a cmd/compile method, so with `cached` the verdict is kept in the cache
    directory, keyed by the bpftrace binary, its flags and environment, and the program's text)"""
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
        source = os.path.join(tmp, "probe.bt")
        with open(source, "w") as f:
            f.write(program.text)
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
